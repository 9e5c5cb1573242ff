"""Is a relevance map faithful? Deletion and insertion (Petsiuk, Das & Saenko 2018, RISE).

Pixels are changed in order of relevance, most relevant first, a fixed share per step,
and the similarity is tracked on the encoder's own input tensor:
- deletion: from the image, pixels are set to the fill value (0 of the normalised
  input, the training mean, as the maps' own masking does); a faithful map makes the
  similarity fall fast: low area under the curve;
- insertion: from a blurred copy, pixels are restored; a faithful map makes it rise
  fast: high area under the curve.
Areas are the trapezoid over [0, 1] of the raw cosine similarity. Ties in a map (a flat
region, a constant map) are broken at random, so they carry no hidden order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from mmstudio.explain.image import ImageTower

STEPS = 16
#: the blur insertion starts from: Gaussian, as RISE's reference code (kernel 11, sigma 5)
BLUR_KERNEL = 11
BLUR_SIGMA = 5.0


@dataclass(frozen=True)
class Curves:
    deletion: np.ndarray  # similarity after each step, step 0 = the untouched image
    insertion: np.ndarray  # step 0 = the blurred image

    @property
    def deletion_auc(self) -> float:
        return auc(self.deletion)

    @property
    def insertion_auc(self) -> float:
        return auc(self.insertion)


def auc(curve: np.ndarray) -> float:
    """Normalised trapezoid area of a curve sampled evenly over [0, 1]."""
    y = np.asarray(curve, np.float64)
    return float((y[:-1] + y[1:]).sum() / 2 / (len(y) - 1))


def curves(tower: ImageTower, vector: np.ndarray, relevance: np.ndarray, *,
           steps: int = STEPS, seed: int = 0) -> Curves:
    """Deletion and insertion curves of a map over the tower's input, (h, w)."""
    x = tower.x
    h, w = x.shape[-2:]
    if relevance.shape != (h, w):
        raise ValueError(f"a {relevance.shape} map for a {h}x{w} input")
    rng = np.random.default_rng(seed)
    jitter = rng.random(h * w) * 1e-9 * max(float(np.abs(relevance).max()), 1e-30)
    order = torch.from_numpy(np.argsort(-(relevance.reshape(-1) + jitter), kind="stable"))
    counts = np.linspace(0, h * w, steps + 1).round().astype(int)
    ranks = torch.empty(h * w, dtype=torch.long)
    ranks[order] = torch.arange(h * w)
    # masks[k] = 1 where a pixel is among the first counts[k] in relevance order
    masks = (ranks[None, :] < torch.from_numpy(counts)[:, None]).reshape(-1, 1, h, w)
    masks = masks.to(device=x.device, dtype=x.dtype)
    blurred = blur(x)
    q = tower.query(vector)
    with tower.lock, torch.inference_mode():
        deletion = _scores(tower, x * (1 - masks), q)
        insertion = _scores(tower, blurred * (1 - masks) + x * masks, q)
    return Curves(deletion, insertion)


def _scores(tower: ImageTower, batch: torch.Tensor, q: torch.Tensor) -> np.ndarray:
    out = [tower.scores(batch[i:i + tower.batch_size], q).double().cpu()
           for i in range(0, len(batch), tower.batch_size)]
    return torch.cat(out).numpy()


def blur(x: torch.Tensor, kernel: int = BLUR_KERNEL, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of (n, c, h, w), edges replicated."""
    t = torch.arange(kernel, dtype=torch.float32) - (kernel - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    g = (g / g.sum()).to(device=x.device, dtype=x.dtype)
    c = x.shape[1]
    pad = kernel // 2
    y = F.pad(x.float().contiguous(), (pad, pad, pad, pad), mode="replicate").to(x.dtype)
    y = F.conv2d(y, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def centre_map(h: int, w: int) -> np.ndarray:
    """The centre-bias baseline: relevance falling off with distance from the centre."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return -np.hypot((yy - (h - 1) / 2) / h, (xx - (w - 1) / 2) / w)


def random_map(h: int, w: int, seed: int = 0) -> np.ndarray:
    """The random baseline, smooth like the maps it is compared with (7 x 7 cells)."""
    grid = torch.from_numpy(np.random.default_rng(seed).random((1, 1, 7, 7)).astype(np.float32))
    return F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
