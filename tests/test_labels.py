"""Labels core: schemas, the durable journal with undo/redo, sessions, suggestions, queues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.fusion.features import Features, Input, item_features
from mmstudio.labels import Schema, SchemaError
from mmstudio.labels.queue import by_similarity, by_uncertainty, plan_queue
from mmstudio.labels.session import LabelSession
from mmstudio.labels.suggest import model_scores, zero_shot_scores
from tests.fakes import FakeEncoder
from tests.media_factory import COLOURS, colour_pictures


def make_items(lib: Library, n: int) -> list[int]:
    """n catalog items without files on disk (labels do not need vectors)."""
    return [lib.catalog.begin_file(Path(f"/nowhere/item{i}.png"), "image", 1, 1)[1]
            for i in range(n)]


@pytest.fixture
def colour_library(tmp_path):
    """Pictures of three colours (4 each, slightly varied), indexed with the fake encoder."""
    media = tmp_path / "media"
    colour_pictures(media, 4, 32)
    with Library(tmp_path / "lib") as lib:
        index(lib, [media], encoders=[FakeEncoder()])
        by_name = {Path(p).stem: i for i, files in lib.catalog.item_files().items()
                   for p, _ in files}
        yield lib, by_name


def test_schema_validation():
    s = Schema.of("animals", ["cat", "dog"])
    assert [d.key for d in s.labels] == ["1", "2"] and s.by_key("2").name == "dog"
    assert s.check(["cat"]) == {"cat"}
    with pytest.raises(SchemaError, match="single-label"):
        s.check(["cat", "dog"])
    with pytest.raises(SchemaError, match="no label 'cow'"):
        s.check(["cow"])
    for bad in (["a", "a"], [], ["a,b"], ["a|b"]):
        with pytest.raises(SchemaError):
            Schema.of("x", bad)
    assert len(Schema.of("many", [f"l{i}" for i in range(12)]).labels) == 12


def test_store_changes_are_journaled_and_undoable(tmp_path):
    with Library(tmp_path / "lib") as lib:
        a, b, c = make_items(lib, 3)
        store = lib.labels
        store.save_schema(Schema.of("animals", ["cat", "dog"]))
        first = store.apply_label("animals", [a, b, c], "cat", session="s")
        second = store.set_labels("animals", {b: ["dog"]}, session="s")
        assert first.before == {a: set(), b: set(), c: set()}
        assert store.labels("animals") == {a: {"cat"}, b: {"dog"}, c: {"cat"}}
        assert second.before == {b: {"cat"}} and second.after == {b: {"dog"}}
        assert store.undo("s").id == second.id
        assert store.labels("animals")[b] == {"cat"}
        assert store.redo("s").id == second.id and store.labels("animals")[b] == {"dog"}
        store.undo("s")
        store.undo("s")
        assert store.labels("animals") == {}
        # a new change drops what could have been redone
        store.apply_label("animals", [c], "dog", session="s")
        assert store.redo("s") is None
        assert [j.state for j in store.journal("s")] == ["dropped", "dropped", "done"]
        assert store.counts("animals") == {"dog": 1}
        # another session's undo leaves this one's changes alone
        assert store.undo("other") is None
        with pytest.raises(SchemaError, match="carry 'dog'"):
            store.save_schema(Schema.of("animals", ["cat"]))
        store.save_schema(Schema.of("animals", ["cat", "dog", "bird"]))
        assert store.schema("animals").names == ("cat", "dog", "bird")
        with pytest.raises(SchemaError, match="no label schema 'nope'"):
            store.schema("nope")


def test_labels_outlive_files_that_go_away(tmp_path):
    with Library(tmp_path / "lib") as lib:
        path = Path("/nowhere/pet.png")
        file_id, item = lib.catalog.begin_file(path, "image", 1, 1)
        lib.labels.save_schema(Schema.of("pets", ["dog"]))
        lib.labels.apply_label("pets", [item], "dog")
        lib.catalog.remove_files([file_id])
        assert lib.catalog.begin_file(path, "image", 1, 2)[1] == item  # it came back
        assert lib.labels.labels("pets") == {item: {"dog"}}


def test_session_keys_advance_undo_and_pace(tmp_path):
    clock = iter(range(0, 10_000, 6)).__next__  # each call: 6 s later
    with Library(tmp_path / "lib") as lib:
        items = make_items(lib, 5)
        lib.labels.save_schema(Schema.of("animals", ["cat", "dog"]))
        session = LabelSession(lib.labels, lib.labels.schema("animals"), items, clock=clock)
        events = []
        session.subscribe(lambda e, v: events.append(e))
        session.assign_key("1")
        session.assign_key("2")
        assert session.position == 2 and session.progress == (2, 5)
        assert lib.labels.labels("animals") == {items[0]: {"cat"}, items[1]: {"dog"}}
        assert session.labels_per_minute > 0
        assert events[:2] == ["labels", "position"]
        assert session.assign_key("9") is None  # an unbound key does nothing
        undone = session.undo()
        assert undone.items == (items[1],) and session.current == items[1]
        assert lib.labels.labels("animals") == {items[0]: {"cat"}}
        session.redo()
        assert session.labels[items[1]] == {"dog"}
        session.bulk(items[2:], "cat")
        assert session.progress == (5, 5)
        session.undo()
        assert session.progress == (2, 5)


def test_multi_label_session_toggles_and_stays(tmp_path):
    with Library(tmp_path / "lib") as lib:
        items = make_items(lib, 2)
        lib.labels.save_schema(Schema.of("tags", ["indoor", "people", "night"], multi=True))
        session = LabelSession(lib.labels, lib.labels.schema("tags"), items)
        session.assign("indoor")
        session.assign("night")
        session.assign("indoor")
        assert session.position == 0 and session.labels[items[0]] == {"night"}
        session.clear()
        assert lib.labels.labels("tags") == {}


def test_suggestions_vote_then_classify(colour_library):
    lib, ids = colour_library
    schema = Schema.of("colour", list(COLOURS))
    lib.labels.save_schema(schema)
    features = item_features(lib, list(ids.values()))
    lib.labels.set_labels("colour", {ids["red0"]: ["red"], ids["green0"]: ["green"],
                                     ids["blue0"]: ["blue"]})
    scores = model_scores(features, lib.labels.labels("colour"), schema)
    assert scores.source == "knn"
    best = scores.best()
    for name, item in ids.items():
        assert best[item].label == name.rstrip("0123456789"), name
    lib.labels.set_labels("colour", {ids[f"{c}{k}"]: [c] for c in COLOURS for k in range(3)})
    scores = model_scores(features, lib.labels.labels("colour"), schema)
    assert scores.source == "classifier"
    assert {s.label for i, s in scores.best().items() if i == ids["blue3"]} == {"blue"}
    assert np.allclose(scores.probs.sum(axis=1), 1, atol=1e-5)


def test_zero_shot_compares_label_names_in_text_spaces(colour_library):
    lib, ids = colour_library
    # the fake text tower hashes trigrams into the visual space: what matters here is
    # that label names are encoded and compared with items of that space, per label
    schema = Schema.of("colour", list(COLOURS))
    scores = zero_shot_scores(lib, schema, list(ids.values()), encoders=[FakeEncoder()])
    assert scores.source == "zero-shot" and scores.probs.shape == (12, 3)
    assert np.allclose(scores.probs.sum(axis=1), 1, atol=1e-5)
    visual = FakeEncoder().encode("text", list(COLOURS))["fake-visual"]
    f = item_features(lib, [ids["red0"]], [Input("image", "fake-visual")])
    expected = np.argmax(f.vectors[0] @ visual.T)
    assert scores.probs[list(scores.item_ids).index(ids["red0"])].argmax() == expected


def test_queue_orders():
    x = np.eye(4, dtype=np.float32)[[0, 0, 1, 2, 3]] + 0.01
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert list(by_similarity(x, x[[3]]))[:1] == [3]
    u = np.array([0.9, 0.89, 0.5, 0.4, 0.1])
    # items 0 and 1 are near-duplicates: with diversity the second comes later
    assert list(by_uncertainty(u, x, diversity=0.0))[:2] == [0, 1]
    assert list(by_uncertainty(u, x, diversity=0.5))[:2] == [0, 2]


def test_plan_queue_puts_uncertain_first_and_labeled_last(colour_library):
    lib, ids = colour_library
    schema = Schema.of("colour", list(COLOURS))
    lib.labels.save_schema(schema)
    lib.labels.set_labels("colour", {ids["red0"]: ["red"], ids["blue0"]: ["blue"]})
    pool = list(ids.values())
    plan = plan_queue(lib, schema, pool, "active", zero_shot=False)
    assert sorted(plan.queue) == sorted(pool)
    assert set(plan.queue[-2:]) == {ids["red0"], ids["blue0"]}
    u = dict(zip(plan.scores.item_ids.tolist(), plan.scores.uncertainty(), strict=True))
    assert u[plan.queue[0]] >= np.median(list(u.values()))
    similar = plan_queue(lib, schema, pool, "similarity", seeds=[ids["green0"]],
                         features=plan.features, zero_shot=False)
    assert similar.queue[0] == ids["green0"]
    assert {Path(lib.catalog.item_files([i])[i][0][0]).stem[:-1]
            for i in similar.queue[:4]} == {"green"}
    given = plan_queue(lib, schema, pool[::-1], "given", zero_shot=False)
    assert list(given.queue[:3]) == [i for i in pool[::-1] if i not in (ids["red0"], ids["blue0"])][:3]


CHILD = textwrap.dedent("""
    import sys
    from mmstudio.core.library import Library
    from mmstudio.labels import Schema
    from mmstudio.labels.session import LabelSession
    lib = Library(sys.argv[1])
    schema = lib.labels.schema("animals")
    items = [int(i) for i in sys.argv[2].split(",")]
    session = LabelSession(lib.labels, schema, items, session_id="killed")
    print("ready", flush=True)
    n = 0
    while True:
        item = session.current
        label = schema.names[n % 3]
        session.assign(label)
        print(f"ack {item} {label}", flush=True)
        n += 1
        if session.current is None:
            session.go(0)
