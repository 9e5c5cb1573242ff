"""The embedding map's core: layouts fitted on generated clusters, the cache, incremental
placement of new items, and the colour modes."""

from __future__ import annotations

import numpy as np
import pytest

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.jobs import CancelToken
from mmstudio.core.library import Library
from mmstudio.labels import Schema, Suggestion
from mmstudio.maps import build, colours, umap_worker
from mmstudio.maps.layout import fit, umap_missing
from tests.map_factory import SPACE, add_items, clusters


def separation(xy: np.ndarray, truth: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy of the clusters in 2-D: 1.0 when none mix."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((truth[d.argmin(1)] == truth).mean())


def nearest_centre(xy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return ((xy[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)


@pytest.fixture
def library(tmp_path):
    with Library(tmp_path / "lib") as lib:
        yield lib


def test_pca_layout_separates_clusters_and_places_like_its_fit():
    vectors, truth = clusters(80)
    layout = fit(SPACE, np.arange(len(vectors)), vectors, "pca")
    assert layout.xy.shape == (240, 2) and layout.fitted == 240
    assert separation(layout.xy, truth) > 0.97
    # a linear basis: placing the fitted vectors again lands exactly where the fit did
    np.testing.assert_allclose(layout.place(vectors), layout.xy, atol=1e-5)
    # the first axis carries the most variance
    assert layout.xy[:, 0].var() >= layout.xy[:, 1].var()


def test_tiny_spaces_still_get_a_map():
    one = fit(SPACE, np.array([7]), np.ones((1, 4), np.float32) / 2, "pca")
    assert one.xy.shape == (1, 2) and np.isfinite(one.xy).all()
    two = fit(SPACE, np.array([1, 2]), np.eye(4, dtype=np.float32)[:2], "pca")
    assert abs(two.xy[0, 0] - two.xy[1, 0]) > 0.5
    with pytest.raises(MmstudioError, match="no item"):
        fit(SPACE, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), "pca")
    with pytest.raises(MmstudioError, match="unknown map method"):
        fit(SPACE, np.array([1]), np.ones((1, 4), np.float32), "tsne")


def test_projection_job_caches_the_layout_and_reads_it_back(library):
    vectors, truth = clusters(60)
    ids = add_items(library, vectors, segments=2)  # an item's segments average into one point
    assert build.map_spaces(library) == {SPACE: 180}
    seen = []
    state = build.compute_map(library, SPACE, "pca", progress=seen.append)
    assert state.fitted_now and state.added == 180
    assert sorted(state.layout.item_ids.tolist()) == sorted(ids)
    order = np.argsort(state.layout.item_ids)
    assert separation(state.layout.xy[order], truth[np.argsort(np.argsort(ids))][order]) > 0.97
    assert any("reading gen vectors" in p.message for p in seen)
    path = build.cache_path(library.path, SPACE, "pca")
    assert path.exists()
    again = build.open_map(library, SPACE, "pca")  # nothing changed: nothing placed
    assert (again.added, again.moved, again.removed) == (0, 0, 0)
    np.testing.assert_array_equal(again.layout.xy, state.layout.xy)
    np.testing.assert_array_equal(again.layout.item_ids, state.layout.item_ids)
    assert build.open_map(library, SPACE, "umap") is None  # never computed
    path.write_bytes(b"PK\x03\x04 not really a zip")  # a damaged cache is fitted again
    assert build.load(library.path, SPACE, "pca") is None
    assert build.open_map(library, SPACE, "pca") is None


def test_new_items_are_placed_without_moving_the_map(library):
    vectors, truth = clusters(60, seed=3)
    add_items(library, vectors)
    first = build.compute_map(library, SPACE, "pca").layout
    centres = np.array([first.xy[truth == c].mean(0) for c in range(3)])
    more, more_truth = clusters(10, seed=3)  # same centres, new noise
    rng = np.random.default_rng(9)
    more = more + rng.normal(scale=0.05, size=more.shape).astype(np.float32)
    more /= np.linalg.norm(more, axis=1, keepdims=True)
    new_ids = add_items(library, more, start=1000)
    state = build.open_map(library, SPACE, "pca")
    assert (state.added, state.moved, state.removed) == (30, 0, 0)
    layout = state.layout
    assert len(layout) == 210 and layout.fitted == 180 and layout.placed == 30
    old = np.isin(layout.item_ids, first.item_ids)
    np.testing.assert_array_equal(layout.xy[old], first.xy)  # nothing on the map moved
    rows = [int(np.flatnonzero(layout.item_ids == i)[0]) for i in new_ids]
    np.testing.assert_allclose(layout.xy[rows], first.place(more), atol=1e-6)
    assert (nearest_centre(layout.xy[rows], centres) == more_truth).mean() >= 0.95
    # the update was written: opening again places nothing
    assert build.open_map(library, SPACE, "pca").added == 0


def test_removed_and_reindexed_items_leave_or_move(library):
    vectors, _ = clusters(20)
    ids = add_items(library, vectors)
    before = build.compute_map(library, SPACE, "pca").layout
    gone = library.catalog.query("SELECT id FROM files WHERE item_id = ?", (ids[0],))[0][0]
    library.catalog.remove_files([gone])
    # the second item's file indexed again with another vector (its content changed)
    add_items(library, vectors[-1:], start=1)
    state = build.open_map(library, SPACE, "pca")
    assert (state.added, state.moved, state.removed) == (0, 1, 1)
    assert ids[0] not in state.layout.item_ids
    row = int(np.flatnonzero(state.layout.item_ids == ids[1])[0])
    np.testing.assert_allclose(state.layout.xy[row], before.place(vectors[-1:])[0], atol=1e-6)


@pytest.mark.skipif(umap_missing() is not None, reason="umap-learn is not installed")
def test_umap_layout_and_incremental_placement(library):
    vectors, truth = clusters(50, seed=5)
    add_items(library, vectors)
    first = build.compute_map(library, SPACE, "umap").layout
    order = np.argsort(first.item_ids)
    assert separation(first.xy[order], truth) > 0.95
    assert len(first.anchors) == 150 and first.anchors.dtype == np.float16
    centres = np.array([first.xy[order][truth == c].mean(0) for c in range(3)])
    more, more_truth = clusters(8, seed=5)
    add_items(library, more, start=500)
    state = build.open_map(library, SPACE, "umap")
    assert state.added == 24
    old = np.isin(state.layout.item_ids, first.item_ids)
    np.testing.assert_array_equal(state.layout.xy[old], first.xy)
    new_xy = state.layout.xy[~old]
    assert (nearest_centre(new_xy, centres) == more_truth).mean() >= 0.95
    # the cache keeps the anchors: a reload places a query the same way
    loaded = build.load(library.path, SPACE, "umap")
    np.testing.assert_allclose(loaded.place(more[:3]), state.layout.place(more[:3]), atol=1e-5)


def test_umap_refuses_tiny_spaces_and_says_how_to_get_it(monkeypatch):
    vectors, _ = clusters(1)
    if umap_missing() is None:
        with pytest.raises(MmstudioError, match="at least 5"):
            fit(SPACE, np.arange(3), vectors, "umap")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert "mmstudio[umap]" in umap_missing()
    with pytest.raises(MmstudioError, match="umap-learn"):
        fit(SPACE, np.arange(3), vectors, "umap")


def test_colour_modes(library):
    vectors, _ = clusters(4, k=2)
    images = add_items(library, vectors[:4])
    texts = add_items(library, vectors[4:6], start=10, modality="text")
    sounds = add_items(library, vectors[6:], start=20, modality="audio")
    ids = images + texts + sounds
    by_modality = colours.colour_items(library, ids, "modality")
    assert {c.name: c.count for c in by_modality.categories} == {"image": 4, "text": 2,
                                                                 "audio": 2}
    assert tuple(by_modality.rgb[0]) == colours.rgb_of("#2f7ed8")
    assert tuple(by_modality.rgb[5]) == colours.rgb_of("#27ae60")

    store = library.labels
    schema = Schema.of("kind", ["cat", "dog"])
    store.save_schema(schema)
    store.set_labels("kind", {images[0]: ["dog"], images[1]: ["cat"]})
    store.set_suggestions("kind", {images[2]: Suggestion("dog", 0.9, "knn"),
                                   texts[0]: Suggestion("cat", 0.2, "knn")})
    label = colours.colour_items(library, ids, "label", schema="kind")
    assert tuple(label.rgb[0]) == colours.rgb_of(schema.colour("dog"))
    assert tuple(label.rgb[1]) == colours.rgb_of(schema.colour("cat"))
    assert tuple(label.rgb[2]) == colours.rgb_of(colours.NONE_HEX)
    assert [(c.name, c.count) for c in label.categories] == [("cat", 1), ("dog", 1),
                                                             ("unlabeled", 6)]
    predicted = colours.colour_items(library, ids, "predicted", schema="kind")
    assert tuple(predicted.rgb[2]) == colours.rgb_of(schema.colour("dog"))
    assert predicted.missing == 6
    confidence = colours.colour_items(library, ids, "confidence", schema="kind")
    assert confidence.values[2] == pytest.approx(0.9) and np.isnan(confidence.values[0])
    assert tuple(confidence.rgb[2]) != tuple(confidence.rgb[4])  # 0.9 and 0.2 differ
    assert tuple(confidence.rgb[0]) == colours.rgb_of(colours.NONE_HEX)

    score = colours.colour_items(library, ids, "score", scores={ids[3]: 0.2, ids[5]: 0.8})
    assert score.value_range == (0.2, 0.8) and score.missing == 6
    assert tuple(score.rgb[3]) == colours.rgb_of("#440154")  # lowest: viridis' start
    assert tuple(score.rgb[5]) == colours.rgb_of("#fde725")  # highest: its end
    with pytest.raises(MmstudioError, match="schema"):
        colours.colour_items(library, ids, "label")
    with pytest.raises(MmstudioError, match="unknown colour mode"):
        colours.colour_items(library, ids, "mood")


def test_viridis_is_monotonic_in_lightness():
    ramp = colours.viridis(np.linspace(0, 1, 50)).astype(float)
    lightness = ramp @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(lightness) > -1.0)


def test_cli_computes_updates_and_exports_the_map(tmp_path, capsys):
    import csv
    import json

    from mmstudio.cli import main

    with Library(tmp_path / "lib") as lib:
        vectors, _ = clusters(10)
        ids = add_items(lib, vectors)
    out = tmp_path / "points.csv"
    args = ["map", "--library", str(tmp_path / "lib"), "--json"]
    assert main([*args, "--csv", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["space"] == SPACE and summary["items"] == 30 and summary["fitted_now"]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(int(r["item_id"]) for r in rows) == sorted(ids)
    assert rows[0]["path"].endswith(".png") and rows[0]["modality"] == "image"
    assert all(np.isfinite(float(r["x"])) for r in rows)
    with Library(tmp_path / "lib") as lib:
        add_items(lib, vectors[:2], start=100)
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert not again["fitted_now"] and again["added"] == 2 and again["items"] == 32
    assert main([*args, "--space", "nope"]) == 2
    assert "no items in space 'nope'" in capsys.readouterr().err


def test_an_item_is_the_mean_of_its_segments_and_files(library):
    vectors, _ = clusters(10)
    add_items(library, vectors[:10])
    # a text file with the same name joins the picture's item: its point is the mean
    add_items(library, vectors[10:11], start=0, modality="text")
    state = build.compute_map(library, SPACE, "pca")
    item = library.catalog.item_of_path("/gen/item-000000.png")
    assert item == library.catalog.item_of_path("/gen/item-000000.txt")
    mean = vectors[0] + vectors[10]
    mean /= np.linalg.norm(mean)
    row = int(np.flatnonzero(state.layout.item_ids == item)[0])
    np.testing.assert_allclose(state.layout.xy[row], state.layout.place(mean[None])[0],
                               atol=1e-5)
    assert not np.allclose(state.layout.xy[row], state.layout.place(vectors[:1])[0], atol=1e-3)


def test_a_map_fitted_on_too_few_items_is_fitted_again(library):
    vectors, _ = clusters(40)
    add_items(library, vectors[:1])  # the map was opened while the first folder came in
    tiny = build.compute_map(library, SPACE, "pca").layout
    assert tiny.fitted == 1
    add_items(library, vectors[1:], start=1)
    state = build.open_map(library, SPACE, "pca")
    assert state.fitted_now and state.layout.fitted == 120 and state.layout.placed == 0
    assert len(np.unique(state.layout.xy.round(4), axis=0)) > 100


def test_caches_that_do_not_fit_the_space_are_fitted_again(library):
    vectors, _ = clusters(10)
    add_items(library, vectors)
    build.compute_map(library, SPACE, "pca")
    assert build.load(library.path, SPACE, "pca", dim=vectors.shape[1]) is not None
    assert build.load(library.path, SPACE, "pca", dim=vectors.shape[1] * 2) is None
    # another method's file, or another space's, under this name
    build.cache_path(library.path, SPACE, "umap").write_bytes(
        build.cache_path(library.path, SPACE, "pca").read_bytes())
    assert build.load(library.path, SPACE, "umap") is None
    assert build.cache_path(library.path, "a/b", "pca") != build.cache_path(library.path,
                                                                             "a_b", "pca")
    layout = build.load(library.path, SPACE, "pca")
    bad = layout.__class__(**{**layout.__dict__, "xy": np.full_like(layout.xy, np.nan)})
    build.save(bad, library.path)
    assert build.load(library.path, SPACE, "pca") is None
    assert not list(build.cache_path(library.path, SPACE, "pca").parent.glob("*.tmp"))


def test_items_with_broken_vectors_are_left_off_the_map(library):
    vectors, _ = clusters(10)
    add_items(library, vectors)
    broken = add_items(library, np.full((1, vectors.shape[1]), np.nan, np.float32), start=99)
    state = build.compute_map(library, SPACE, "pca")
    assert len(state.layout) == 30 and broken[0] not in state.layout.item_ids
    assert np.isfinite(state.layout.xy).all()


def test_placed_counts_survive_removals(library):
    vectors, _ = clusters(10)
    ids = add_items(library, vectors)
    build.compute_map(library, SPACE, "pca")
    files = [library.catalog.query("SELECT id FROM files WHERE item_id = ?", (i,))[0][0]
             for i in ids[:5]]
    library.catalog.remove_files(files)
    add_items(library, vectors[:3], start=200)
    state = build.open_map(library, SPACE, "pca")
    assert (state.added, state.removed, len(state.layout)) == (3, 5, 28)
    assert state.layout.placed == 3 and state.layout.fitted == 30


@pytest.mark.skipif(umap_missing() is not None, reason="umap-learn is not installed")
def test_umap_fits_in_a_process_that_reports_epochs_errors_and_stops_on_cancel(library):
    # the worker's errors are the job's, and the worker stays for the next fit
    with pytest.raises(MmstudioError, match="UMAP failed: .*n_neighbors"):
        umap_worker.fit_umap(np.eye(8, dtype=np.float32), {"n_neighbors": 0})
    vectors, _ = clusters(100, seed=2)
    add_items(library, vectors)
    seen, fitting = [], []
    token = CancelToken()

    def progress(p):
        seen.append(p)
        if p.total and "epoch" in p.message:  # the fit is under way in the worker
            fitting.append(umap_worker._worker.proc)
            token.cancel()

    with pytest.raises(Cancelled):
        build.compute_map(library, SPACE, "umap", progress=progress, cancel=token)
    assert fitting and fitting[0].poll() is not None  # the fitting process was stopped
    assert umap_worker._worker is None  # the next fit starts a new one
    assert build.open_map(library, SPACE, "umap") is None  # nothing was cached


def test_an_item_that_loses_a_file_moves_to_the_mean_of_what_is_left(library):
    vectors, _ = clusters(10)
    add_items(library, vectors[:10])
    add_items(library, vectors[10:11], start=0, modality="text")  # item-000000: two files
    before = build.compute_map(library, SPACE, "pca").layout
    item = library.catalog.item_of_path("/gen/item-000000.png")
    text_file = library.catalog.query("SELECT id FROM files WHERE path = ?",
                                      ("/gen/item-000000.txt",))[0][0]
    library.catalog.remove_files([text_file])
    state = build.open_map(library, SPACE, "pca")
    assert (state.added, state.moved, state.removed) == (0, 1, 0)
    row = int(np.flatnonzero(state.layout.item_ids == item)[0])
    np.testing.assert_allclose(state.layout.xy[row], before.place(vectors[:1])[0], atol=1e-5)
    others = state.layout.item_ids != item
    np.testing.assert_array_equal(
        state.layout.xy[others], before.xy[np.isin(before.item_ids, state.layout.item_ids[others])])
    assert build.open_map(library, SPACE, "pca").moved == 0  # and it stays put
