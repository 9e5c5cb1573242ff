import numpy as np
import pytest

from mmstudio.core.errors import MmstudioError, ModelUnavailableError
from mmstudio.encoders import models
from mmstudio.encoders.device import pick_device, run_in_batches


def test_run_in_batches_halves_on_out_of_memory_and_loses_nothing():
    seen, shrunk = [], []

    def encode(chunk):
        seen.append(len(chunk))
        if len(chunk) > 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"s": np.array([[float(x)] for x in chunk], np.float32)}

    out = run_in_batches(encode, list(range(10)), 16, "cuda", on_shrink=shrunk.append)
    assert out["s"][:, 0].tolist() == list(range(10))
    assert shrunk == [8, 4, 2] and seen[:4] == [10, 8, 4, 2]


def test_run_in_batches_raises_other_errors_and_oom_at_size_one():
    def broken(chunk):
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        run_in_batches(broken, [1, 2], 2, "cpu")

    def always_oom(chunk):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_in_batches(always_oom, [1, 2, 3], 4, "cuda")


def test_pick_device():
    assert pick_device("auto") in ("cpu", "cuda", "mps")
    assert pick_device("cpu") == "cpu"
    with pytest.raises(MmstudioError):
        pick_device("tpu")


def test_missing_model_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailableError, match="mmstudio models fetch org/absent-model"):
        models.resolve("org/absent-model")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        models.resolve(str(tmp_path / "no-such-folder"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="config.json"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        models.fetch("org/absent-model")  # conftest sets HF_HUB_OFFLINE=1
    listed = {m.ref: m for m in models.list_models()}
    assert not listed["openai/clip-vit-base-patch32"].on_disk


def test_space_names():
    assert models.space_name("openai/clip-vit-base-patch32") == "clip-vit-base-patch32"
    assert models.space_name("/models/My CLIP/") == "my-clip"


def test_cuda_ordinal_is_checked(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == "cuda:0"
    with pytest.raises(MmstudioError, match="1 CUDA GPU"):
        pick_device("cuda:7")
