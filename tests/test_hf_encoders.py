"""The transformers encoders (CLIP / SigLIP / SigLIP 2, CLAP) on tiny random checkpoints.

The checkpoints are built once per session by tests/hf_tiny.py and loaded exactly as a
downloaded model would be (models.resolve -> Auto classes), on the CPU, offline.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmstudio.core.errors import ModelUnavailableError
from mmstudio.core.media.audio import resample
from mmstudio.core.segments import Audio
from mmstudio.encoders import models
from mmstudio.encoders.base import Encoder, l2_normalise
from mmstudio.encoders.hf_clap import ClapEncoder
from mmstudio.encoders.hf_clip import ClipEncoder
from tests import hf_tiny


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-tiny")
    return {
        "clip": hf_tiny.make_tiny_clip(root / "tiny-clip"),
        "siglip": hf_tiny.make_tiny_siglip(root / "tiny-siglip"),
        "siglip2": hf_tiny.make_tiny_siglip2(root / "tiny-siglip2"),
        "clap": hf_tiny.make_tiny_clap(root / "tiny-clap"),
    }


def _images(n: int) -> list[Image.Image]:
    # different sizes and modes: the processor resizes, the encoder converts to RGB
    sizes = [(40, 30), (64, 64), (17, 90), (120, 33), (32, 32), (50, 51)]
    images = [Image.new("RGB", sizes[i % len(sizes)], (37 * i % 256, 90, 200 - 20 * i))
              for i in range(n)]
    images[-1] = images[-1].convert("L")
    return images


def _tone(rate: int, seconds: float, freq: float = 440.0) -> Audio:
    t = np.arange(int(rate * seconds)) / rate
    samples = 0.5 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 1234.0 * t)
    return Audio(samples.astype(np.float32), rate)


def _assert_unit_rows(v: np.ndarray, n: int, dim: int) -> None:
    assert v.shape == (n, dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def _long_text(enc: ClipEncoder | ClapEncoder, factor: float = 3.2) -> str:
    """A text of about `factor` times the token limit, each word one token, and each
    window's worth of it made of other words than the one before."""
    tok = enc.tokenizer
    words = [w for w in hf_tiny.corpus_words()[:600]
             if len(tok(" " + w, add_special_tokens=False)["input_ids"]) == 1][:40]
    assert len(words) == 40
    step = enc.text_layout.content
    n = int(factor * enc.text_layout.limit)
    return " ".join(words[10 * (i // step) + i % 10] for i in range(n))


# ----------------------------------------------------------------------- protocol


@pytest.mark.parametrize("family", ["clip", "siglip", "siglip2"])
def test_clip_family_conformance(tiny, family):
    enc = ClipEncoder(str(tiny[family]), device="cpu")
    space = models.space_name(str(tiny[family]))
    assert isinstance(enc, Encoder)
    assert enc.name == space == f"tiny-{family}"
    assert enc.routes == {"text": (space,), "image": (space,)}
    dim = 16 if family == "clip" else 32
    assert enc.dims == {space: dim}
    assert enc.max_text_tokens == (77 if family == "clip" else 64)
    assert not enc.loaded  # dims and routes come from config.json alone

    images = enc.encode("image", _images(5))
    texts = enc.encode("text", ["a photo of a cat", "the dog", ""])
    assert enc.loaded
    assert set(images) == set(texts) == {space}
    _assert_unit_rows(images[space], 5, dim)
    _assert_unit_rows(texts[space], 3, dim)
    assert enc.encode("image", [])[space].shape == (0, dim)
    with pytest.raises(ValueError, match="audio"):
        enc.encode("audio", [_tone(16000, 1)])
    # the same input gives the same vector, alone or in a batch with others
    alone = enc.encode("text", ["the dog"])[space]
    np.testing.assert_allclose(alone[0], texts[space][1], atol=1e-5)
    first = enc.encode("image", _images(5)[:1])[space]
    np.testing.assert_allclose(first[0], images[space][0], atol=1e-5)


def test_clap_conformance(tiny):
    enc = ClapEncoder(str(tiny["clap"]), device="cpu")
    space = "tiny-clap"
    assert isinstance(enc, Encoder)
    assert enc.routes == {"audio": (space,), "text": (space,)}
    assert enc.dims == {space: 16}
    assert enc.sample_rate == 48_000 and enc.window_seconds == 10
    assert enc.max_text_tokens == 77  # LAION's caption length, not RoBERTa's 512
    assert not enc.loaded

    audio = enc.encode("audio", [_tone(48_000, 3), _tone(48_000, 10, 300.0), _tone(48_000, 1)])
    texts = enc.encode("text", ["a dog barking", "rain on a roof", ""])
    _assert_unit_rows(audio[space], 3, 16)
    _assert_unit_rows(texts[space], 3, 16)
    with pytest.raises(ValueError, match="image"):
        enc.encode("image", _images(1))
    with pytest.raises(TypeError, match="Audio"):
        enc.encode("audio", ["not audio"])


@pytest.mark.parametrize("family", ["clip", "clap"])
def test_half_precision_models_still_give_float32(tiny, family, monkeypatch):
    """GPUs run in bf16/fp16 (device.inference_dtype): inputs follow the model's dtype
    and the vectors come back as float32 close to the full-precision ones."""
    from mmstudio.encoders import device as devices

    cls = ClapEncoder if family == "clap" else ClipEncoder
    kind, items = ("audio", [_tone(48_000, 3)]) if family == "clap" else ("image", _images(2))
    full = cls(str(tiny[family]), device="cpu")
    monkeypatch.setattr(devices, "inference_dtype", lambda device: torch.bfloat16)
    half = cls(str(tiny[family]), device="cpu")
    assert half.model.dtype == torch.bfloat16
    for k, batch in ((kind, items), ("text", ["a cat", "word " * 200])):
        a, b = full.encode(k, batch)[full.space], half.encode(k, batch)[half.space]
        _assert_unit_rows(b, len(batch), full.dims[full.space])
        assert np.all(np.sum(a * b, axis=1) > 0.99)


# ------------------------------------------------------------------------ loading


def test_loading_goes_through_models_resolve(tiny, monkeypatch):
    seen = []
    real = models.resolve

    def spy(ref):
        seen.append(ref)
        return real(ref)

    monkeypatch.setattr(models, "resolve", spy)
    ClipEncoder(str(tiny["clip"]))
    ClapEncoder(str(tiny["clap"]))
    assert seen == [str(tiny["clip"]), str(tiny["clap"])]


def test_loads_once_when_threads_race(tiny, monkeypatch):
    loads = []
    real = ClipEncoder._load_parts

    def counting(self, dtype):
        loads.append(1)
        return real(self, dtype)

    monkeypatch.setattr(ClipEncoder, "_load_parts", counting)
    enc = ClipEncoder(str(tiny["clip"]), device="cpu")
    texts = ["a cat", "a dog on a boat", "the sea"]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: enc.encode("text", texts)[enc.space], range(8)))
    assert len(loads) == 1
    for got in results[1:]:
        np.testing.assert_allclose(got, results[0], atol=1e-6)


def test_profiles_build_these_encoders(tiny):
    from mmstudio.encoders.profiles import load_profiles

    clip, clap = load_profiles([f"clip:{tiny['siglip']}", f"clap:{tiny['clap']}"], device="cpu")
    assert isinstance(clip, ClipEncoder) and clip.dims == {"tiny-siglip": 32}
    assert isinstance(clap, ClapEncoder) and clap.dims == {"tiny-clap": 16}
    assert not clip.loaded and not clap.loaded


def test_hub_id_loads_from_the_local_cache(tiny, tmp_path, monkeypatch):
    """An id resolves to its snapshot in the Hugging Face cache, offline."""
    import huggingface_hub.constants as hub

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-siglip"
    shutil.copytree(tiny["siglip"], repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))

    enc = ClipEncoder("tiny-org/tiny-siglip", device="cpu")
    assert enc.name == "tiny-siglip" and enc.folder == repo / "snapshots" / revision
    _assert_unit_rows(enc.encode("text", ["a cat"])["tiny-siglip"], 1, 32)


