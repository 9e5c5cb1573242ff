"""Relevance maps (mmstudio.explain): the methods' arithmetic, their plumbing through
real and tiny models, and explain() over every kind of search result."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.ingest import index
from mmstudio.core.jobs import CancelToken
from mmstudio.core.library import Library
from mmstudio.core.search import SearchQuery, search, search_job
from mmstudio.encoders.hf_clip import ClipEncoder
from mmstudio.encoders.profiles import load_profiles
from mmstudio.explain import (
    ExplainCache,
    Explanation,
    cache_key,
    colorize,
    explain,
    methods_for,
)
from mmstudio.explain import attention as attn
from mmstudio.explain import image as image_methods
from tests.hf_tiny import make_tiny_clap, make_tiny_clip, make_tiny_siglip
from tests.media_factory import good_collection

# ------------------------------------------------------------- attention arithmetic

# Two layers, one head, three tokens (CLS and two patches); every row sums to 1.
A1 = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
A2 = torch.tensor([[[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
G1 = torch.tensor([[[1.0, 2.0, 3.0], [-1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]])
G2 = torch.tensor([[[2.0, 5.0, 4.0], [0.0, 0.0, 0.0], [0.0, 0.0, -2.0]]])


def test_rollout_matches_the_hand_computed_example():
    # 0.5 A + 0.5 I: rows [.75 .25 0] and [.75 0 .25] (rows already sum to 1);
    # CLS row of the product (layer 2 after layer 1): .75 * [.75 .25 0] + .25 * [0 0 1]
    relevance = attn.rollout([A1, A2])
    assert torch.allclose(relevance[0], torch.tensor([0.5625, 0.1875, 0.25], dtype=torch.float64))
    assert torch.allclose(attn.token_map(relevance), torch.tensor([0.1875, 0.25], dtype=torch.float64))


def test_chefer_matches_the_hand_computed_example():
    # layer 1: relu(G1*A1) = [[.5 1 0] 0 0] -> R = I + that = [[1.5 1 0] [0 1 0] [0 0 1]]
    # layer 2: relu(G2*A2) = [[1 0 2] 0 0] -> R += [[1 0 2] ...] @ R, CLS row [3 2 2]
    relevance = attn.chefer([A1, A2], [G1, G2], start_layer=0)
    assert torch.allclose(relevance[0], torch.tensor([3.0, 2.0, 2.0], dtype=torch.float64))
    assert torch.allclose(relevance[1:], torch.eye(3, dtype=torch.float64)[1:])
    # the last layer alone (the authors' CLIP default): CLS row [1 0 0] + [1 0 2]
    last = attn.chefer([A1, A2], [G1, G2], start_layer=-1)
    assert torch.allclose(attn.token_map(last), torch.tensor([0.0, 2.0], dtype=torch.float64))


def test_a_pooling_row_replaces_the_cls_row():
    relevance = attn.rollout([A1, A2])
    pool = torch.tensor([0.2, 0.3, 0.5])
    expected = pool.double() @ relevance
    assert torch.allclose(attn.token_map(relevance, pool), expected)
    assert attn.token_map(relevance, pool).shape == (3,)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"clip": make_tiny_clip(root / "tiny-clip"),
            "siglip": make_tiny_siglip(root / "tiny-siglip"),
            "clap": make_tiny_clap(root / "tiny-clap")}


def _independent_attentions(encoder, x, vector, with_grads):
    """The tiny CLIP's attention maps and their gradients through transformers' own
    output_attentions path (not the hooks explain uses)."""
    model = encoder.model
    model.set_attn_implementation("eager")
    try:
        with torch.enable_grad():
            out = model.vision_model(pixel_values=x, output_attentions=True)
            embedding = model.visual_projection(out.pooler_output)[0]
            score = torch.nn.functional.normalize(embedding, dim=0) @ torch.as_tensor(vector)
            grads = torch.autograd.grad(score, out.attentions) if with_grads else None
    finally:
        model.set_attn_implementation("sdpa")
    return [a[0] for a in out.attentions], grads and [g[0] for g in grads], float(score.detach())


@pytest.mark.parametrize("method", ["rollout", "chefer"])
def test_vit_maps_on_a_two_layer_tiny_clip_follow_the_formulas(tiny_models, method):
    encoder = ClipEncoder(str(tiny_models["clip"]), device="cpu")
    assert encoder.model.config.vision_config.num_hidden_layers == 2
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 52, 3), np.uint8))
    tower = image_methods.vit_tower(encoder, encoder.space, picture)
    vector = np.random.default_rng(1).standard_normal(encoder.dims[encoder.space]).astype(np.float32)
    vector /= np.linalg.norm(vector)
    grid, score = image_methods.attention_grid(tower, vector, method, start_layer=0)

    maps, grads, expected_score = _independent_attentions(encoder, tower.x, vector,
                                                           method == "chefer")
    relevance = attn.chefer(maps, grads, 0) if method == "chefer" else attn.rollout(maps)
    side = encoder.model.config.vision_config.image_size // encoder.model.config.vision_config.patch_size
    assert grid.shape == (side, side)
    assert torch.allclose(grid, attn.token_map(relevance).reshape(side, side), atol=1e-6)
    assert score == pytest.approx(expected_score, abs=1e-5)
    # the model goes back to the attention it was loaded with
    assert encoder.model.config._attn_implementation == "sdpa"


def test_siglip_maps_use_its_attention_pooling_head(tiny_models):
    encoder = ClipEncoder(str(tiny_models["siglip"]), device="cpu")
    picture = Image.new("RGB", (30, 20), (200, 40, 40))
    tower = image_methods.vit_tower(encoder, encoder.space, picture)
    vector = np.ones(encoder.dims[encoder.space], np.float32)
    grid, _ = image_methods.attention_grid(tower, vector, "chefer")
    config = encoder.model.config.vision_config
    side = config.image_size // config.patch_size
    assert grid.shape == (side, side) and torch.isfinite(grid).all()
    assert tower.box == (0.0, 0.0, 30.0, 20.0)  # SigLIP squashes the whole picture


# --------------------------------------------------------------- the starter's CNN

def _red_square() -> tuple[Image.Image, tuple[int, int, int, int]]:
    picture = Image.new("RGB", (300, 300), (230, 230, 230))
    box = (40, 40, 150, 150)
    ImageDraw.Draw(picture).rectangle(box, fill=(220, 0, 0))
    return picture, box


@pytest.fixture(scope="module")
def starter():
    text, image, audio = load_profiles(["starter"], "cpu")
    return text, image, audio


def test_gradcam_puts_the_red_square_first(starter):
    text, image, _ = starter
    picture, (x0, y0, x1, y1) = _red_square()
    tower = image_methods.starter_tower(image, "starter", picture)
    relevance, similarity = image_methods.gradcam(tower, text.embed(["red"])[0])
    heatmap = image_methods.to_item(relevance, tower.box, picture.size)
    assert heatmap.shape == (300, 300) and np.isfinite(heatmap).all()
    inside = heatmap[y0:y1 + 1, x0:x1 + 1].sum()
    assert inside > heatmap.sum() - inside  # 13.7 % of the area holds most of the mass
    # the similarity explained is the one the search ranks by
    stored = image.encode("image", [picture])["starter"][0]
    assert similarity == pytest.approx(float(stored @ text.embed(["red"])[0]), abs=1e-4)


def test_rise_and_occlusion_maps_are_finite_and_cancellable(starter):
    text, image, _ = starter
    picture, _ = _red_square()
    tower = image_methods.starter_tower(image, "starter-image", picture)
    vector = image.encode("image", [picture.crop((40, 40, 150, 150))])["starter-image"][0]
    steps = []
    relevance, _ = image_methods.rise(tower, vector, masks=64, progress=steps.append)
    assert relevance.shape == (224, 224) and np.isfinite(relevance).all()
    assert steps[-1].done == steps[-1].total == 64
    relevance, _ = image_methods.occlusion(tower, vector)
    assert relevance.shape == (224, 224) and np.isfinite(relevance).all()

    cancel = CancelToken()
    seen = []

    def cancel_after_first(step):
        seen.append(step)
        cancel.cancel()

    with pytest.raises(Cancelled):
        image_methods.rise(tower, vector, masks=640, progress=cancel_after_first, cancel=cancel)
    assert len(seen) == 1  # stopped after the first batch, not after all 640 masks


def test_to_item_leaves_what_the_crop_never_saw_at_zero():
    out = image_methods.to_item(np.ones((4, 4), np.float32), (10.0, 0.0, 30.0, 20.0), (40, 20))
    assert out.shape == (20, 40)
    assert out[:, 10:30].min() == 1.0 and out[:, :10].max() == 0 and out[:, 30:].max() == 0


# ---------------------------------------------------------------- explain() end to end

@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("explain")
    files = good_collection(root / "media")
    lib = Library(root / "lib")
    lib.add_profiles(["starter", f"clip:{tiny_models['clip']}", f"clap:{tiny_models['clap']}"])
    report = index(lib, [root / "media"])
    assert report.errors == []
    yield lib, files
    lib.close()


def _in_space(lib, outcome, space, modality=None):
    """The query's results from `space` alone (each then has result.space == space):
    which space wins a fused search is up to the random tiny models, so a test that
    needs a result of a given space asks that space."""
    return search(lib, outcome.query, vectors={space: outcome.vectors[space]},
                  modalities=[modality] if modality else None, limit=200)


def _first(lib, outcome, space, modality):
    results = _in_space(lib, outcome, space, modality)
    assert results and {r.space for r in results} == {space}
    return results[0]


#: which kinds of item each space of the library holds a vector for, so which a text
#: query meets there (the video, silent, only by its frames in the image spaces)
SPACE_MODALITIES = {"starter": {"image", "video", "text"},
                    "tiny-clip": {"image", "video", "text"},
                    "tiny-clap": {"audio", "text"}}


def test_every_kind_of_result_gets_a_map_of_its_shape(library):
    lib, files = library
    query = SearchQuery(text="dots and waves")
    outcome = search_job(lib, query)
    assert set(outcome.vectors) == set(SPACE_MODALITIES)
    # the best result of each kind in each space, each space asked on its own (in the
    # fused list an item carries only the space where it ranked best, which the random
    # tiny models decide)
    for space, modalities in SPACE_MODALITIES.items():
        for modality in sorted(modalities):
            result = _first(lib, outcome, space, modality)
            methods = [m for m in methods_for(lib, result) if m != "rise"]  # rise: own test
            assert methods, (modality, space)
            _check_every_method(lib, query, outcome, result, methods)
    # and a result of the fused search is explained in the space it carries
    fused = outcome.results[0]
    _check_every_method(lib, query, outcome, fused, methods_for(lib, fused)[:1])


def _check_every_method(lib, query, outcome, result, methods):
    """Explain `result` by each of `methods`; each map has the shape of what matched."""
    for method in methods:
        e = explain(lib, query, result, vectors=outcome.vectors, method=method)
        assert isinstance(e, Explanation) and e.method == method
        assert np.isfinite(e.similarity)
        if result.modality == "image":
            size = Image.open(result.path).size
            assert e.heatmap.shape == (size[1], size[0])
        elif result.modality == "video" and e.spectrogram is None:
            assert e.heatmap.shape == (e.frame.height, e.frame.width)
            assert e.frame_time == result.start and len(e.curve) > 1
        elif e.spectrogram is not None:
            assert e.heatmap.shape == e.spectrogram.shape and e.window is not None
            assert len(e.curve) >= 1
        else:  # a text item: its tokens point at their own characters
            whole = files_text(result.path)
            assert e.tokens and all(whole[t.start:t.end] == t.text for t in e.tokens)
            assert all(result.char_start <= t.start < t.end <= result.char_end
                       for t in e.tokens)
        if e.heatmap is not None:
            assert np.isfinite(e.heatmap).all()
            assert 0 <= e.heatmap.min() and e.heatmap.max() <= 1
        # the text query's own words are scored against the stored vector
        assert [t.text for t in e.query_tokens] and \
            "".join(t.text for t in e.query_tokens).replace(" ", "") in "dotsandwaves"


def files_text(path):
    from mmstudio.core.media.text import read_text

    return read_text(path)


def test_methods_follow_the_encoder(library):
    lib, files = library
    outcome = search_job(lib, SearchQuery(path=files["checker"]))
    # a picture is encoded in both starter spaces and in CLIP's; each is asked alone
    assert set(outcome.vectors) == {"starter", "starter-image", "tiny-clip"}
    image = {space: _first(lib, outcome, space, "image") for space in outcome.vectors}
    assert methods_for(lib, image["starter"]) == ["gradcam", "rise", "occlusion"]
    assert methods_for(lib, image["starter-image"]) == ["gradcam", "rise", "occlusion"]
    assert methods_for(lib, image["tiny-clip"]) == ["chefer", "rollout", "rise", "occlusion"]
    with pytest.raises(MmstudioError, match="cannot explain"):
        explain(lib, outcome.query, image["starter"], vectors=outcome.vectors,
                method="chefer")
    sounds = search_job(lib, SearchQuery(path=files["tone"]))
    assert set(sounds.vectors) == {"starter-audio", "tiny-clap"}
    audio = {space: _first(lib, sounds, space, "audio") for space in sounds.vectors}
    assert methods_for(lib, audio["starter-audio"]) == ["occlusion"]
    assert methods_for(lib, audio["tiny-clap"]) == ["gradinput", "occlusion"]


def test_an_explain_job_can_be_cancelled(library):
    lib, files = library
    outcome = search_job(lib, SearchQuery(path=files["checker"]))
    result = _first(lib, outcome, "starter", "image")
    cancel = CancelToken()
    started = threading.Event()

    def progress(step):
        if step.total > 1:  # inside the masks, not while reading the file
            started.set()
            cancel.cancel()

    with pytest.raises(Cancelled):
        explain(lib, outcome.query, result, vectors=outcome.vectors, method="rise",
                progress=progress, cancel=cancel)
    assert started.is_set()


def test_cache_keeps_the_latest_explanations():
    cache = ExplainCache(capacity=2)
    query = SearchQuery(text="x")
    keys = [("a", i) for i in range(3)]
    for i, key in enumerate(keys):
        cache.put(key, Explanation("gradcam", "s", "image", float(i)))
    assert cache.get(keys[0]) is None and cache.get(keys[2]).similarity == 2.0
    assert cache_key(query, _Result(), "rise") != cache_key(query, _Result(), "occlusion")


class _Result:
    space, item_id, segment_id = "starter", 1, 2


def test_colorize_fades_irrelevant_pixels():
    rgba = colorize(np.array([[0.0, 0.25, 1.0]]), "inferno")
    assert rgba.shape == (1, 3, 4) and rgba.dtype == np.uint8
    assert list(rgba[0, :, 3]) == [0, 128, 255]
    assert tuple(rgba[0, 2, :3]) == (0xFC, 0xFF, 0xA4)  # inferno's brightest end
    with pytest.raises(ValueError):
        colorize(np.zeros((1, 1)), "nope")


def test_cli_explains_a_result_and_writes_the_overlay(tmp_path, capsys):
    import json

    from mmstudio import cli

    files = good_collection(tmp_path / "media")
    lib = str(tmp_path / "lib")
    assert cli.main(["index", str(tmp_path / "media"), "--library", lib]) == 0
    capsys.readouterr()
    out = tmp_path / "map.png"
    code = cli.main(["explain", "--file", str(files["checker"]), "--library", lib,
                     "--method", "gradcam", "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["method"] == "gradcam"
    assert report["result"]["path"] == str(files["checker"])
    with Image.open(out) as written:
        assert written.size == Image.open(files["checker"]).size
    assert cli.main(["explain", "dots", "--library", lib, "--colormap", "nope"]) == 2
