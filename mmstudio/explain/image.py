"""Relevance maps over images: which pixels made an image close to the query.

Every method explains the score the search ranked by, the cosine similarity between
the image's embedding and the query's vector in the same space, computed on the very
tensor the encoder sees (the encoder's own resize, crop and normalisation). Maps come
out at that tensor's size; `to_item` puts them back over the image's own pixels.

- `gradcam` (Selvaraju et al. 2017) on the starter EfficientNet-Lite0's last
  convolutional block, through the ConSE head when the space is `starter`.
- `attention` for ViT towers (CLIP, SigLIP): Chefer et al.'s gradient-weighted
  relevance, or attention rollout (see `attention.py`), on eager attention.
- `rise` (Petsiuk et al. 2018) and `occlusion` (Zeiler & Fergus 2014): model-agnostic,
  many forward passes in batches, with progress and cancel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.explain import attention as attn

Box = tuple[float, float, float, float]

#: RISE defaults: masks, cells per side, keep probability (the paper used 4000-8000
#: masks on a GPU; 1000 keep a CPU explanation within seconds, see `make bench`)
RISE_MASKS = 1000
RISE_CELLS = 8
RISE_KEEP = 0.5
#: occlusion patch and stride, as fractions of the input side
OCCLUSION_PATCH = 1 / 7
OCCLUSION_STRIDE = 1 / 14


@dataclass
class ImageTower:
    """An encoder's image model as a differentiable function of its input tensor.

    x: the image as the encoder sees it, (1, 3, h, w) on the model's device.
    box: where that tensor lies in the image, (left, top, right, bottom) pixels.
    embed: (n, 3, h, w) -> (n, dim) unit embeddings in `space`, differentiable.
    features / head: for Grad-CAM, the last convolutional feature map, and the rest of
    the network from it up to the embedding before its L2 normalisation (None for
    towers without one).
    """

    space: str
    x: torch.Tensor
    box: Box
    embed: Callable[[torch.Tensor], torch.Tensor]
    lock: Any
    batch_size: int = 32
    features: Callable[[torch.Tensor], torch.Tensor] | None = None
    head: Callable[[torch.Tensor], torch.Tensor] | None = None
    model: Any = None  # a transformers model with a ViT vision tower, for attention methods

    def query(self, vector: np.ndarray) -> torch.Tensor:
        q = torch.as_tensor(np.asarray(vector, np.float32).reshape(-1), device=self.x.device)
        return F.normalize(q, dim=0)

    def scores(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.embed(x).float() @ q


def starter_tower(encoder: Any, space: str, image: Image.Image) -> ImageTower:
    """The starter EfficientNet-Lite0 (`starter` via ConSE, or `starter-image`)."""
    from mmstudio.encoders.efficientnet_lite import crop_box, preprocess

    model = encoder.model
    x = preprocess([image]).to(next(model.parameters()).device,
                               memory_format=torch.channels_last)  # as the model is

    def embed(t: torch.Tensor) -> torch.Tensor:
        return encoder.heads(model.forward_features(t))[space]

    def head(fmap: torch.Tensor) -> torch.Tensor:
        return encoder.heads(fmap.mean(dim=(2, 3)), unit=False)[space]

    return ImageTower(space, x, crop_box(*image.size), embed, encoder.lock, batch_size=32,
                      features=model.extract_features, head=head)


def vit_tower(encoder: Any, space: str, image: Image.Image) -> ImageTower:
    """A CLIP or SigLIP image tower (pixel_values input; SigLIP 2 NaFlex patches are not)."""
    from mmstudio.encoders.hf_clip import pooled

    inputs = encoder.image_inputs([image])
    x = inputs.get("pixel_values")
    if x is None or x.dim() != 4 or set(inputs) - {"pixel_values"}:
        raise ValueError(f"{encoder.name} takes patches, not a pixel grid: no image map")
    model = encoder.model

    def embed(t: torch.Tensor) -> torch.Tensor:
        return F.normalize(pooled(model.get_image_features(pixel_values=t)).float(), dim=-1)

    box = processor_box(encoder.image_processor, image.size)
    return ImageTower(space, x, box, embed, encoder.lock, batch_size=32, model=model)


def processor_box(processor: Any, size: tuple[int, int]) -> Box:
    """The part of the image a transformers image processor keeps: the central crop
    after a shortest-edge resize (CLIP), or all of it (SigLIP resizes to a square)."""
    w, h = size
    short = _field(getattr(processor, "size", None), "shortest_edge")
    crop = getattr(processor, "crop_size", None)
    if getattr(processor, "do_center_crop", False) and short and crop is not None:
        scale = short / min(w, h)
        cw = min(w, _field(crop, "width") / scale)
        ch = min(h, _field(crop, "height") / scale)
        return ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    return (0.0, 0.0, float(w), float(h))


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


# ---------------------------------------------------------------------------- methods


def gradcam(tower: ImageTower, vector: np.ndarray) -> tuple[np.ndarray, float]:
    """Grad-CAM on the last feature map: (h, w) map, and the cosine similarity.

    The gradient is that of the query's dot product with the embedding before its L2
    normalisation, as Grad-CAM takes logits rather than probabilities: the cosine's
    gradient is orthogonal to the embedding, so its channel weights cancel over the map
    (sum_k alpha_k f_k = 0) and the object, whose activations dominate the embedding,
    comes out negative.
    """
    if tower.features is None or tower.head is None:
        raise ValueError("Grad-CAM needs a convolutional feature map")
    q = tower.query(vector)
    with tower.lock, torch.enable_grad():
        fmap = tower.features(tower.x).detach().requires_grad_(True)
        embedding = tower.head(fmap).float()[0]
        (grad,) = torch.autograd.grad(embedding @ q, fmap)
        similarity = float(F.normalize(embedding.detach(), dim=0) @ q)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # alpha_k: pooled gradients
    cam = F.relu((weights * fmap.detach()).sum(dim=1, keepdim=True))
    return _upsample(cam, tower.x.shape[-2:]), similarity


def attention(tower: ImageTower, vector: np.ndarray, method: str,
              start_layer: int = -1) -> tuple[np.ndarray, float]:
    """Chefer relevance or rollout through a ViT's attention: (h, w) map and the score
    (see `attention_grid`)."""
    grid, score = attention_grid(tower, vector, method, start_layer)
    return _upsample(grid.float()[None, None].clamp(min=0), tower.x.shape[-2:]), score


def attention_grid(tower: ImageTower, vector: np.ndarray, method: str,
                   start_layer: int = -1) -> tuple[torch.Tensor, float]:
    """Chefer relevance or rollout of each patch, as the (rows, columns) patch grid.

    The layers run on eager attention for this one pass (SDPA returns no weights), then
    the model goes back to what it used. start_layer: where Chefer's relevance starts
    accumulating; -1, the last block alone, follows the authors' CLIP notebook.
    """
    model = tower.model
    if model is None or method not in ("chefer", "rollout"):
        raise ValueError(f"{method} needs a ViT image tower")
    vision = model.vision_model
    q = tower.query(vector)
    caught: list[torch.Tensor] = []
    pools: list[torch.Tensor] = []
    hooks = [layer.self_attn.register_forward_hook(lambda _m, _i, out: caught.append(out[1]))
             for layer in vision.encoder.layers]
    head = getattr(vision, "head", None) if getattr(vision, "use_head", True) else None
    if head is not None:  # SigLIP pools with an attention probe instead of a CLS token
        hooks.append(head.attention.register_forward_hook(
            lambda _m, _i, out: pools.append(out[1])))
    with tower.lock:
        previous = model.config._attn_implementation
        try:
            model.set_attn_implementation("eager")
            with torch.enable_grad():
                score = tower.scores(tower.x, q)[0]
                if any(a is None for a in caught) or not caught:
                    raise RuntimeError("the model returned no attention weights")
                grads = torch.autograd.grad(score, caught) if method == "chefer" else None
                score = score.detach()
        finally:
            model.set_attn_implementation(previous)
            for hook in hooks:
                hook.remove()
    maps = [a[0].float() for a in caught]
    relevance = (attn.chefer(maps, [g[0].float() for g in grads], start_layer)
                 if grads is not None else attn.rollout(maps))
    pool = pools[0][0, 0] if pools else None
    tokens = attn.token_map(relevance, pool)
    patch = int(model.config.vision_config.patch_size)
    gh, gw = (s // patch for s in tower.x.shape[-2:])
    if tokens.numel() != gh * gw:
        raise RuntimeError(f"{tokens.numel()} patch tokens for a {gh}x{gw} grid")
    return tokens.reshape(gh, gw), float(score)


def rise(tower: ImageTower, vector: np.ndarray, *, masks: int = RISE_MASKS,
         cells: int = RISE_CELLS, keep: float = RISE_KEEP, seed: int = 0,
         progress: ProgressCallback = no_progress,
         cancel: CancelToken | None = None) -> tuple[np.ndarray, float]:
    """RISE: the similarity-weighted mean of random smooth masks.

    Masks are `cells` x `cells` binary grids (kept with probability `keep`), upsampled
    bilinearly and shifted at random by up to one cell. Removed pixels take the value 0
    of the normalised input (the training mean). The mean score is subtracted before
    weighting, which leaves the map's order unchanged in expectation and removes the
    noise of how often each pixel happened to be kept.
    """
    q = tower.query(vector)
    h, w = tower.x.shape[-2:]
    cell_h, cell_w = math.ceil(h / cells), math.ceil(w / cells)
    rng = np.random.default_rng(seed)
    weighted = torch.zeros((h, w), dtype=torch.float64, device=tower.x.device)
    coverage = torch.zeros_like(weighted)
    total = 0.0
    with tower.lock, torch.inference_mode():
        base = float(tower.scores(tower.x, q)[0])
        for done in range(0, masks, tower.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            n = min(tower.batch_size, masks - done)
            m = _rise_masks(rng, n, cells, keep, (h, w), (cell_h, cell_w), tower.x.device)
            s = tower.scores(tower.x * m.to(tower.x.dtype), q).double()
            weighted += (s[:, None, None] * m[:, 0].double()).sum(dim=0)
            coverage += m[:, 0].double().sum(dim=0)
            total += float(s.sum())
            progress(Progress(done + n, masks, "random masks"))
    saliency = (weighted - (total / masks) * coverage) / (masks * keep)
    return saliency.float().cpu().numpy(), base


def _rise_masks(rng: np.random.Generator, n: int, cells: int, keep: float,
                size: tuple[int, int], cell: tuple[int, int], device) -> torch.Tensor:
    grid = torch.from_numpy((rng.random((n, 1, cells, cells)) < keep).astype(np.float32))
    up = F.interpolate(grid, size=((cells + 1) * cell[0], (cells + 1) * cell[1]),
                       mode="bilinear", align_corners=False)
    dy = rng.integers(0, cell[0], n)
    dx = rng.integers(0, cell[1], n)
    out = torch.stack([up[i, :, dy[i]:dy[i] + size[0], dx[i]:dx[i] + size[1]] for i in range(n)])
    return out.to(device)


def occlusion(tower: ImageTower, vector: np.ndarray, *, patch: float = OCCLUSION_PATCH,
              stride: float = OCCLUSION_STRIDE, progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None) -> tuple[np.ndarray, float]:
    """Occlusion: slide a patch of the mean value over the image; a pixel's relevance is
    the mean drop in similarity over the patches that covered it."""
    q = tower.query(vector)
    h, w = tower.x.shape[-2:]
    ph, pw = max(1, round(h * patch)), max(1, round(w * patch))
    sh, sw = max(1, round(h * stride)), max(1, round(w * stride))
    places = [(y, x) for y in patch_starts(h, ph, sh) for x in patch_starts(w, pw, sw)]
    drop = torch.zeros((h, w), dtype=torch.float64)
    count = torch.zeros_like(drop)
    with tower.lock, torch.inference_mode():
        base = float(tower.scores(tower.x, q)[0])
        for done in range(0, len(places), tower.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = places[done:done + tower.batch_size]
            x = tower.x.repeat(len(chunk), 1, 1, 1)
            for i, (y0, x0) in enumerate(chunk):
                x[i, :, y0:y0 + ph, x0:x0 + pw] = 0
            s = tower.scores(x, q).double().cpu()
            for i, (y0, x0) in enumerate(chunk):
                drop[y0:y0 + ph, x0:x0 + pw] += base - float(s[i])
                count[y0:y0 + ph, x0:x0 + pw] += 1
            progress(Progress(done + len(chunk), len(places), "occluded patches"))
    return (drop / count.clamp(min=1)).float().numpy(), base


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Patch origins from 0 that cover the whole axis (the last one flush with the end)."""
    starts = list(range(0, max(1, size - patch + 1), stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def _upsample(grid: torch.Tensor, size) -> np.ndarray:
    """(1, 1, gh, gw) -> (h, w) float32 by bilinear interpolation."""
    out = F.interpolate(grid.detach().float(), size=tuple(int(s) for s in size),
                        mode="bilinear", align_corners=False)
    return out[0, 0].cpu().numpy()


def to_item(relevance: np.ndarray, box: Box, size: tuple[int, int]) -> np.ndarray:
    """A map over the encoder's input put back over the image: (height, width) float32,
    0 where the encoder saw nothing (outside its crop)."""
    width, height = size
    out = np.zeros((height, width), np.float32)
    left, top = max(0, round(box[0])), max(0, round(box[1]))
    right, bottom = min(width, round(box[2])), min(height, round(box[3]))
    if right <= left or bottom <= top:
        return out
    picture = Image.fromarray(np.asarray(relevance, np.float32), mode="F")
    out[top:bottom, left:right] = np.asarray(
        picture.resize((right - left, bottom - top), Image.Resampling.BILINEAR), np.float32)
    return out
