"""Fusion classifiers: synthetic features where only fusion can win, and a library end to end."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmstudio import cli_fusion
from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.ingest import index
from mmstudio.core.jobs import CancelToken
from mmstudio.core.library import Library
from mmstudio.fusion import (
    Features,
    FusionReport,
    Hyper,
    Input,
    predict,
    report,
    resolve_methods,
    train,
    train_features,
    versions,
)
from mmstudio.fusion.saved import schema_folder
from mmstudio.labels import Schema
from tests.fakes import FakeEncoder

# small data, full batch: a whole cross-validation runs in about a second
QUICK = Hyper(epochs=20, batch_size=0, lr=1e-2)
INPUTS = (Input("image", "img"), Input("audio", "aud"))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def xor_features(n: int = 200, seed: int = 0, missing: float = 0.1):
    """Colour (image) and pitch (audio) each a direction plus noise; the label says
    whether they agree (XOR): either modality alone is at chance. A tenth of the items
    lack one of the two."""
    rng = np.random.default_rng(seed)
    colour, pitch = rng.integers(0, 2, n), rng.integers(0, 2, n)
    img = unit(0.5 * rng.standard_normal((n, 16)) + np.outer(2 * colour - 1, rng.standard_normal(16)))
    aud = unit(0.5 * rng.standard_normal((n, 12)) + np.outer(2 * pitch - 1, rng.standard_normal(12)))
    present = np.ones((n, 2), bool)
    gone = rng.random(n) < missing
    present[gone, rng.integers(0, 2, n)[gone]] = False
    img[~present[:, 0]] = 0
    aud[~present[:, 1]] = 0
    targets = ["same" if c == p else "differ" for c, p in zip(colour, pitch, strict=True)]
    return Features(np.arange(100, 100 + n), INPUTS, (img, aud), present), targets


@pytest.fixture(scope="module")
def xor_report():
    features, targets = xor_features()
    return train_features(features, targets, ["same", "differ"], "all", folds=3, hyper=QUICK,
                          refit=False).report


def test_fusion_solves_what_no_single_modality_can(xor_report):
    r = xor_report
    assert list(r.methods) == ["probe:image:img", "probe:audio:aud", "early", "late", "attention"]
    best_probe = max(m.accuracy for m in r.probes.values())
    assert best_probe < 0.65  # XOR: each modality alone is near chance
    for method in ("early", "attention"):
        assert r.methods[method].accuracy >= best_probe + 0.25, method
    assert r.best in ("early", "attention")
    # late fusion mixes per-modality predictions: it cannot solve XOR, but its numbers hold
    late = r.methods["late"]
    assert 0.3 <= late.accuracy <= 0.75
    assert sum(late.late_weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(late.late_weights) == {"image:img", "audio:aud"}
    for m in r.methods.values():
        assert np.sum(m.confusion) == r.n_items == 200 and len(m.predictions) == 200
        diagonal = sum(m.confusion[k][k] for k in range(len(r.classes)))
        assert diagonal / r.n_items == pytest.approx(m.accuracy)
        assert {p.true for p in m.predictions} == set(r.classes)
        assert sum(s.support for s in m.per_class.values()) == 200
        cell = m.cell("same", "differ")
        assert len(cell) == m.confusion[0][1]
        assert all(p.predicted == "differ" and 0.0 <= p.confidence <= 1.0 for p in cell)


def test_dropping_a_needed_modality_drops_fusion_to_chance(xor_report):
    for method in ("early", "attention"):
        m = xor_report.methods[method]
        for name in ("image:img", "audio:aud"):
            assert m.ablation[name].accuracy <= m.accuracy - 0.25, (method, name)


def test_report_round_trips_through_json(xor_report):
    again = FusionReport.from_dict(json.loads(json.dumps(xor_report.to_dict())))
    assert again == xor_report


def test_attention_goes_to_the_modality_that_decides():
    rng = np.random.default_rng(3)
    n = 200
    label = rng.integers(0, 2, n)
    img = unit(0.7 * rng.standard_normal((n, 16)) + np.outer(2 * label - 1, rng.standard_normal(16)) / 4)
    aud = unit(rng.standard_normal((n, 12)))  # noise
    features = Features(np.arange(n), INPUTS, (img, aud), np.ones((n, 2), bool))
    targets = ["yes" if c else "no" for c in label]
    r = train_features(features, targets, ["yes", "no"], ["attention"], folds=3, hyper=QUICK,
                       refit=False).report
    attention = r.methods["attention"]
    assert attention.accuracy > 0.8
    for by in (attention.attention, attention.attention_predicted):
        for label_name in ("yes", "no"):
            assert by[label_name]["image:img"] > by[label_name]["audio:aud"] + 0.2, by


def test_training_is_seeded():
    features, targets = xor_features(80, seed=5)
    a, b = (train_features(features, targets, ["same", "differ"], ["early", "late"], folds=2,
                           hyper=QUICK, refit=False).report for _ in range(2))
    assert a.methods["early"].predictions == b.methods["early"].predictions
    assert a.methods["late"].late_weights == b.methods["late"].late_weights


def test_methods_and_label_errors():
    names = ["image:img", "audio:aud"]
    assert resolve_methods(["attention", "probes"], names) == [
        "probe:image:img", "probe:audio:aud", "attention"]
    with pytest.raises(MmstudioError, match="unknown fusion method"):
        resolve_methods(["middle"], names)
    features, targets = xor_features(20)
    lonely = ["odd"] + targets[1:]
    with pytest.raises(MmstudioError, match="'odd' has only one"):
        train_features(features, lonely, ["same", "differ", "odd"], hyper=QUICK)
    with pytest.raises(MmstudioError, match="two labels"):
        train_features(features, ["same"] * 20, ["same", "differ"], hyper=QUICK)


# -- a library end to end -----------------------------------------------------------------


def _build(root, n: int = 24):
    """n items of a picture and a sound with the same stem (red or blue, high or low),
    labelled by colour except the last four, and one picture without a sound."""
    media = root / "media"
    media.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for i in range(n):
        colour = (200, 40, 40) if i % 2 == 0 else (40, 40, 200)
        pixels = np.clip(np.array(colour) + rng.normal(0, 25, (24, 24, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(media / f"item{i:02d}.png")
        pitch = 3000 if (i // 2) % 2 else 300
        sf.write(media / f"item{i:02d}.wav",
                 (0.5 * np.sin(2 * np.pi * pitch * t) + 0.02 * rng.standard_normal(len(t))
                  ).astype(np.float32), 16000)
    Image.new("RGB", (24, 24), (210, 30, 30)).save(media / "lonely.png")
    with Library(root / "lib") as lib:
        index(lib, [media], encoders=[FakeEncoder()])
        ids = {p.rsplit("/", 1)[-1].split(".")[0]: item
               for item, files in lib.catalog.item_files().items() for p, _ in files}
        lib.labels.save_schema(Schema.of("colour", ["red", "blue", "green"]))
        lib.labels.set_labels("colour", {ids[f"item{i:02d}"]: {"red" if i % 2 == 0 else "blue"}
                                         for i in range(n - 4)})
        lib.labels.save_schema(Schema.of("tags", ["a", "b"], multi=True))
    return root / "lib", ids


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("fusion-lib"))


@pytest.fixture
def library_path(built, tmp_path):
    path, ids = built
    shutil.copytree(path, tmp_path / "lib")
    return tmp_path / "lib", ids


def test_train_saves_versions_suggests_and_predicts_the_same_after_reload(library_path):
    path, ids = library_path
    hyper = Hyper(epochs=15)
    with Library(path) as lib:
        first = train(lib, "colour", folds=3, hyper=hyper)
        assert first.version == 1 and first.classes == ("red", "blue")  # green: no items
        assert first.n_items == 20 and first.inputs == ("image:fake-visual", "audio:fake-sound")
        assert first.methods[first.best].accuracy >= 0.9  # colour is plain in the picture
        folder = schema_folder(lib, "colour") / "v1"
        config = json.loads((folder / "config.json").read_text())
        assert config["classes"] == ["red", "blue"] and config["n_items"] == 20
        assert [(i["name"], i["dim"]) for i in config["inputs"]] == [
            ("image:fake-visual", 8), ("audio:fake-sound", 4)]
        assert config["hyper"]["epochs"] == 15 and config["best"] == first.best
        for method in ("early", "late", "attention", "probe:image:fake-visual"):
            assert (folder / config["methods"][method]["file"]).is_file()
            assert config["methods"][method]["file"].endswith(".safetensors")
        assert not list(folder.glob("*.pt")) and not list(folder.glob("*.pkl"))
        suggestions = lib.labels.suggestions("colour")
        assert set(suggestions) == set(ids.values())  # every item with vectors
        assert {s.source for s in suggestions.values()} == {f"fusion:{first.best}:v1"}
        assert suggestions[ids["lonely"]].label == "red"  # a picture alone still gets one
        assert suggestions[ids["item23"]].label == "blue"  # unlabelled

        second = train(lib, "colour", methods=["attention", "probes"], folds=3, hyper=hyper)
        assert second.version == 2 and versions(lib, "colour") == [1, 2]
        assert list(second.methods) == ["probe:image:fake-visual", "probe:audio:fake-sound",
                                        "attention"]
        best_source = f"fusion:{second.best}:v2"
        assert {s.source for s in lib.labels.suggestions("colour").values()} == {best_source}
        before = lib.labels.suggestions("colour")
    with Library(path) as lib:
        assert report(lib, "colour") == second
        assert report(lib, "colour", 1) == first
        again = predict(lib, "colour", sorted(ids.values()))
        assert set(again) == set(ids.values())
        for item, (label, prob, probs) in again.items():
            assert label == before[item].label
            assert prob == pytest.approx(before[item].score, abs=1e-5)
            assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        early = predict(lib, "colour", [ids["item00"]], version=1, method="early")
        assert early[ids["item00"]][0] == "red"
        with pytest.raises(MmstudioError, match="no fusion version 7"):
            report(lib, "colour", 7)
        with pytest.raises(MmstudioError, match="no method 'late'"):
            predict(lib, "colour", [ids["item00"]], method="late")


def test_train_cancels_cleanly_and_refuses_what_it_cannot_train(library_path):
    path, ids = library_path
    with Library(path) as lib:
        cancel = CancelToken()

        def progress(p):
            if "fold" in p.message:
                cancel.cancel()

        with pytest.raises(Cancelled):
            train(lib, "colour", folds=3, hyper=Hyper(epochs=15), progress=progress,
                  cancel=cancel)
        assert versions(lib, "colour") == [] and lib.labels.suggestions("colour") == {}
        assert not schema_folder(lib, "colour").exists() or not any(
            schema_folder(lib, "colour").iterdir())
        with pytest.raises(MmstudioError, match="single-label"):
            train(lib, "tags")
        lib.labels.set_labels("colour", {ids["item20"]: {"green"}})
        with pytest.raises(MmstudioError, match="'green' has only one labelled item"):
            train(lib, "colour", hyper=Hyper(epochs=2))
        with pytest.raises(MmstudioError, match="no fusion models"):
            report(lib, "colour")


def test_cli_trains_and_reports(library_path, capsys):
    path, _ = library_path
    parser = argparse.ArgumentParser()
    cli_fusion.add_parser(parser.add_subparsers(dest="command"))

    def run(*argv):
        return cli_fusion.run(parser.parse_args(["fusion", *argv, "--library", str(path)]))

    assert run("train", "--schema", "colour", "--folds", "3", "--epochs", "10") == 0
    out = capsys.readouterr().out
    assert "fusion v1 of schema 'colour': 20 items, 2 labels" in out
    for text in ("macro-F1", "acc w/o image:fake-visual", "probe:audio:fake-sound", "early",
                 "late fusion weights: image:fake-visual", "attention per modality",
                 "saved as v1"):
        assert text in out, text
    assert run("train", "--schema", "colour", "--method", "late", "--folds", "2",
               "--epochs", "5") == 0
    capsys.readouterr()
    assert run("report", "--version", "1") == 0
    assert "fusion v1 of schema 'colour'" in capsys.readouterr().out
    assert run("report", "--schema", "colour", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 2 and set(data["methods"]) == {
        "probe:image:fake-visual", "probe:audio:fake-sound", "late"}
    with pytest.raises(MmstudioError, match="--method"):
        run("train", "--schema", "colour", "--method", "middle")
