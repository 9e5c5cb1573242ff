"""The UMAP worker process's protocol, with a stand-in `umap` module (fast, no numba):
a fit that stops half-way never leaves its answer for the next one, and a worker that
cannot start says why."""

from __future__ import annotations

import numpy as np
import pytest

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.maps import umap_worker
from mmstudio.maps.umap_worker import fit_umap

STAND_IN = '''
import os, time
from tqdm.auto import tqdm

if os.environ.get("STAND_IN_BROKEN"):
    raise ImportError("the stand-in umap is broken")


class UMAP:
    def __init__(self, tqdm_kwds=None, n_epochs=50, delay=0.01, **params):
        self.tqdm_kwds, self.n_epochs, self.delay = tqdm_kwds or {}, n_epochs, delay

    def fit_transform(self, x):
        for _ in tqdm(range(self.n_epochs), **self.tqdm_kwds):
            time.sleep(self.delay)
        return x[:, :2] + 1
'''


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    (tmp_path / "umap.py").write_text(STAND_IN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # found before the real package
    umap_worker.stop()
    yield
    umap_worker.stop()  # the next fit of the session gets the real umap again


def test_a_fit_stopped_by_its_progress_never_answers_the_next_fit(stand_in):
    def progress(p):  # as a job's progress does once its token is cancelled
        if p.done >= 1:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        fit_umap(np.zeros((8, 4), np.float32), {"n_epochs": 1000}, progress=progress)
    assert umap_worker._worker is None  # killed, not left fitting
    xy = fit_umap(np.arange(12, dtype=np.float32).reshape(3, 4), {"n_epochs": 3})
    np.testing.assert_array_equal(xy, [[1, 2], [5, 6], [9, 10]])
    seen = []
    fit_umap(np.zeros((2, 4), np.float32), {"n_epochs": 40}, progress=seen.append)
    assert seen and seen[-1].done == seen[-1].total == 40  # epochs counted to the end


def test_a_worker_that_cannot_start_says_why(stand_in, monkeypatch):
    monkeypatch.setenv("STAND_IN_BROKEN", "1")
    big = np.zeros((20_000, 16), np.float32)  # more than a pipe holds: the write fails too
    with pytest.raises(MmstudioError, match="ended unexpectedly.*the stand-in umap is broken"):
        fit_umap(big, {})
    assert umap_worker._worker is None