""")


@pytest.mark.parametrize("acks", [7, 61])
def test_no_acknowledged_label_is_lost_on_sigkill(tmp_path, acks):
    with Library(tmp_path / "lib") as lib:
        items = make_items(lib, 40)
        lib.labels.save_schema(Schema.of("animals", ["cat", "dog", "bird"]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "lib"), ",".join(map(str, items))],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    acked: dict[int, str] = {}
    try:
        assert child.stdout.readline().strip() == "ready"
        for _ in range(acks):  # 61 > 40 items: some items are labeled twice
            line = child.stdout.readline().split()
            assert line and line[0] == "ack", line
            acked[int(line[1])] = line[2]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    with Library(tmp_path / "lib") as lib:  # the OS released the dead child's lock
        stored = lib.labels.labels("animals")
        journal = lib.labels.journal("killed")
    # every acknowledged label is there (a later, unacknowledged change may have
    # overwritten an item's label: then the journal holds it)
    acked_changes = [j for j in journal if j.after][:acks]
    for item, label in acked.items():
        assert item in stored
        later = [j for j in journal if item in j.after]
        assert stored[item] == later[-1].after[item]
        assert label in {lab for j in later for lab in j.after[item]}
    assert len(acked_changes) == acks


def test_item_results_stand_for_items_by_their_main_file(colour_library, tmp_path):
    from mmstudio.core.items import item_results, main_file

    lib, ids = colour_library
    assert main_file([("/a/pet.txt", "text"), ("/a/pet.png", "image")]) == ("/a/pet.png", "image")
    wanted = [ids["blue1"], 999_999, ids["red2"]]
    results = item_results(lib, wanted, {ids["red2"]: 0.5})
    assert [r.item_id for r in results] == [ids["blue1"], ids["red2"]]
    assert Path(results[1].path).stem == "red2" and results[1].score == 0.5
    assert results[0].segment_id in lib.catalog.resolve([results[0].segment_id])


def test_no_suggestion_for_items_sharing_no_modality_with_the_labeled(tmp_path):
    ids = np.arange(4)
    image = np.eye(4, dtype=np.float32)[:, :3]
    sound = np.zeros((4, 2), np.float32)
    sound[3] = [1, 0]
    present = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], bool)
    image[3] = 0
    features = Features(ids, (Input("image", "a"), Input("audio", "b")), (image, sound), present)
    schema = Schema.of("s", ["x", "y"])
    scores = model_scores(features, {0: frozenset({"x"}), 1: frozenset({"y"})}, schema)
    assert set(scores.best()) == {0, 1, 2}  # the sound (3) gets no guess
    assert scores.uncertainty()[3] == 1.0