def test_missing_model_names_the_fetch_command(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for cls in (ClipEncoder, ClapEncoder):
        with pytest.raises(ModelUnavailableError,
                           match="mmstudio models fetch some-org/not-downloaded"):
            cls("some-org/not-downloaded")


def test_wrong_family_and_missing_weights_are_model_errors(tiny, tmp_path):
    with pytest.raises(ModelUnavailableError, match="not CLAP"):
        ClapEncoder(str(tiny["clip"]))
    with pytest.raises(ModelUnavailableError, match="not CLIP"):
        ClipEncoder(str(tiny["clap"]))
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny["clip"], folder)
    (folder / "model.safetensors").unlink()
    enc = ClipEncoder(str(folder), device="cpu")
    assert enc.dims == {"no-weights": 16}  # known without weights
    with pytest.raises(ModelUnavailableError, match="cannot be loaded"):
        enc.encode("text", ["a cat"])


def test_siglip_with_a_sentencepiece_tokenizer(tiny, tmp_path):
    """Real SigLIP 1 checkpoints ship a SentencePiece tokenizer (spiece.model)."""
    import sentencepiece as spm

    from tests.hf_tiny import corpus_words

    folder = tmp_path / "siglip-spm"
    shutil.copytree(tiny["siglip"], folder)
    (folder / "tokenizer.json").unlink()
    config = json.loads((folder / "config.json").read_text())
    vocab = min(int(config["text_config"]["vocab_size"]), 400)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_words()), model_prefix=str(folder / "spiece"),
        vocab_size=vocab, model_type="unigram", eos_id=1, unk_id=2, pad_id=0, bos_id=-1,
        eos_piece="</s>", unk_piece="<unk>", pad_piece="<pad>", minloglevel=2,
    )
    (folder / "spiece.vocab").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "SiglipTokenizer", "model_max_length": 64}))
    enc = ClipEncoder(str(folder), device="cpu")
    out = enc.encode("text", ["a cat on a mat", " ".join(corpus_words()[:300])])[enc.space]
    _assert_unit_rows(out, 2, enc.dims[enc.space])
    assert type(enc.tokenizer).__name__.startswith("Siglip")
    assert len(enc.text_windows(" ".join(corpus_words()[:300]))) > 1


