import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmstudio.core.errors import MmstudioError
from mmstudio.core.ingest import index
from mmstudio.core.jobs import CancelToken
from mmstudio.core.library import Library
from mmstudio.core.samples import draw, tone
from mmstudio.labels import Schema, Suggestion
from mmstudio.labels.exchange import (
    CSV_COLUMNS,
    ExchangeError,
    export_labels,
    hashed_split,
    import_labels,
    main_file,
)
from tests.fakes import FakeEncoder


@pytest.fixture
def lib(tmp_path):
    """Five items: a.png + a.wav (one item), b.png, notes/c.txt, other/a.png, e.wav."""
    media = tmp_path / "media"
    (media / "notes").mkdir(parents=True)
    (media / "other").mkdir()
    draw("stripes", 64, seed=0).save(media / "a.png")
    sf.write(media / "a.wav", tone("tone", 0.5, 8000), 8000)
    draw("checker", 64, seed=1).save(media / "b.png")
    (media / "notes" / "c.txt").write_text("Boats in the harbour at dawn.", encoding="utf-8")
    draw("circles", 48, seed=2).save(media / "other" / "a.png")  # same name, other folder
    sf.write(media / "e.wav", tone("noise", 0.5, 8000), 8000)
    with Library(tmp_path / "lib") as library:
        index(library, [media], encoders=[FakeEncoder()])
        library.media = media
        yield library


def item(lib, rel: str) -> int:
    return lib.catalog.item_of_path(str(lib.media / rel))


def label_some(lib, multi: bool = False) -> dict[int, frozenset[str]]:
    lib.labels.save_schema(Schema.of("kind", ["cat", "dog", "bird"], multi=multi))
    wanted = {item(lib, "a.png"): {"cat", "dog"} if multi else {"cat"},
              item(lib, "b.png"): {"dog"}, item(lib, "notes/c.txt"): {"bird"},
              item(lib, "other/a.png"): {"cat"}}
    lib.labels.set_labels("kind", wanted)
    return {i: frozenset(v) for i, v in wanted.items()}


