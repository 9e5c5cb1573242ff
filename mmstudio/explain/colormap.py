"""Colour maps for relevance overlays: [0, 1] arrays -> RGBA bytes, no matplotlib.

Each map is a handful of anchor colours sampled from the published map and linearly
interpolated into a 256-entry table; alpha follows the relevance, so irrelevant pixels
leave the picture untouched under the overlay.
"""

from __future__ import annotations

from functools import cache

import numpy as np

ANCHORS: dict[str, tuple[str, ...]] = {
    # matplotlib's perceptually uniform maps (van der Walt & Smith), 9 samples each
    "inferno": ("#000004", "#1f0c48", "#550f6d", "#88226a", "#ba3655",
                "#e35933", "#f98e09", "#f8c932", "#fcffa4"),
    "viridis": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
                "#28ae80", "#5ec962", "#addc30", "#fde725"),
    # the classic rainbow people know from Grad-CAM figures
    "jet": ("#00007f", "#0000ff", "#007fff", "#00ffff", "#7fff7f",
            "#ffff00", "#ff7f00", "#ff0000", "#7f0000"),
    "grey": ("#000000", "#ffffff"),
}

COLORMAPS: tuple[str, ...] = tuple(ANCHORS)


@cache
def lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colour table of a map named in COLORMAPS."""
    try:
        anchors = ANCHORS[name]
    except KeyError:
        raise ValueError(f"unknown colour map {name!r}; use one of {', '.join(COLORMAPS)}") from None
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in anchors], np.float64)
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(t, x, rgb[:, c]) for c in range(3)], axis=1)
    table = np.round(table).astype(np.uint8)
    table.flags.writeable = False
    return table


def colorize(heatmap: np.ndarray, name: str = "inferno", *, alpha: bool = True) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 4) uint8 RGBA, C-contiguous.

    alpha: opacity grows with relevance (0 at 0, full from 0.5 up), so the overlay tints
    what matters and leaves the rest visible; otherwise opaque.
    """
    h = np.clip(np.nan_to_num(np.asarray(heatmap, np.float32)), 0.0, 1.0)
    idx = np.round(h * 255).astype(np.uint8)
    out = np.empty(h.shape + (4,), np.uint8)
    out[..., :3] = lut(name)[idx]
    out[..., 3] = np.round(np.minimum(h * 2.0, 1.0) * 255).astype(np.uint8) if alpha else 255
    return out


def blend(rgb: np.ndarray, heatmap: np.ndarray, name: str = "inferno",
          opacity: float = 0.6) -> np.ndarray:
    """(H, W, 3) uint8 picture with the coloured map over it (same shape as the map)."""
    rgba = colorize(heatmap, name).astype(np.float32)
    alpha = rgba[..., 3:] / 255.0 * opacity
    out = np.asarray(rgb, np.float32) * (1 - alpha) + rgba[..., :3] * alpha
    return np.round(out).astype(np.uint8)


#: a spectrogram is drawn over this many dB below its loudest cell: quieter is black
SPECTROGRAM_DB_RANGE = 80.0


def spectrogram_picture(db: np.ndarray, db_range: float = SPECTROGRAM_DB_RANGE) -> np.ndarray:
    """Log-mel dB (row 0 the lowest band) -> uint8 greyscale, low bands at the bottom
    (flip a map over it the same way, `heatmap[::-1]`)."""
    s = np.nan_to_num(np.asarray(db, np.float32)[::-1], nan=-np.inf)
    top = float(s.max()) if s.size else 0.0
    grey = np.clip((s - (top - db_range)) / db_range, 0.0, 1.0)
    return np.round(grey * 255).astype(np.uint8)
