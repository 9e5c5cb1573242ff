import json

from mmstudio import cli


def test_models_list_use_and_fetch_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    lib = str(tmp_path / "lib")
    assert cli.main(["models", "list", "--json", "--library", lib]) == 2  # no library yet
    capsys.readouterr()

    assert cli.main(["models", "use", "openai/clip-vit-base-patch32", "--library", lib]) == 2
    err = capsys.readouterr().err
    assert "mmstudio models fetch openai/clip-vit-base-patch32" in err

    assert cli.main(["models", "fetch", "openai/clip-vit-base-patch32"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err

    assert cli.main(["models", "use", "org/unknown-thing", "--library", lib]) == 2
    assert "--profile clip" in capsys.readouterr().err


def test_models_list_marks_on_disk_and_chosen(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    model = tmp_path / "my-clip"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "siglip"}))
    (model / "model.safetensors").write_bytes(b"0" * 1000)
    lib = str(tmp_path / "lib")
    assert cli.main(["models", "use", str(model), "--library", lib]) == 0
    assert "profile clip uses" in capsys.readouterr().out
    settings = json.loads((tmp_path / "lib" / "settings.json").read_text())
    assert settings["models"] == {"clip": str(model)}
    assert settings["profiles"] == ["starter", "clip"]
    assert cli.main(["models", "list", "--json", "--library", lib]) == 0
    rows = {r["ref"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[str(model)]["on_disk"] and rows[str(model)]["in_use"]
    assert rows[str(model)]["size_bytes"] >= 1000
    assert not rows["laion/clap-htsat-unfused"]["on_disk"]


def test_bad_profile_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["index", str(tmp_path), "--profile", "bogus",
                     "--library", str(tmp_path / "lib")]) == 2
    assert "unknown profile 'bogus'" in capsys.readouterr().err