def test_csv_round_trip_and_one_undo(lib, tmp_path):
    labelled = label_some(lib)
    lib.labels.set_splits({item(lib, "b.png"): "test"})
    lib.labels.set_suggestions("kind", {item(lib, "b.png"): Suggestion("dog", 0.75, "knn")})
    out = tmp_path / "export" / "kind.csv"
    report = export_labels(lib, "kind", out)
    assert (report.path, report.rows, report.files_copied) == (out, 4, 0)

    with open(out, encoding="utf-8", newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert tuple(next(csv.reader(out.open(encoding="utf-8")))) == CSV_COLUMNS
    a, b = rows[str(lib.media / "a.png")], rows[str(lib.media / "b.png")]
    assert str(lib.media / "e.wav") not in rows  # unlabelled: left out by default
    assert a["files"].split("|") == [str(lib.media / "a.png"), str(lib.media / "a.wav")]
    assert a["labels"] == "cat" and a["schema"] == "kind" and a["suggestion"] == ""
    assert a["split"] == hashed_split(str(lib.media / "a.png"))
    assert (b["split"], b["suggestion"], float(b["score"]), b["suggestion_source"]) == \
        ("test", "dog", 0.75, "knn")

    lib.labels.set_labels("kind", {i: () for i in labelled})
    assert lib.labels.labels("kind") == {}
    imported = import_labels(lib, out)
    assert (imported.applied, imported.unmatched, imported.created_labels) == (4, [], [])
    assert imported.schema == "kind" and imported.change_id
    assert lib.labels.labels("kind") == labelled
    assert lib.labels.splits()[item(lib, "b.png")] == "test"

    undone = lib.labels.undo("import")
    assert undone.id == imported.change_id
    assert lib.labels.labels("kind") == {}  # the whole import, in one step


def test_jsonl_multi_label_into_a_new_schema(lib, tmp_path):
    labelled = label_some(lib, multi=True)
    out = tmp_path / "kind.jsonl"
    report = export_labels(lib, "kind", out, include_unlabeled=True, relative_paths=True)
    assert report.rows == 5
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_path = {r["path"]: r for r in lines}
    a = by_path["media/a.png"]  # relative to the exported file's folder
    assert a["labels"] == ["cat", "dog"] and a["files"] == ["media/a.png", "media/a.wav"]
    assert a["scores"] == {} and a["suggestion_source"] is None
    assert by_path["media/e.wav"]["labels"] == []
    assert {r["split"] for r in lines} <= {"train", "validation", "test"}

    export_labels(lib, "kind", tmp_path / "again.jsonl", include_unlabeled=True)
    again = [json.loads(x) for x in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [r["split"] for r in again] == [r["split"] for r in lines]  # stable splits

    imported = import_labels(lib, out, schema="copy")
    assert imported.created_labels == ["cat", "dog", "bird"]
    assert lib.labels.schema("copy").multi  # a row has two labels
    assert lib.labels.labels("copy") == labelled
    assert imported.applied == 4 and imported.unmatched == []


def test_hf_folder_layout_and_import_back(lib, tmp_path):
    labelled = label_some(lib)
    lib.labels.set_splits({i: "train" for i in labelled})  # both a.png in one folder
    lib.labels.set_splits({item(lib, "notes/c.txt"): "validation"})
    out = tmp_path / "dataset"
    report = export_labels(lib, "kind", out)
    assert report.rows == 4 and report.files_copied == 5  # a.wav goes along with a.png
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "train", "validation"]

    meta = [json.loads(x) for x in (out / "train" / "metadata.jsonl").read_text().splitlines()]
    names = [m["file_name"] for m in meta]
    assert len(names) == 3 and len(set(names)) == 3 and "a.png" in names
    for m in meta:
        copy = out / "train" / m["file_name"]
        assert copy.read_bytes() == Path(m["mmstudio_path"]).read_bytes()
        assert m["label"] == next(iter(labelled[m["mmstudio_item"]]))
        assert m["schema"] == "kind"
    other = next(m for m in meta if m["mmstudio_path"] == str(lib.media / "other" / "a.png"))
    assert other["file_name"] != "a.png" and other["file_name"].endswith("_a.png")
    with_sound = next(m for m in meta if len(m["files"]) > 1)
    assert with_sound["file_name"] == "a.png" and with_sound["files"] == ["a.png", "a.wav"]
    assert (out / "train" / "a.wav").is_file()
    (c,) = [json.loads(x) for x in (out / "validation" / "metadata.jsonl").read_text().splitlines()]
    assert c["file_name"] == "c.txt" and c["label"] == "bird"

    imported = import_labels(lib, out, schema="fresh")
    assert imported.applied == 4 and imported.unmatched == []
    assert lib.labels.labels("fresh") == labelled
    assert not lib.labels.schema("fresh").multi


def test_hf_folder_of_one_modality(lib, tmp_path):
    label_some(lib)
    out = tmp_path / "sounds"
    report = export_labels(lib, "kind", out, include_unlabeled=True, modality="audio",
                           copy_files=False)
    assert report.rows == 2 and report.files_copied == 0  # symbolic links, no copies
    meta = {}
    for f in out.glob("*/metadata.jsonl"):
        meta.update((m["file_name"], m) for m in map(json.loads, f.read_text().splitlines()))
    assert sorted(meta) == ["a.wav", "e.wav"]  # the sound of a.png + a.wav is its main file
    assert meta["a.wav"]["files"] == ["a.wav", "a.png"] and meta["a.wav"]["label"] == "cat"
    assert meta["e.wav"]["label"] is None
    linked = next(out.glob("*/a.wav"))
    assert linked.is_symlink() and linked.resolve() == lib.media / "a.wav"


def test_hf_rows_from_elsewhere_match_by_name_and_size(lib, tmp_path):
    labelled = label_some(lib)
    lib.labels.set_splits({i: "train" for i in labelled})
    out = tmp_path / "dataset"
    export_labels(lib, "kind", out)
    meta_file = out / "train" / "metadata.jsonl"
    meta = [json.loads(x) for x in meta_file.read_text().splitlines()]
    for m in meta:  # as if made on another machine: the original paths mean nothing here
        m["mmstudio_path"] = "/elsewhere/" + Path(m["mmstudio_path"]).name
    meta_file.write_text("".join(json.dumps(m) + "\n" for m in meta))
    imported = import_labels(lib, out, schema="fresh")
    assert imported.unmatched == [] and lib.labels.labels("fresh") == labelled


def test_rows_that_cannot_be_applied_are_reported_and_the_rest_goes_on(lib, tmp_path):
    label_some(lib)
    stray = tmp_path / "stray.png"  # on disk, never indexed
    draw("dots", 40, seed=5).save(stray)
    table = tmp_path / "in.csv"
    table.write_text(
        "path,labels,split\n"
        f"{lib.media / 'b.png'},cat,validation\n"
        f"{stray},cat,\n"
        f"{tmp_path / 'gone.png'},dog,\n"
        f"{lib.media / 'e.wav'},unicorn,\n"
        "media/notes/c.txt,dog,holdout\n", encoding="utf-8")  # relative to the file
    report = import_labels(lib, table, schema="kind", create_schema=False)
    assert report.applied == 1 and report.change_id
    assert lib.labels.labels("kind")[item(lib, "b.png")] == {"cat"}
    assert lib.labels.splits()[item(lib, "b.png")] == "validation"
    reasons = dict(report.unmatched)
    assert len(reasons) == 4
    assert "index its folder" in reasons[f"line 3: {stray}"]
    assert "no such file" in reasons[f"line 4: {tmp_path / 'gone.png'}"]
    assert "'unicorn' is not in schema" in reasons[f"line 5: {lib.media / 'e.wav'}"]
    assert "split 'holdout'" in reasons[f"line 6: {lib.media / 'notes' / 'c.txt'}"]

    # with create_schema the unknown label is added to the schema instead; the labels
    # there were keep the keys someone gave them
    kind = lib.labels.schema("kind")
    lib.labels.save_schema(Schema("kind", (replace(kind.labels[0], key="4"), *kind.labels[1:])))
    report = import_labels(lib, table, schema="kind")
    assert report.created_labels == ["unicorn"]
    kind = lib.labels.schema("kind")
    assert kind.names == ("cat", "dog", "bird", "unicorn")
    assert [d.key for d in kind.labels] == ["4", "2", "3", "1"]
    assert lib.labels.labels("kind")[item(lib, "e.wav")] == {"unicorn"}


def test_bad_files_give_clear_errors(lib, tmp_path):
    label_some(lib)
    garbage = tmp_path / "garbage.csv"
    noise = np.random.default_rng(0).bytes(4000)
    garbage.write_bytes(noise)
    with pytest.raises(MmstudioError, match="not a text file"):
        import_labels(lib, garbage, schema="kind")
    garbage.write_bytes(noise.replace(b"\x00", b""))
    with pytest.raises(MmstudioError, match="not UTF-8"):
        import_labels(lib, garbage, schema="kind")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(ExchangeError, match="empty"):
        import_labels(lib, tmp_path / "empty.jsonl", schema="kind")
    (tmp_path / "latin.csv").write_bytes("path,labels\ncafé.png,cat\n".encode("latin-1"))
    with pytest.raises(ExchangeError, match="UTF-8"):
        import_labels(lib, tmp_path / "latin.csv", schema="kind")
    (tmp_path / "cols.csv").write_text("file,tag\nx.png,cat\n")
    with pytest.raises(ExchangeError, match="'file', 'tag'"):
        import_labels(lib, tmp_path / "cols.csv", schema="kind")
    (tmp_path / "x.txt").write_text("path,labels\n")
    with pytest.raises(ExchangeError, match="format"):
        import_labels(lib, tmp_path / "x.txt", schema="kind")
    (tmp_path / "noname.jsonl").write_text(json.dumps({"path": "x", "labels": []}) + "\n")
    with pytest.raises(ExchangeError, match="which schema"):
        import_labels(lib, tmp_path / "noname.jsonl")


def test_truncated_jsonl_and_bom_csv(lib, tmp_path):
    label_some(lib)
    good = json.dumps({"path": str(lib.media / "b.png"), "labels": ["bird"]})
    cut = json.dumps({"path": str(lib.media / "e.wav"), "labels": ["dog"]})[:25]
    (tmp_path / "cut.jsonl").write_text(good + "\n" + cut + "\n", encoding="utf-8")
    report = import_labels(lib, tmp_path / "cut.jsonl", schema="kind")
    assert report.applied == 1 and [w for w, _ in report.unmatched] == ["line 2"]
    assert "not valid JSON" in report.unmatched[0][1]
    assert lib.labels.labels("kind")[item(lib, "b.png")] == {"bird"}

    # Excel: a byte-order mark, ";" between columns, labels joined with "|"
    (tmp_path / "excel.csv").write_bytes(
        f"path;labels\n{lib.media / 'e.wav'};dog\n".encode("utf-8-sig"))
    assert import_labels(lib, tmp_path / "excel.csv", schema="kind").applied == 1
    assert lib.labels.labels("kind")[item(lib, "e.wav")] == {"dog"}


def test_export_refuses_a_full_folder_and_a_cancelled_export_leaves_nothing(lib, tmp_path):
    label_some(lib)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ExchangeError, match="not an empty folder"):
        export_labels(lib, "kind", full)
    token = CancelToken()
    token.cancel()
    with pytest.raises(MmstudioError, match="cancelled"):
        export_labels(lib, "kind", tmp_path / "ds", cancel=token)
    with pytest.raises(MmstudioError, match="cancelled"):
        export_labels(lib, "kind", tmp_path / "k.csv", cancel=token)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "lib", "media"]


