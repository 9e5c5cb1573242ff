"""What an explanation is: relevance over the item, and over the query's words.

Plain data (numpy arrays, PIL images, tuples), no Qt: the GUI draws it, the benchmark
scores it, tests inspect it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mmstudio.core.preview import CurvePoint

if TYPE_CHECKING:
    from PIL import Image

#: method id -> the name shown to people
METHOD_LABELS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "chefer": "Attention relevance (Chefer)",
    "rollout": "Attention rollout",
    "gradinput": "Gradient × input",
    "rise": "RISE (random masks)",
    "occlusion": "Occlusion",
}


@dataclass(frozen=True)
class TokenScore:
    """One token of a text and how much it drove the match.

    start / end: character offsets into the text the token comes from (the query's
    text, or the item file's whole decoded text). score: signed relevance; positive
    pushes the similarity up. `weight` is the score scaled into [-1, 1] for shading.
    """

    text: str
    start: int
    end: int
    score: float
    weight: float = 0.0


@dataclass(frozen=True)
class Explanation:
    """Why `result` matched the query, by one method, in the space the search used.

    heatmap: float32 in [0, 1] (1 = most relevant), or None for a text item.
      - image: (H, W), the decoded image's own pixels; pixels the encoder never saw
        (outside its centre crop) are 0;
      - video: (H, W) over `frame`, the frame at `frame_time` (the best-matching one);
      - audio (and a video matched by its sound): (frequency bins, time frames) over
        `spectrogram`, row 0 the lowest band, for the window `window`.
    spectrogram: audio only, the log-mel (dB) of `window`, shaped like `heatmap`.
    curve: video and audio, the query's similarity to every segment of the whole file
      (from the stored vectors), in time order.
    tokens: a text item's tokens in the matched chunk, offsets into the file's text.
    query_tokens: a text query's tokens, offsets into the query text.
    similarity: the cosine similarity explained (the query against the part explained).
    """

    method: str
    space: str
    modality: str
    similarity: float
    heatmap: np.ndarray | None = None
    frame: Image.Image | None = None
    frame_time: float | None = None
    spectrogram: np.ndarray | None = None
    window: tuple[float, float] | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    tokens: list[TokenScore] = field(default_factory=list)
    query_tokens: list[TokenScore] = field(default_factory=list)
    query_method: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return METHOD_LABELS.get(self.method, self.method)


def unit_range(relevance: np.ndarray) -> np.ndarray:
    """Relevance scaled into [0, 1] for display (negative parts clipped to 0)."""
    r = np.nan_to_num(np.asarray(relevance, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    r = np.maximum(r, 0.0)
    top = float(r.max()) if r.size else 0.0
    return (r / top).astype(np.float32) if top > 0 else np.zeros_like(r)


def token_weights(tokens: list[TokenScore]) -> list[TokenScore]:
    """The same tokens with `weight` = score / max |score| (in [-1, 1])."""
    top = max((abs(t.score) for t in tokens), default=0.0)
    if not top or not np.isfinite(top):
        return [TokenScore(t.text, t.start, t.end, t.score, 0.0) for t in tokens]
    return [TokenScore(t.text, t.start, t.end, t.score, t.score / top) for t in tokens]
