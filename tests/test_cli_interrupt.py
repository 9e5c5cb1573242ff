"""Ctrl-C on `mmstudio index`: the job stops cleanly and the library stays consistent."""

import os
import signal
import subprocess
import sys
import time

import pytest

from mmstudio.core.library import Library
from mmstudio.core.samples import draw

pytestmark = pytest.mark.slow


def test_ctrl_c_stops_index_cleanly_and_rerun_finishes(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for i in range(300):
        draw(("stripes", "dots", "waves")[i % 3], 96, seed=i).save(media / f"p{i:03d}.png")
    lib = tmp_path / "lib"
    cmd = [sys.executable, "-m", "mmstudio.cli", "index", str(media), "--library", str(lib)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen, deadline = b"", time.time() + 180
    while time.time() < deadline:  # wait for the progress bar to count some files
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        if any(f" {n}/300 ".encode() in seen for n in range(20, 280)):
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, seen[-500:])
    assert b"interrupted" in out

    with Library(lib) as library:
        ok = len(library.catalog.files(state="ok"))
        assert 0 < ok < 300
        assert library.store.count() == library.catalog.counts()["segments"]
    done = subprocess.run(cmd + ["--json"], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with Library(lib) as library:
        assert len(library.catalog.files(state="ok")) == 300
        assert library.store.count() == 300