def test_main_file_and_hashed_split():
    files = [("/x/a.txt", "text"), ("/x/a.wav", "audio"), ("/x/a.png", "image")]
    assert main_file(files) == ("/x/a.png", ["/x/a.wav", "/x/a.txt"])
    assert main_file(files + [("/x/a.mp4", "video")])[0] == "/x/a.mp4"
    assert main_file(files, prefer="audio") == ("/x/a.wav", ["/x/a.png", "/x/a.txt"])
    # pinned: the split must not change between runs, machines or versions
    assert [hashed_split(f"/photos/{n}.jpg") for n in (11, 12, 13)] == ["train", "test", "train"]
    splits = [hashed_split(f"/photos/{n}.jpg") for n in range(2000)]
    assert splits == [hashed_split(f"/photos/{n}.jpg") for n in range(2000)]
    share = {s: splits.count(s) / len(splits) for s in ("train", "validation", "test")}
    assert 0.76 < share["train"] < 0.84 and 0.07 < share["validation"] < 0.13
    assert 0.07 < share["test"] < 0.13


def test_datasets_reads_the_folder(lib, tmp_path):
    datasets = pytest.importorskip("datasets")
    labelled = label_some(lib)
    lib.labels.set_splits({i: "train" for i in labelled})
    export_labels(lib, "kind", tmp_path / "dataset", modality="image")
    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "dataset"))
    assert sorted(ds["train"]["label"]) == ["cat", "cat", "dog"]  # the three pictures
