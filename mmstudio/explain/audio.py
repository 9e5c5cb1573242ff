"""Relevance over a sound's spectrogram: which times and frequencies made it match.

A map is (mel bands, frames) over the log-mel spectrogram of the window the search
matched, row 0 the lowest band, beside that spectrogram for display.

- `occlusion`: time-frequency patches set to the spectrogram's floor, one at a time
  (batched); a cell's relevance is the mean drop in similarity of the patches over it.
  Works for any encoder that reads a spectrogram: the starter's signal features
  (computed from the log-mel) and CLAP (whose input is the log-mel).
- `gradinput` (CLAP): the similarity's gradient with respect to the mel input times
  the input above its floor (the floor, silence, is the reference that scores 0).

CLAP repeat-pads a short window to its 10 s input; relevance on the repeats is folded
back onto the one copy shown (and occlusion blanks a patch in every repeat).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.segments import Audio
from mmstudio.explain.image import patch_starts

#: occlusion patch as fractions of the bands and of the frames, stride half of it
PATCH_BANDS = 1 / 8
PATCH_FRAMES = 1 / 12


@dataclass
class AudioTower:
    """An audio encoder as a function of its spectrogram.

    spectrogram: (bands, frames) dB of the window, row 0 the lowest band.
    scores: (n, bands, frames) keep-masks in [0, 1] -> (n,) similarities of the window
      with the masked cells at the floor.
    gradinput: the gradient × input map, for differentiable towers (None otherwise).
    """

    spectrogram: np.ndarray
    scores: Callable[[np.ndarray], np.ndarray]
    lock: Any
    gradinput: Callable[[], tuple[np.ndarray, float]] | None = None
    batch_size: int = 32


def starter_audio_tower(encoder: Any, audio: Audio, vector: np.ndarray) -> AudioTower:
    """The starter's signal features (no weights): occlusion on its log-mel."""
    from mmstudio.core.media.audio import resample

    samples = np.ravel(resample(audio, encoder.sample_rate).samples).astype(np.float32)
    if samples.size < 400:
        samples = np.pad(samples, (0, 400 - samples.size))
    db = encoder.log_mel(samples[None])[0]  # (frames, bands)
    floor = float(db.min())
    q = _unit(vector)

    def scores(masks: np.ndarray) -> np.ndarray:
        keep = np.transpose(masks, (0, 2, 1))  # (n, frames, bands)
        masked = db[None] * keep + floor * (1 - keep)
        return encoder.features_of_log_mel(masked.astype(np.float32)) @ q

    return AudioTower(np.ascontiguousarray(db.T), scores, contextlib.nullcontext())


def clap_tower(encoder: Any, audio: Audio, vector: np.ndarray) -> AudioTower:
    """A CLAP audio tower: gradient × input and occlusion on its mel input."""
    from mmstudio.encoders.hf_clip import pooled

    pieces = encoder.prepare(audio)
    piece = pieces[0]  # a search window is 3 s, far inside the 10 s one pass takes
    inputs = encoder.audio_inputs([piece])
    x = inputs["input_features"]  # (1, channels, frames, bands)
    hop = int(getattr(encoder.feature_extractor, "hop_length", 0) or 0)
    total = x.shape[2]
    copy = min(total, max(1, math.ceil(piece.size / hop))) if hop else total
    repeats = max(1, min(total // copy, encoder.window_samples // max(1, piece.size)))
    floor = float(x.min())
    model = encoder.model
    q = _unit(vector)
    qt = torch.as_tensor(q, device=x.device)

    def embed(features: torch.Tensor) -> torch.Tensor:
        n = features.shape[0]
        out = model.get_audio_features(input_features=features,
                                       is_longer=inputs["is_longer"].expand(n, -1))
        return F.normalize(pooled(out).float(), dim=-1)

    def fold(cells: torch.Tensor) -> torch.Tensor:
        """(frames, bands) over the whole input -> (bands, copy) over one repeat."""
        used = cells[:repeats * copy].reshape(repeats, copy, -1).sum(dim=0)
        return used.T

    def scores(masks: np.ndarray) -> np.ndarray:
        keep = torch.as_tensor(masks, dtype=x.dtype, device=x.device).transpose(1, 2)
        tiled = torch.ones((len(masks), total, x.shape[3]), dtype=x.dtype, device=x.device)
        tiled[:, :repeats * copy] = keep.repeat(1, repeats, 1)
        masked = x * tiled[:, None] + floor * (1 - tiled[:, None])
        with torch.inference_mode():
            return (embed(masked) @ qt).cpu().numpy()

    def gradinput() -> tuple[np.ndarray, float]:
        with encoder.lock, torch.enable_grad():
            features = x.detach().clone().requires_grad_(True)
            score = embed(features)[0] @ qt
            (grad,) = torch.autograd.grad(score, features)
        cells = (grad * (features.detach() - floor)).sum(dim=1)[0].float()  # (frames, bands)
        return fold(cells).cpu().numpy(), float(score.detach())

    spectrogram = x[0, 0, :copy].float().T.cpu().numpy()
    return AudioTower(np.ascontiguousarray(spectrogram), scores, encoder.lock, gradinput)


def occlusion(tower: AudioTower, *, progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None) -> tuple[np.ndarray, float]:
    """(bands, frames) mean similarity drop of the floor-filled patches over each cell,
    and the window's similarity."""
    bands, frames = tower.spectrogram.shape
    pb, pf = max(1, round(bands * PATCH_BANDS)), max(1, round(frames * PATCH_FRAMES))
    places = [(b, f) for b in patch_starts(bands, pb, max(1, pb // 2))
              for f in patch_starts(frames, pf, max(1, pf // 2))]
    drop = np.zeros((bands, frames))
    count = np.zeros((bands, frames))
    with tower.lock:
        base = float(tower.scores(np.ones((1, bands, frames), np.float32))[0])
        for done in range(0, len(places), tower.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = places[done:done + tower.batch_size]
            masks = np.ones((len(chunk), bands, frames), np.float32)
            for i, (b, f) in enumerate(chunk):
                masks[i, b:b + pb, f:f + pf] = 0
            scores = tower.scores(masks)
            for (b, f), s in zip(chunk, scores, strict=True):
                drop[b:b + pb, f:f + pf] += base - float(s)
                count[b:b + pb, f:f + pf] += 1
            progress(Progress(done + len(chunk), len(places), "occluded patches"))
    return (drop / np.maximum(count, 1)).astype(np.float32), base


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)
