"""End to end on the real starter models (MiniLM-L6, EfficientNet-Lite0, audio features)."""

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import ImageEnhance

from mmstudio import cli
from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.core.samples import draw, tone, write_video
from mmstudio.core.search import SearchQuery, search
from mmstudio.encoders.profiles import load_profiles
from tests.media_factory import good_collection

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def starter():
    return load_profiles(["starter"])


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, starter):
    root = tmp_path_factory.mktemp("e2e")
    files = good_collection(root / "media")
    with Library(root / "lib") as lib:
        report = index(lib, [root / "media"], encoders=starter)
        assert report.errors == [] and report.indexed == 11
        yield lib, files, root


def test_image_query_finds_the_same_picture_despite_edits(indexed, starter):
    lib, files, root = indexed
    edited = ImageEnhance.Brightness(draw("checker", 200, seed=1)).enhance(1.2)
    edited.crop((10, 10, 190, 190)).save(root / "edited.jpg", quality=85)
    results = search(lib, SearchQuery(path=root / "edited.jpg"), encoders=starter,
                     modalities=["image"])
    assert results[0].path == str(files["checker"])
    assert results[0].space in ("starter", "starter-image")


def test_audio_query_finds_the_same_kind_of_sound(indexed, starter):
    lib, files, root = indexed
    sf.write(root / "another-tone.wav", tone("tone", 1.5, 44100, seed=3), 44100)
    results = search(lib, SearchQuery(path=root / "another-tone.wav"), encoders=starter)
    assert results[0].path == str(files["tone"])
    assert results[0].space == "starter-audio" and results[0].end > results[0].start


def test_text_query_finds_the_text_about_it(indexed, starter):
    lib, files, _ = indexed
    results = search(lib, SearchQuery(text="kittens purring"), encoders=starter)
    assert results[0].path == str(files["cats"])
    text = files["cats"].read_text()
    assert text[results[0].char_start:results[0].char_end].startswith("Cats purr")


def test_text_finds_images_through_conse(indexed, starter):
    """The image's starter vector lies in the text space: its class name finds it."""
    lib, files, _ = indexed
    image_encoder = next(e for e in starter if "image" in e.routes)
    vector = image_encoder.encode("image", [draw("circles", 160, seed=2)])["starter"][0]
    names = image_encoder.class_names
    nearest = names[int(np.argmax(image_encoder.class_embeddings() @ vector))]
    results = search(lib, SearchQuery(text=nearest.split(",")[0]), encoders=starter,
                     modalities=["image"])
    assert results[0].path == str(files["circles"]), (nearest, results[:3])


def test_video_moment_that_matches_is_returned(tmp_path, starter):
    media = tmp_path / "media"
    media.mkdir()
    write_video(media / "clip.mp4", [("stripes", 4, 2.0), ("circles", 8, 2.0),
                                     ("stripes", 4, 2.0)], fps=10, size=160)
    draw("gradient", 160, seed=1).save(media / "other.png")
    draw("circles", 160, seed=8).save(tmp_path / "query.png")
    with Library(tmp_path / "lib") as lib:
        index(lib, [media], encoders=starter)
        top = search(lib, SearchQuery(path=tmp_path / "query.png"), encoders=starter)[0]
    assert top.path == str(media / "clip.mp4")
    assert 2.0 <= top.start < 4.0, top


def test_cli_index_and_search_json(tmp_path, capsys):
    good_collection(tmp_path / "media")
    lib = str(tmp_path / "lib")
    assert cli.main(["index", str(tmp_path / "media"), "--library", lib, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == 11 and report["errors"] == []
    assert cli.main(["search", "sailing boats", "--library", lib, "--json", "--limit", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == "sailing boats" and len(out["results"]) == 3
    first = out["results"][0]
    assert {"path", "modality", "score", "start", "end", "space"} <= set(first)
    assert first["path"].endswith("boats.txt") and first["modality"] == "text"
    assert cli.main(["search", "--file", str(tmp_path / "media" / "sounds" / "tone.wav"),
                     "--library", lib, "--json", "--modality", "audio"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["modality"] for r in out["results"]} == {"audio"}
    assert cli.main(["info", "--library", lib, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["files_by_modality"]["video"] == 1
    assert set(info["store"]["vectors_per_space"]) == {"starter", "starter-image", "starter-audio"}


def test_mmstudio_demo_indexes_samples_and_searches_across_modalities(tmp_path, capsys,
                                                                     monkeypatch):
    """`mmstudio demo`: sample media, index, four searches, no window."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "27 files indexed" in out and "0 errors" in out
    blocks = out.split("query: ")[1:]
    assert len(blocks) == 4
    firsts = [b.splitlines()[1] for b in blocks]
    assert "cats.txt" in firsts[0] and "music.txt" in firsts[1]  # text finds its text
    assert "stripes-0.png" in firsts[2] and "chirp.wav" in firsts[3]  # files find themselves
