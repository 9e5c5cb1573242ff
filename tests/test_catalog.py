from pathlib import Path

from mmstudio.core.catalog import Catalog, NewSegment, file_id_of, segment_id


def test_file_lifecycle_items_and_resolution(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    media, sibling = tmp_path / "media", tmp_path / "media2"
    a, _ = cat.begin_file(media / "pet.jpg", "image", 10, 1)
    b, item_b = cat.begin_file(media / "pet.txt", "text", 5, 1)
    c, item_c = cat.begin_file(sibling / "pet.jpg", "image", 10, 1)
    assert cat._query("SELECT item_id FROM files WHERE id = ?", (a,))[0][0] == item_b
    assert item_c != item_b  # same stem, other folder: another item

    cat.finish_files([(a, "h1", [NewSegment(0, "image")]),
                      (b, "h2", [NewSegment(0, "text", char_start=0, char_end=4),
                                 NewSegment(1, "text", char_start=5, char_end=9)])],
                     failed=[(c, None, "empty file")])
    assert set(cat.files_under([media])) == {str(media / "pet.jpg"), str(media / "pet.txt")}
    assert cat.errors() == [(str(sibling / "pet.jpg"), "empty file")]
    sid = segment_id(b, 1)
    assert file_id_of(sid) == b
    hit = cat.resolve([sid, segment_id(c, 0), 12345])
    assert list(hit) == [sid] and hit[sid].char_start == 5 and hit[sid].path.endswith("pet.txt")

    again, _ = cat.begin_file(media / "pet.txt", "text", 6, 2)  # changed: same id, reset
    assert again == b and cat.resolve([sid]) == {}
    assert [f.state for f in cat.files() if f.id == b] == ["pending"]

    cat.remove_files([a, b])
    assert cat.counts()["segments"] == 0
    assert cat._query("SELECT COUNT(*) FROM items")[0][0] == 1  # only the sibling's item
    cat.close()


def test_migrations_run_once_and_are_recorded(tmp_path):
    Catalog(tmp_path / "c.sqlite").close()
    cat = Catalog(Path(tmp_path / "c.sqlite"))
    assert cat.schema_version >= 1
    tables = {r[0] for r in cat._query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"items", "files", "segments"} <= tables
    cat.close()


def test_schema_1_library_migrates_with_its_starter_spaces(tmp_path):
    import sqlite3

    from mmstudio.core.catalog import MIGRATIONS

    db = sqlite3.connect(tmp_path / "c.sqlite")
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO items (folder, stem) VALUES ('/m', 'a')")
    db.execute("INSERT INTO files (item_id, path, modality, size, mtime_ns, state) "
               "VALUES (1, '/m/a.png', 'image', 1, 1, 'ok')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    cat = Catalog(tmp_path / "c.sqlite")
    (rec,) = cat.files()
    assert rec.space_set == {"starter", "starter-image", "starter-audio"}
    cat.close()
