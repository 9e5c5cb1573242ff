"""Several model families in one library, through the real ingest, search and CLI paths.

The CLIP and CLAP models are tiny random-weight checkpoints saved to folders and
loaded exactly as downloaded ones are; so these tests check plumbing (spaces,
incremental profiles, which points each space holds), not retrieval quality.
"""

import json

import pytest

from mmstudio import cli
from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.core.search import SearchQuery, search
from mmstudio.encoders.profiles import load_profiles
from tests.hf_tiny import make_tiny_clap, make_tiny_clip
from tests.media_factory import good_collection

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"clip": make_tiny_clip(root / "tiny-clip"), "clap": make_tiny_clap(root / "tiny-clap")}


def kinds_in_space(lib, space):
    """Segment kinds of the points that hold a vector in `space`."""
    hits = lib.store.search({space: [1.0] + [0.0] * (lib.store.spaces[space] - 1)}, 1000)[space]
    resolved = lib.catalog.resolve([h.id for h in hits])
    return {rec.kind for rec in resolved.values()}, len(hits)


def test_profiles_share_a_library_and_a_new_one_adds_only_its_space(tmp_path, tiny):
    media = tmp_path / "media"
    files = good_collection(media)
    starter = load_profiles(["starter"])
    clip = load_profiles([f"clip:{tiny['clip']}"])
    clap = load_profiles([f"clap:{tiny['clap']}"])
    with Library(tmp_path / "lib") as lib:
        first = index(lib, [media], encoders=starter + clip)
        assert first.indexed == 11 and first.errors == []
        second = index(lib, [media], encoders=starter + clip + clap)
        # only files that can hold audio or text are re-read for the new space (3 texts,
        # 2 sounds, the video for its soundtrack); nothing is re-indexed
        assert second.indexed == 0 and second.extended == 6
        assert set(lib.store.spaces) == {"starter", "starter-image", "starter-audio",
                                         "tiny-clip", "tiny-clap"}
        clip_kinds, _ = kinds_in_space(lib, "tiny-clip")
        clap_kinds, _ = kinds_in_space(lib, "tiny-clap")
        assert clip_kinds == {"image", "text"} and clap_kinds == {"audio", "text"}
        assert lib.store.count("tiny-clip") == lib.catalog._query(
            "SELECT COUNT(*) FROM segments WHERE kind IN ('image', 'text')")[0][0]

        # the same picture is its own nearest neighbour in the CLIP space
        hits = search(lib, SearchQuery(path=files["checker"]), encoders=clip,
                      modalities=["image"])
        assert hits[0].path == str(files["checker"]) and hits[0].space == "tiny-clip"
        assert hits[0].similarity > 0.999
        # a CLAP text query only ever meets audio and text points
        hits = search(lib, SearchQuery(text="a dog barking"), encoders=clap, limit=50)
        assert {h.modality for h in hits} <= {"audio", "text"}
        assert {h.space for h in hits} == {"tiny-clap"}
        # with every profile, a text query is answered from every text-reading space
        hits = search(lib, SearchQuery(text="boats in the harbour"),
                      encoders=starter + clip + clap, limit=50)
        assert {h.space for h in hits} <= {"starter", "tiny-clip", "tiny-clap"}
        assert len({h.item_id for h in hits}) == len(hits)


def test_cli_remembers_profiles_and_models(tmp_path, tiny, capsys):
    media = tmp_path / "media"
    good_collection(media)
    lib = str(tmp_path / "lib")
    assert cli.main(["index", str(media), "--library", lib, "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["models", "use", str(tiny["clip"]), "--library", lib]) == 0
    capsys.readouterr()
    assert cli.main(["index", str(media), "--library", lib, "--json",
                     "--profile", f"clap:{tiny['clap']}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == 0 and report["extended"] > 0
    settings = json.loads((tmp_path / "lib" / "settings.json").read_text())
    assert settings["profiles"] == ["starter", "clip", f"clap:{tiny['clap']}"]
    assert settings["models"] == {"clip": str(tiny["clip"])}
    assert cli.main(["search", "--file", str(media / "pics" / "stripes.png"), "--library", lib,
                     "--json", "--profile", "clip"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["path"].endswith("stripes.png")
    assert out["results"][0]["space"] == "tiny-clip"
    assert cli.main(["info", "--library", lib, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["store"]["vectors_per_space"]["tiny-clip"] > 0
    assert info["store"]["vectors_per_space"]["tiny-clap"] > 0


def test_two_models_never_share_a_space(tmp_path, tiny):
    import shutil

    from mmstudio.core.errors import MmstudioError

    other = tmp_path / "elsewhere" / "tiny-clip"  # same folder name, another model
    shutil.copytree(tiny["clip"], other)
    with Library(tmp_path / "lib") as lib:
        lib.claim_spaces(lib.encoders(profiles=["starter", f"clip:{tiny['clip']}"]))
        assert lib.settings.spaces["tiny-clip"] == str(tiny["clip"])
        second = lib.encoders(profiles=["starter", f"clip:{other}"])  # a search claims nothing
        with pytest.raises(MmstudioError, match="would write into it too"):
            lib.claim_spaces(second)
        assert lib.settings.spaces["tiny-clip"] == str(tiny["clip"])  # unchanged by the refusal
    settings = json.loads((tmp_path / "lib" / "settings.json").read_text())
    assert settings["spaces"]["starter"] == "starter"


def test_a_model_that_cannot_load_is_not_remembered(tmp_path, tiny, capsys):
    import shutil

    broken = tmp_path / "broken-clip"
    shutil.copytree(tiny["clip"], broken)
    for weights in broken.glob("*.safetensors"):
        weights.unlink()
    lib = str(tmp_path / "lib")
    (tmp_path / "media").mkdir()
    assert cli.main(["index", str(tmp_path / "media"), "--library", lib,
                     "--profile", f"clip:{broken}"]) == 2
    assert "cannot be loaded" in capsys.readouterr().err
    settings = json.loads((tmp_path / "lib" / "settings.json").read_text())
    assert settings["profiles"] == ["starter"] and "broken-clip" not in settings["spaces"]


def test_a_cached_snapshot_folder_is_the_same_model_as_its_id():
    from mmstudio.encoders.models import canonical, space_name

    folder = "/home/u/.cache/huggingface/hub/models--openai--clip-vit-base-patch32/snapshots/3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
    assert canonical(folder) == "openai/clip-vit-base-patch32"
    assert space_name(folder) == space_name("openai/clip-vit-base-patch32") == "clip-vit-base-patch32"
    assert canonical("/models/my-clip") == "/models/my-clip"
