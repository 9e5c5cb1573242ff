"""`mmstudio labels ...` end to end on a small indexed library."""

from __future__ import annotations

import json

import pytest

from mmstudio.cli import main
from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from tests.fakes import FakeEncoder
from tests.media_factory import good_collection


@pytest.fixture
def lib_path(tmp_path, monkeypatch):
    files = good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
    # `labels suggest` encodes label names with the library's text towers
    monkeypatch.setattr(Library, "encoders", lambda self, *a, **k: [FakeEncoder()])
    return tmp_path / "lib", files


def test_schema_set_list_suggest(lib_path, capsys):
    path, files = lib_path
    lib = ["--library", str(path)]
    assert main(["labels", "schema", "kind", "pattern", "words", "sound", *lib]) == 0
    assert "1 pattern, 2 words, 3 sound" in capsys.readouterr().out
    assert main(["labels", "set", "--schema", "kind", "--label", "pattern",
                 str(files["stripes"]), str(files["checker"]), *lib]) == 0
    assert main(["labels", "set", "--schema", "kind", "--label", "words",
                 str(files["cats"]), str(files["pet_text"]), *lib]) == 0
    assert main(["labels", "set", "--schema", "kind", "--label", "sound",
                 str(files["tone"]), "/not/indexed.png", *lib]) == 1
    assert "not in this library" in capsys.readouterr().err
    assert main(["labels", "list", "--json", *lib]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["counts"] == {"pattern": 2, "words": 2, "sound": 1}
    # adding a label keeps the others' keys and colours
    assert main(["labels", "schema", "kind", "pattern", "words", "sound", "film", *lib]) == 0
    assert "4 film" in capsys.readouterr().out
    assert main(["labels", "suggest", "--schema", "kind", *lib]) == 0
    assert "suggestions from knn" in capsys.readouterr().out
    with Library(path) as library:
        suggestions = library.labels.suggestions("kind")
        item = library.catalog.item_of_path(str(files["circles"]))
    assert suggestions[item].label == "pattern"
    assert main(["labels", "set", "--schema", "nope", "--label", "x", str(files["tone"]),
                 *lib]) == 2
    assert "no label schema 'nope'" in capsys.readouterr().err
