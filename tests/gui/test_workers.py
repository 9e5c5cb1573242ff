import itertools
import threading
import types

import pytest

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.jobs import Progress
from mmstudio.gui import workers
from mmstudio.gui.workers import PROGRESS_INTERVAL, TaskSlot
from tests.gui.conftest import WAIT, Gate


def count(n, *, progress, cancel):
    for i in range(n):
        if cancel.cancelled:
            raise Cancelled("cancelled")
        progress(Progress(i + 1, n))
    return ("counted", n, threading.current_thread().name)


def test_job_runs_off_the_gui_thread_and_reports_on_it(qtbot, monkeypatch):
    # the throttle's clock advances a fifth of its interval per step, however slow the
    # machine: how many steps get through does not depend on the scheduler
    ticks = itertools.count(1000.0, PROGRESS_INTERVAL / 5)
    monkeypatch.setattr(workers, "time", types.SimpleNamespace(monotonic=lambda: next(ticks)))
    slot = TaskSlot()
    got, seen_progress = [], []
    slot.progress.connect(lambda p: seen_progress.append((p.done, threading.current_thread())))
    slot.result.connect(lambda v: got.append((v, threading.current_thread())))
    with qtbot.waitSignal(slot.idle, timeout=WAIT):
        slot.start(count, 50)
    (value, thread), = got
    assert value[:2] == ("counted", 50)
    assert value[2] != threading.main_thread().name  # the work ran on a pool thread
    assert thread is threading.main_thread()  # the result arrived on the GUI thread
    assert seen_progress and all(t is threading.main_thread() for _, t in seen_progress)
    assert 5 <= len(seen_progress) <= 15  # throttled: about one step in five
    assert seen_progress[-1][0] == 50  # the last step always arrives


def test_a_new_task_cancels_the_old_one_and_its_result_never_arrives(qtbot):
    gate = Gate()

    def held(*, progress, cancel):  # returns once let go, after its cancel: never delivered
        gate.wait()
        return ("stale", 0, threading.current_thread().name)

    slot = TaskSlot()
    results, cancelled = [], []
    slot.result.connect(results.append)
    slot.cancelled.connect(lambda: cancelled.append(True))
    first = slot.start(held)
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)  # running, held at the gate
    with qtbot.waitSignal(slot.idle, timeout=WAIT):
        slot.start(count, 3)
        assert first.cancel.cancelled
        gate.open()
    assert cancelled == [True]
    assert [r[:2] for r in results] == [("counted", 3)]


def test_a_superseded_quick_result_is_dropped(qtbot):
    slot = TaskSlot()
    results = []
    slot.result.connect(results.append)
    slot.start(lambda *, progress, cancel: "stale")
    slot.start(lambda *, progress, cancel: "fresh")
    qtbot.waitUntil(lambda: not slot.busy, timeout=WAIT)
    assert results == ["fresh"]


@pytest.mark.parametrize("error, message", [
    (MmstudioError("library in use by PID 7"), "library in use by PID 7"),
    (ZeroDivisionError("division by zero"), "unexpected error: division by zero"),
])
def test_failures_become_one_message(qtbot, error, message):
    def fail(*, progress, cancel):
        raise error

    slot = TaskSlot()
    with qtbot.waitSignal(slot.failed, timeout=WAIT) as blocker:
        slot.start(fail)
    assert blocker.args == [message]
    qtbot.waitUntil(lambda: not slot.busy, timeout=WAIT)


def test_shutdown_cancels_and_waits(qtbot):
    gate, returned = Gate(), threading.Event()

    def held(*, progress, cancel):  # held until cancelled (the gate is never opened)
        gate.wait(cancel)
        returned.set()
        cancel.raise_if_cancelled()

    slot = TaskSlot()
    job = slot.start(held)
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)  # running, held at the gate
    assert slot.shutdown(timeout_ms=WAIT)
    assert job.cancel.cancelled and returned.is_set() and not slot.busy


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
        with qtbot.waitSignal(slot.idle, timeout=WAIT):
            slot.start(index, lib, [tmp_path / "media"], encoders=[FakeEncoder()])
    (report,) = reports
    assert isinstance(report, IndexReport) and report.indexed == 11
    assert progress and progress[-1].done == progress[-1].total == 11


def count_up(n, *, progress, cancel, gate=None, hold_after=None):
    """Yields 0..n-1; with a gate, waits there once `hold_after` items are out."""
    for i in range(n):
        progress(Progress(i + 1, n))
        yield i
        if gate is not None and i + 1 == hold_after:
            gate.wait()


def test_a_generator_job_streams_its_items_and_stops_at_a_cancel(qtbot):
    slot = TaskSlot()
    items = []
    slot.yielded.connect(items.append)
    with qtbot.waitSignal(slot.idle, timeout=WAIT):
        slot.start(count_up, 20)
    assert items == list(range(20))

    items.clear()
    gate = Gate()
    job = slot.start(count_up, 10_000, gate=gate, hold_after=3)
    qtbot.waitUntil(lambda: gate.entered.is_set() and len(items) == 3, timeout=WAIT)
    with qtbot.waitSignal(slot.idle, timeout=WAIT):
        slot.cancel()
        gate.open()
    assert job.cancel.cancelled and items == [0, 1, 2]  # in order, none dropped, none after