# ------------------------------------------------------------------- long text


@pytest.mark.parametrize("family", ["clip", "siglip", "siglip2", "clap"])
def test_long_text_is_windowed_not_cut(tiny, family):
    cls = ClapEncoder if family == "clap" else ClipEncoder
    enc = cls(str(tiny[family]), device="cpu")
    layout = enc.text_layout
    text = _long_text(enc)
    windows = enc.text_windows(text)
    assert len(windows) == 4 and all(len(w) <= layout.limit for w in windows)
    assert all(w[:len(layout.prefix)] == list(layout.prefix) for w in windows)
    assert all(w[len(w) - len(layout.suffix):] == list(layout.suffix) for w in windows)

    vector = enc.encode("text", [text])[enc.space]
    _assert_unit_rows(vector, 1, enc.dims[enc.space])
    per_window = enc.embed_windows(windows)
    weights = np.array([len(w) - len(layout.prefix) - len(layout.suffix) for w in windows])
    expected = l2_normalise((weights[:, None] * per_window).sum(0, keepdims=True))
    np.testing.assert_allclose(vector, expected, atol=1e-5)
    # not silently cut: the first window alone is another vector
    assert float(vector[0] @ per_window[0]) < 0.9999
    # a short text is one window, encoded as such
    short = enc.text_windows("a dog")
    assert len(short) == 1
    np.testing.assert_allclose(enc.encode("text", ["a dog"])[enc.space],
                               enc.embed_windows(short), atol=1e-5)


def test_clip_windows_are_the_texts_of_their_words(tiny):
    """Black box: the long text's vector is the token-weighted mean of the vectors of its
    window-sized pieces of text, each encoded as an ordinary short text."""
    enc = ClipEncoder(str(tiny["clip"]), device="cpu")
    words = _long_text(enc).split()
    size = enc.text_layout.content  # 75 = 77 - BOS - EOS, one token per word
    pieces = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    assert len(pieces) == 4
    per_piece = enc.encode("text", pieces)[enc.space]
    weights = np.array([len(p.split()) for p in pieces], dtype=np.float64)
    expected = l2_normalise((weights[:, None] * per_piece).sum(0, keepdims=True))
    np.testing.assert_allclose(enc.encode("text", [" ".join(words)])[enc.space], expected,
                               atol=1e-5)


# ---------------------------------------------------------------- out of memory


def _out_of_memory_above(real, limit: int, calls: list[int], error: Exception):
    """`real`, but raising `error` (as a GPU would) for batches larger than `limit`."""

    def flaky(**inputs):
        n = next(iter(inputs.values())).shape[0]
        calls.append(n)
        if n > limit:
            raise error
        return real(**inputs)

    return flaky


def test_out_of_memory_halves_the_batch_and_keeps_it(tiny, monkeypatch):
    enc = ClipEncoder(str(tiny["clip"]), device="cpu", batch_size=8)
    images, texts = _images(7), [f"a photo of {w}" for w in hf_tiny.corpus_words()[:7]]
    want_images = enc.encode("image", images)[enc.space]
    want_texts = enc.encode("text", texts)[enc.space]
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    calls: list[int] = []
    monkeypatch.setattr(enc.model, "get_image_features", _out_of_memory_above(
        enc.model.get_image_features, 2, calls, oom))
    np.testing.assert_allclose(enc.encode("image", images)[enc.space], want_images, atol=1e-5)
    assert calls[:3] == [7, 4, 2] and enc.batch_sizes["image"] == 2
    calls.clear()
    enc.encode("image", images)
    assert max(calls) == 2  # the smaller size is remembered
    assert enc.batch_sizes["text"] == 8  # per kind

    monkeypatch.setattr(enc.model, "get_text_features", _out_of_memory_above(
        enc.model.get_text_features, 2, calls, oom))
    np.testing.assert_allclose(enc.encode("text", texts)[enc.space], want_texts, atol=1e-5)
    assert enc.batch_sizes["text"] == 2


