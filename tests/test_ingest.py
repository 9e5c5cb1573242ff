import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mmstudio.core import ingest
from mmstudio.core.errors import MediaError
from mmstudio.core.ingest import index
from mmstudio.core.jobs import CancelToken
from mmstudio.core.library import Library
from mmstudio.core.search import SearchQuery, search
from tests.fakes import FakeEncoder
from tests.media_factory import broken_collection, bump_mtime, good_collection

N_GOOD = 11  # media files good_collection makes


def consistent(lib: Library) -> None:
    """Every indexed segment has its point, and the store holds nothing else."""
    assert lib.store.count() == lib.catalog.counts()["segments"]
    assert not lib.catalog.files(state="pending")


def test_index_groups_items_and_is_incremental(tmp_path):
    files = good_collection(tmp_path / "media")
    enc = FakeEncoder()
    with Library(tmp_path / "lib") as lib:
        first = index(lib, [tmp_path / "media"], encoders=[enc])
        assert (first.indexed, first.added, first.errors) == (N_GOOD, N_GOOD, [])
        consistent(lib)
        counts = lib.catalog.counts()
        assert counts["files_by_modality"] == {"image": 5, "text": 3, "audio": 2, "video": 1}
        assert counts["items"] == N_GOOD - 1  # pet.png + pet.txt are one item
        items = {f.path: f.item_id for f in lib.catalog.files()}
        assert items[str(files["pet_image"])] == items[str(files["pet_text"])]
        encoded = sum(enc.calls.values())
        assert encoded > N_GOOD  # the video and sounds have several segments

        again = index(lib, [tmp_path / "media"], encoders=[enc])
        assert (again.unchanged, again.indexed) == (N_GOOD, 0)
        assert sum(enc.calls.values()) == encoded  # nothing encoded the second time

        bump_mtime(files["cats"])  # touched, content unchanged: hash says skip
        touched = index(lib, [tmp_path / "media"], encoders=[enc])
        assert (touched.unchanged, touched.indexed) == (N_GOOD, 0)
        assert sum(enc.calls.values()) == encoded

        files["cats"].write_text("Dogs bark at the mailman.", encoding="utf-8")
        bump_mtime(files["cats"], 10)
        files["noise"].unlink()
        changed = index(lib, [tmp_path / "media"], encoders=[enc])
        assert (changed.updated, changed.removed, changed.indexed) == (1, 1, 1)
        assert sum(enc.calls.values()) == encoded + 1  # one text chunk, nothing else
        consistent(lib)
        assert str(files["noise"]) not in {f.path for f in lib.catalog.files()}


def test_broken_files_each_get_one_error_and_the_rest_is_indexed(tmp_path):
    good_collection(tmp_path / "media")
    broken = broken_collection(tmp_path / "media" / "broken")
    with Library(tmp_path / "lib") as lib:
        report = index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        assert report.indexed == N_GOOD
        by_path = {e.path: e.reason for e in report.errors}
        assert len(report.errors) == len(broken)
        assert set(by_path) == {str(p) for p in broken.values()}
        assert "empty" in by_path[str(broken["empty"])]
        assert "megapixel" in by_path[str(broken["bomb"])]
        assert "not text" in by_path[str(broken["binary_text"])]
        assert all(reason.strip() for reason in by_path.values())
        consistent(lib)
        assert len(lib.catalog.errors()) == len(broken)
        # unchanged broken files are not retried, but stay listed
        again = index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        assert again.errors == [] and again.unchanged == N_GOOD + len(broken)
        assert len(lib.catalog.errors()) == len(broken)


def test_missing_path_is_reported_and_nothing_is_removed(tmp_path):
    good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        report = index(lib, [tmp_path / "media", tmp_path / "gone"], encoders=[FakeEncoder()])
        assert [e.reason for e in report.errors] == ["not found"]
        assert report.removed == 0 and report.unchanged == N_GOOD


def test_cancel_leaves_a_consistent_library_and_rerun_finishes(tmp_path):
    folder = tmp_path / "media"
    from mmstudio.core.samples import draw
    folder.mkdir()
    for i in range(40):
        draw("stripes" if i % 2 else "dots", 64, seed=i).save(folder / f"img{i:02d}.png")
    cancel = CancelToken()

    def progress(p):
        if p.done >= 6:
            cancel.cancel()

    with Library(tmp_path / "lib") as lib:
        report = index(lib, [folder], encoders=[FakeEncoder(delay=0.02)], progress=progress,
                       cancel=cancel)
        assert report.cancelled
        ok = lib.catalog.files(state="ok")
        assert 6 <= len(ok) < 40
        assert lib.store.count() == lib.catalog.counts()["segments"] == len(ok)
        hits = search(lib, SearchQuery(path=folder / "img00.png"), encoders=[FakeEncoder()])
        assert {h.path for h in hits} <= {f.path for f in ok}
        rerun = index(lib, [folder], encoders=[FakeEncoder()])
        assert not rerun.cancelled and rerun.indexed + rerun.unchanged == 40
        consistent(lib)
        assert len(lib.catalog.files(state="ok")) == 40


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from mmstudio.core import ingest
    from mmstudio.core.library import Library
    from tests.fakes import FakeEncoder
    ingest.COMMIT_EVERY_FILES = 3

    def progress(p):
        print("DONE", p.done, flush=True)
        if p.done >= 10:  # held here (the test never answers) until it is killed
            sys.stdin.readline()

    with Library({lib!r}) as lib:
        ingest.index(lib, [{media!r}], encoders=[FakeEncoder()], workers=1, progress=progress)
    print("FINISHED", flush=True)
