"""Faithfulness of the relevance maps: deletion and insertion AUC (Petsiuk et al. 2018).

Images: one object (a checkerboard, stripes, rings, dots or waves drawn by
`core.samples.draw`, 35-50 % of the side) pasted at a random place on a smooth noisy
background; 35 images (10 with --quick). Each image's text query is the ImageNet class
caption (the MiniLM embedding ConSE uses) that its object alone matches most above its
background alone, in the `starter` space: the similarity explained is about the object. Every method of the starter image encoder
(ConSE into the MiniLM space) is scored against a random map (smooth, 7 x 7 cells) and
a centre-bias map on the same images; lower deletion AUC and higher insertion AUC are
better. Target: every method beats both baselines on both AUCs (means over images).

ViT rows (Chefer relevance, rollout, and the model-agnostic methods) run on a tiny
CLIP with random weights (no real CLIP weights exist offline on this machine): they
check that the code runs end to end and mean nothing about the methods' quality.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from mmstudio.core.samples import draw
from mmstudio.encoders.hf_clip import ClipEncoder
from mmstudio.encoders.profiles import load_profiles
from mmstudio.explain import faithfulness as faith
from mmstudio.explain import image as methods
from tests.bench.report import BenchResult, Table, Target

log = logging.getLogger(__name__)

NAME = "faithfulness"
PATTERNS = ("checker", "stripes", "circles", "dots", "waves")
SEED = 20261123


def make_images(n: int, seed: int = SEED) -> list[tuple[Image.Image, Image.Image, Image.Image]]:
    """n (image, its object alone, its background alone): an object pasted on a smooth
    noisy background."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pattern = PATTERNS[i % len(PATTERNS)]
        side = int(rng.integers(224, 320))
        noise = rng.integers(0, 255, (side // 16, side // 16, 3), dtype=np.uint8)
        tint = rng.integers(120, 230, 3)
        back = Image.fromarray(((noise * 0.35) + tint * 0.65).astype(np.uint8)).resize(
            (side, side), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3))
        size = int(side * rng.uniform(0.35, 0.5))
        obj = draw(pattern, size, seed=int(rng.integers(1 << 30)))
        # inside the centre crop (the 87.5 % the encoder sees)
        margin = int(side * 0.07)
        x, y = (int(rng.integers(margin, side - margin - size)) for _ in range(2))
        picture = back.copy()
        picture.paste(obj, (x, y))
        out.append((picture, obj, back))
    return out


def run(quick: bool, tmp: Path, device: str = "cpu") -> BenchResult:
    started = time.perf_counter()
    n = 10 if quick else 35
    images = make_images(n)
    _, image, _ = load_profiles(["starter"], device)
    names = [c.split(",")[0].strip() for c in image.class_names]
    captions = image.class_embeddings()  # "a photo of a ..." and synonyms, per class
    rows: dict[str, list[tuple[float, float]]] = {}
    seconds: dict[str, list[float]] = {}
    chosen = []
    for k, (picture, obj, back) in enumerate(images):
        # the caption the object matches most above its background: a query about the
        # object, so that a faithful map has something to find
        alone, behind = image.encode("image", [obj, back])["starter"]
        best = int(np.argmax(captions @ alone - captions @ behind))
        vector = captions[best]
        chosen.append(names[best])
        tower = methods.starter_tower(image, "starter", picture)
        for name, (relevance, took) in _starter_maps(tower, vector, k).items():
            seconds.setdefault(name, []).append(took)
            c = faith.curves(tower, vector, relevance, seed=k)
            rows.setdefault(name, []).append((c.deletion_auc, c.insertion_auc))
        log.info("faithfulness: %d/%d images", k + 1, n)

    table = Table(["method", "deletion AUC (lower)", "insertion AUC (higher)", "s per map"])
    means = {name: np.mean(np.asarray(v), axis=0) for name, v in rows.items()}
    for name, (dele, ins) in means.items():
        table.add(name, f"{dele:.4f}", f"{ins:.4f}", f"{np.mean(seconds[name]):.3f}")
    targets = []
    baselines = [m for m in means if "baseline" in m]
    for name in (m for m in means if m not in baselines):
        worst_del = min(means[b][0] for b in baselines)
        best_ins = max(means[b][1] for b in baselines)
        targets.append(Target(f"{name}: baselines' best deletion AUC minus its own",
                              float(worst_del - means[name][0]), ">=", 0.0))
        targets.append(Target(f"{name}: its insertion AUC minus the baselines' best",
                              float(means[name][1] - best_ins), ">=", 0.0))
    wins = {name: float(np.mean([(d < rows[b][i][0]) for b in baselines
                                 for i, (d, _) in enumerate(rows[name])]))
            for name in means if name not in baselines}

    vit_table, vit_rows = _vit_rows(tmp, [p for p, _, _ in images[: min(n, 10)]], device)
    notes = [
        f"{n} images; text queries (ImageNet class captions): " + ", ".join(chosen),
        f"{faith.STEPS} steps per curve; deletion fills with the normalised mean, "
        f"insertion starts from a Gaussian blur (kernel {faith.BLUR_KERNEL}, sigma {faith.BLUR_SIGMA}); "
        f"RISE with {methods.RISE_MASKS} masks",
        "share of images where a method's deletion AUC beats a baseline's: "
        + ", ".join(f"{k} {v:.0%}" for k, v in wins.items()),
        "ViT table: tiny CLIP with RANDOM weights; those rows check plumbing and mean nothing",
    ]
    return BenchResult(
        name=NAME, title="Relevance maps: deletion / insertion AUC (starter image encoder)",
        params={"images": n, "steps": faith.STEPS, "rise_masks": methods.RISE_MASKS},
        table=table, targets=targets, notes=notes,
        data={"starter": {k: [list(map(float, p)) for p in v] for k, v in rows.items()},
              "seconds": seconds, "vit_random_weights": vit_rows},
        seconds=time.perf_counter() - started, extra_tables={"vit_random_weights": vit_table},
    )


def _starter_maps(tower, vector, seed: int) -> dict[str, tuple[np.ndarray, float]]:
    """Every starter method's map and the seconds it took, with the two baselines."""
    h, w = tower.x.shape[-2:]
    makers = {
        "random (baseline)": lambda: faith.random_map(h, w, seed=seed),
        "centre (baseline)": lambda: faith.centre_map(h, w),
        "gradcam": lambda: methods.gradcam(tower, vector)[0],
        "rise": lambda: methods.rise(tower, vector, seed=seed)[0],
        "occlusion": lambda: methods.occlusion(tower, vector)[0],
    }
    out = {}
    for name, make in makers.items():
        t0 = time.perf_counter()
        out[name] = (make(), time.perf_counter() - t0)
    return out


def _vit_rows(tmp: Path, images, device: str):
    from tests.hf_tiny import make_tiny_clip

    encoder = ClipEncoder(str(make_tiny_clip(tmp / "tiny-clip")), device=device)
    vector = encoder.embed_texts(["a chessboard"])[0]
    rows: dict[str, list[tuple[float, float]]] = {}
    for k, picture in enumerate(images):
        tower = methods.vit_tower(encoder, encoder.space, picture)
        h, w = tower.x.shape[-2:]
        maps = {
            "random (baseline)": faith.random_map(h, w, seed=k),
            "centre (baseline)": faith.centre_map(h, w),
            "chefer": methods.attention(tower, vector, "chefer")[0],
            "rollout": methods.attention(tower, vector, "rollout")[0],
            "rise": methods.rise(tower, vector, masks=200, seed=k)[0],
            "occlusion": methods.occlusion(tower, vector)[0],
        }
        for name, relevance in maps.items():
            c = faith.curves(tower, vector, relevance, seed=k)
            rows.setdefault(name, []).append((c.deletion_auc, c.insertion_auc))
    table = Table(["method (random weights)", "deletion AUC", "insertion AUC"])
    for name, values in rows.items():
        d, i = np.mean(np.asarray(values), axis=0)
        table.add(name, f"{d:.4f}", f"{i:.4f}")
    return table, {k: [list(map(float, p)) for p in v] for k, v in rows.items()}