def test_clap_out_of_memory_back_off(tiny, monkeypatch):
    enc = ClapEncoder(str(tiny["clap"]), device="cpu", batch_size=4)
    clips = [_tone(48_000, 3, f) for f in (220.0, 330.0, 440.0, 550.0)]
    want = enc.encode("audio", clips)[enc.space]
    calls: list[int] = []
    oom = RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")
    monkeypatch.setattr(enc.model, "get_audio_features", _out_of_memory_above(
        enc.model.get_audio_features, 1, calls, oom))
    np.testing.assert_allclose(enc.encode("audio", clips)[enc.space], want, atol=1e-5)
    assert calls[:3] == [4, 2, 1] and enc.batch_sizes["audio"] == 1


# ------------------------------------------------------------------ attention


@pytest.mark.parametrize("family", ["clip", "siglip", "siglip2"])
def test_eager_attention_weights_are_returned(tiny, family):
    enc = ClipEncoder(str(tiny[family]), device="cpu", attn_implementation="eager")
    model = enc.model
    assert model.config._attn_implementation == "eager"
    inputs = enc.image_inputs(_images(3))
    with torch.inference_mode():
        vision = model.vision_model(**inputs, output_attentions=True)
    tokens = 17 if family == "clip" else 16  # CLS + 4x4 patches; SigLIP has no CLS
    assert len(vision.attentions) == 2
    for layer in vision.attentions:
        assert layer is not None and layer.shape == (3, 2, tokens, tokens)
        torch.testing.assert_close(layer.sum(-1), torch.ones(3, 2, tokens))
    ids = torch.tensor(enc.text_windows("a photo of a cat"))
    with torch.inference_mode():
        text = model.text_model(input_ids=ids, output_attentions=True)
    assert len(text.attentions) == 2
    assert all(a is not None and a.shape == (1, 2, ids.shape[1], ids.shape[1])
               for a in text.attentions)
    # the vectors do not depend on the attention implementation
    default = ClipEncoder(str(tiny[family]), device="cpu")
    np.testing.assert_allclose(enc.encode("image", _images(3))[enc.space],
                               default.encode("image", _images(3))[enc.space], atol=1e-4)


# ----------------------------------------------------------------------- audio


def test_clap_resamples_to_its_rate(tiny):
    enc = ClapEncoder(str(tiny["clap"]), device="cpu")
    low = _tone(16_000, 3)
    got = enc.encode("audio", [low, resample(low, 48_000), _tone(48_000, 3)])[enc.space]
    # the encoder's own resampling is the shared PyAV one
    np.testing.assert_allclose(got[0], got[1], atol=1e-5)
    # and a tone sampled at 16 kHz ends up where the same tone sampled at 48 kHz does
    assert float(got[0] @ got[2]) > 0.999


def test_clap_windows_of_any_length(tiny):
    enc = ClapEncoder(str(tiny["clap"]), device="cpu")
    assert [p.size for p in enc.prepare(_tone(48_000, 3))] == [144_000]
    assert [p.size for p in enc.prepare(_tone(48_000, 10))] == [480_000]
    assert [p.size for p in enc.prepare(_tone(48_000, 25))] == [400_000] * 3
    assert [p.size for p in enc.prepare(Audio(np.zeros(0, np.float32), 16_000))] == [1]

    clips = [_tone(48_000, 3), _tone(48_000, 10), _tone(48_000, 25),
             Audio(np.zeros(0, np.float32), 16_000), _tone(48_000, 0.2)]
    first = enc.encode("audio", clips)[enc.space]
    _assert_unit_rows(first, len(clips), 16)
    # deterministic: no random crop, no random "longer" flag
    np.testing.assert_array_equal(first, enc.encode("audio", clips)[enc.space])
    # a long recording is the length-weighted mean of its pieces
    pieces = enc.prepare(_tone(48_000, 25))
    per_piece = enc.encode("audio", [Audio(p, 48_000) for p in pieces])[enc.space]
    np.testing.assert_allclose(first[2], l2_normalise(per_piece.sum(0, keepdims=True))[0],
                               atol=1e-5)


def test_ingest_batch_size_follows_the_device(tiny):
    enc = ClipEncoder(str(tiny["clip"]), device="cpu")
    assert enc.batch_size == 32  # before loading: no device yet
    enc.encode("text", ["a cat"])
    assert enc.batch_size == max(enc.batch_sizes.values()) == 32  # CPU defaults: 32 text
    assert ClipEncoder(str(tiny["clip"]), device="cpu", batch_size=8).batch_size == 8