""")


def test_sigkill_mid_index_leaves_a_library_that_opens_and_searches(tmp_path):
    folder = tmp_path / "media"
    from mmstudio.core.samples import draw
    folder.mkdir()
    for i in range(60):
        draw("checker" if i % 2 else "circles", 64, seed=i).save(folder / f"img{i:02d}.png")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = KILL_SCRIPT.format(root=root, lib=str(tmp_path / "lib"), media=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    done = 0
    while done < 10 and time.time() < deadline:
        line = proc.stdout.readline()
        assert line, "indexer ended before it could be killed"
        if line.startswith("DONE"):
            done = int(line.split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with Library(tmp_path / "lib") as lib:  # the OS released the lock
        ok = {f.path for f in lib.catalog.files(state="ok")}
        assert 3 <= len(ok) < 60
        hits = search(lib, SearchQuery(path=folder / "img01.png"), encoders=[FakeEncoder()],
                      limit=100)
        assert hits and {h.path for h in hits} <= ok
        report = index(lib, [folder], encoders=[FakeEncoder()])
        assert report.indexed + report.unchanged == 60 and not report.errors
        consistent(lib)


def test_keyboard_interrupt_commits_finished_files(tmp_path, monkeypatch):
    folder = tmp_path / "media"
    from mmstudio.core.samples import draw
    folder.mkdir()
    for i in range(12):
        draw("waves", 64, seed=i).save(folder / f"w{i}.png")
    monkeypatch.setattr(ingest, "COMMIT_EVERY_FILES", 1000)

    def progress(p):
        if p.done >= 5:
            raise KeyboardInterrupt

    with Library(tmp_path / "lib") as lib:
        with pytest.raises(KeyboardInterrupt):
            index(lib, [folder], encoders=[FakeEncoder()], progress=progress)
        assert len(lib.catalog.files(state="ok")) >= 5
        assert lib.store.count() == lib.catalog.counts()["segments"]


def test_adding_an_encoder_encodes_only_its_space(tmp_path):
    from tests.fakes import ExtraImageEncoder

    good_collection(tmp_path / "media")
    base, extra = FakeEncoder(), ExtraImageEncoder()
    with Library(tmp_path / "lib") as lib:
        index(lib, [tmp_path / "media"], encoders=[base])
        visual_before = lib.store.count("fake-visual")
        base_calls = sum(base.calls.values())

        report = index(lib, [tmp_path / "media"], encoders=[base, extra])
        # the picture encoder re-reads pictures and videos, not texts and sounds
        assert report.indexed == 0 and report.extended == 6
        assert sum(base.calls.values()) == base_calls  # the old space is not redone
        image_segments = lib.catalog._query(
            "SELECT COUNT(*) FROM segments WHERE kind = 'image'")[0][0]
        assert extra.calls["image"] == image_segments  # pictures and video frames
        assert lib.store.count("fake-extra") == image_segments
        assert lib.store.count("fake-visual") == visual_before  # other vectors kept
        consistent(lib)
        assert all(f.space_set == {"fake-visual", "fake-sound", "fake-extra"}
                   for f in lib.catalog.files(state="ok"))

        again = index(lib, [tmp_path / "media"], encoders=[base, extra])
        assert again.extended == 0 and extra.calls["image"] == image_segments
        hits = search(lib, SearchQuery(path=tmp_path / "media" / "pics" / "circles.png"),
                      encoders=[extra])
        assert hits[0].space == "fake-extra" and hits[0].path.endswith("circles.png")


def test_broken_encoder_stops_the_job_and_files_are_redone_later(tmp_path):
    from mmstudio.core.ingest import EncoderError
    from tests.fakes import BrokenEncoder

    good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        with pytest.raises(EncoderError, match="stay pending"):
            index(lib, [tmp_path / "media"], encoders=[BrokenEncoder()])
        assert lib.catalog.errors() == []  # nothing blamed on the files
        report = index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        assert report.indexed == N_GOOD and report.errors == []
        consistent(lib)


def test_an_input_the_encoder_rejects_fails_only_its_file(tmp_path):
    from PIL import Image

    from tests.fakes import PickyEncoder

    good_collection(tmp_path / "media")
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "media" / "red.png")
    with Library(tmp_path / "lib") as lib:
        report = index(lib, [tmp_path / "media"], encoders=[PickyEncoder()])
        assert [e.path for e in report.errors] == [str(tmp_path / "media" / "red.png")]
        assert "trips the model" in report.errors[0].reason
        assert report.indexed == N_GOOD
        consistent(lib)


def test_new_encoder_adds_segments_the_old_profile_could_not_read(tmp_path):
    from tests.fakes import AudioOnlyEncoder, ExtraImageEncoder

    files = good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        first = index(lib, [tmp_path / "media"], encoders=[AudioOnlyEncoder()])
        assert first.errors == [] and first.indexed == N_GOOD
        # 5 pictures, 3 texts and the silent video: nothing reads them yet
        assert first.without_vectors == 9
        video_segments = lib.catalog.counts()["segments"]
        extra = ExtraImageEncoder()
        second = index(lib, [tmp_path / "media"], encoders=[AudioOnlyEncoder(), extra])
        assert second.extended == 6 and second.errors == []
        consistent(lib)
        assert lib.store.count("fake-extra") == extra.calls["image"] > 5  # frames included
        assert lib.catalog.counts()["segments"] > video_segments
        top = search(lib, SearchQuery(path=files["circles"]), encoders=[extra])[0]
        assert top.path == str(files["circles"])


def test_bad_file_name_and_unreadable_folder(tmp_path, monkeypatch):
    import os as _os

    from mmstudio.core import scan as scan_module
    from mmstudio.core.samples import draw

    good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        bad_name = _os.fsencode(tmp_path / "media") + b"/caf\xe9.png"
        draw("dots", 32).save(_os.fsdecode(bad_name))
        real_walk = _os.walk

        def walk(root, onerror=None):  # the notes folder cannot be listed this time
            for folder, dirs, names in real_walk(root):
                if folder.endswith("notes"):
                    onerror(PermissionError(13, "Permission denied", folder))
                    continue
                yield folder, dirs, names

        monkeypatch.setattr(scan_module.os, "walk", walk)
        report = index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        reasons = sorted(e.reason for e in report.errors)
        assert reasons == ["cannot read folder: Permission denied",
                           "the file name is not valid UTF-8; rename it"]
        assert report.removed == 0  # the notes are not taken for deleted
        assert len(lib.catalog.files(state="ok")) == N_GOOD


def test_pending_file_that_vanished_is_forgotten(tmp_path):
    from mmstudio.core.samples import draw

    (tmp_path / "a").mkdir()
    draw("dots", 32).save(tmp_path / "a" / "x.png")
    with Library(tmp_path / "lib") as lib:
        lib.catalog.begin_file(tmp_path / "a" / "x.png", "image", 1, 1)  # a dead job's file
        lib.catalog.begin_file(tmp_path / "gone.png", "image", 1, 1)
        index(lib, [tmp_path / "a"], encoders=[FakeEncoder()])
        paths = {f.path: f.state for f in lib.catalog.files()}
        assert paths == {str(tmp_path / "a" / "x.png"): "ok"}


def special_files(folder):
    """A FIFO, a socket and links to devices, named like media: opening any of them
    would wait for ever (a FIFO with no writer) or never end (/dev/zero)."""
    import socket

    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.txt")
    links = {"zero.jpg": "/dev/zero", "noise.mp4": "/dev/urandom", "null.wav": "/dev/null",
             "tty.txt": "/dev/tty"}
    for name, target in links.items():
        os.symlink(target, folder / name)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.md"))
    return sock, {
        "pipe.txt": "not a regular file: FIFO", "sock.md": "not a regular file: socket",
        **{name: "not a regular file: character device" for name in links},
    }


def index_or_hang(lib, roots):
    """index() in a thread, so a hang fails this test instead of stopping the suite."""
    import threading

    done = {}
    thread = threading.Thread(target=lambda: done.update(report=index(
        lib, roots, encoders=[FakeEncoder()])), daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "index() hung on a special file"
    return done["report"]


def test_special_files_are_reported_never_opened(tmp_path):
    files = good_collection(tmp_path / "media")
    sock, expected = special_files(tmp_path / "media" / "odd")
    try:
        with Library(tmp_path / "lib") as lib:
            report = index_or_hang(lib, [tmp_path / "media"])
            reasons = {os.path.basename(e.path): e.reason for e in report.errors}
            assert reasons == expected
            assert report.indexed == N_GOOD  # the rest goes on
            consistent(lib)
            # named on their own (a FIFO as the folder to add, a link to a device)
            alone = index_or_hang(lib, [tmp_path / "media" / "odd" / "pipe.txt",
                                        tmp_path / "media" / "odd" / "zero.jpg"])
            assert [e.reason for e in alone.errors] == ["not a regular file: FIFO",
                                                        "not a regular file: character device"]
            with pytest.raises(MediaError, match="not a regular file: FIFO"):
                search(lib, SearchQuery(path=tmp_path / "media" / "odd" / "pipe.txt"),
                       encoders=[FakeEncoder()])
            with pytest.raises(MediaError, match="not a regular file: folder"):
                search(lib, SearchQuery(path=tmp_path / "media"), encoders=[FakeEncoder()])
            assert files
    finally:
        sock.close()
