import threading
import time

import pytest

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.jobs import Progress
from mmstudio.gui.workers import TaskSlot


def slow_count(n, *, progress, cancel, delay=0.01):
    for i in range(n):
        if cancel.cancelled:
            raise Cancelled("cancelled")
        progress(Progress(i + 1, n))
        time.sleep(delay)
    return ("counted", n, threading.current_thread().name)


def test_job_runs_off_the_gui_thread_and_reports_on_it(qtbot):
    slot = TaskSlot()
    got, seen_progress = [], []
    slot.progress.connect(lambda p: seen_progress.append((p.done, threading.current_thread())))
    slot.result.connect(lambda v: got.append((v, threading.current_thread())))
    with qtbot.waitSignal(slot.idle, timeout=10_000):
        slot.start(slow_count, 50)
    (value, thread), = got
    assert value[:2] == ("counted", 50)
    assert value[2] != threading.main_thread().name  # the work ran on a pool thread
    assert thread is threading.main_thread()  # the result arrived on the GUI thread
    assert seen_progress and all(t is threading.main_thread() for _, t in seen_progress)
    assert len(seen_progress) < 50  # throttled
    assert seen_progress[-1][0] == 50  # the last step always arrives


def test_a_new_task_cancels_the_old_one_and_its_result_never_arrives(qtbot):
    slot = TaskSlot()
    results, cancelled = [], []
    slot.result.connect(results.append)
    slot.cancelled.connect(lambda: cancelled.append(True))
    first = slot.start(slow_count, 10_000)
    qtbot.wait(50)
    with qtbot.waitSignal(slot.idle, timeout=10_000):
        slot.start(slow_count, 3, delay=0)
    assert first.cancel.cancelled and cancelled == [True]
    assert [r[:2] for r in results] == [("counted", 3)]


def test_a_superseded_quick_result_is_dropped(qtbot):
    slot = TaskSlot()
    results = []
    slot.result.connect(results.append)
    slot.start(lambda *, progress, cancel: "stale")
    slot.start(lambda *, progress, cancel: "fresh")
    qtbot.waitUntil(lambda: not slot.busy, timeout=10_000)
    assert results == ["fresh"]


@pytest.mark.parametrize("error, message", [
    (MmstudioError("library in use by PID 7"), "library in use by PID 7"),
    (ZeroDivisionError("division by zero"), "unexpected error: division by zero"),
])
def test_failures_become_one_message(qtbot, error, message):
    def fail(*, progress, cancel):
        raise error

    slot = TaskSlot()
    with qtbot.waitSignal(slot.failed, timeout=10_000) as blocker:
        slot.start(fail)
    assert blocker.args == [message]
    qtbot.waitUntil(lambda: not slot.busy, timeout=10_000)


def test_shutdown_cancels_and_waits(qtbot):
    slot = TaskSlot()
    job = slot.start(slow_count, 100_000)
    qtbot.wait(30)
    assert slot.shutdown(timeout_ms=10_000)
    assert job.cancel.cancelled and not slot.busy


def test_an_index_job_through_a_slot(qtbot, tmp_path):
    from mmstudio.core.ingest import IndexReport, index
    from mmstudio.core.library import Library
    from tests.fakes import FakeEncoder
    from tests.media_factory import good_collection

    good_collection(tmp_path / "media")
    slot = TaskSlot()
    reports, progress = [], []
    slot.result.connect(reports.append)
    slot.progress.connect(progress.append)
    with Library(tmp_path / "lib") as lib:
        with qtbot.waitSignal(slot.idle, timeout=30_000):
            slot.start(index, lib, [tmp_path / "media"], encoders=[FakeEncoder()])
    (report,) = reports
    assert isinstance(report, IndexReport) and report.indexed == 11
    assert progress and progress[-1].done == progress[-1].total == 11


def count_up(n, *, progress, cancel):
    for i in range(n):
        progress(Progress(i + 1, n))
        yield i
        time.sleep(0.005)


def test_a_generator_job_streams_its_items_and_stops_at_a_cancel(qtbot):
    slot = TaskSlot()
    items = []
    slot.yielded.connect(items.append)
    with qtbot.waitSignal(slot.idle, timeout=10_000):
        slot.start(count_up, 20)
    assert items == list(range(20))

    items.clear()
    job = slot.start(count_up, 10_000)
    qtbot.waitUntil(lambda: len(items) >= 3, timeout=10_000)
    with qtbot.waitSignal(slot.idle, timeout=10_000):
        slot.cancel()
    assert job.cancel.cancelled and 3 <= len(items) < 10_000
    assert items == list(range(len(items)))  # in order, none dropped before the cancel
