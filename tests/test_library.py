import os
import subprocess
import sys
import textwrap

import pytest

from mmstudio.core.catalog import SCHEMA_VERSION, Catalog
from mmstudio.core.errors import LibraryLockedError, MmstudioError
from mmstudio.core.library import Library, Settings


def test_creates_library_layout(tmp_path):
    with Library(tmp_path / "lib") as lib:
        assert (lib.path / "catalog.sqlite").exists()
        assert lib.store.count() == 0 and lib.store.search({"x": [1.0]}, 5) == {}
        lib.store.ensure_spaces({"x": 2})
        assert (lib.path / "vectors" / "edge_config.json").exists()
        assert (lib.path / "settings.json").exists()
        assert lib.catalog.schema_version == SCHEMA_VERSION
        mode = lib.catalog._query("PRAGMA journal_mode")[0][0]
        assert mode == "wal"


def test_settings_round_trip(tmp_path):
    with Library(tmp_path / "lib") as lib:
        lib.settings.frames_per_second = 2.0
        lib.save_settings()
    with Library(tmp_path / "lib") as lib:
        assert lib.settings.frames_per_second == 2.0
        assert lib.settings.profiles == ["starter"]


def test_corrupt_settings_give_a_clear_error(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "settings.json").write_text("{not json")
    with pytest.raises(MmstudioError, match="not valid JSON"):
        Library(tmp_path / "lib")
    Settings().save(tmp_path / "lib" / "settings.json")
    Library(tmp_path / "lib").close()  # the failed open released its lock


def test_missing_library_is_not_created_when_asked_not_to(tmp_path):
    with pytest.raises(MmstudioError, match="no library"):
        Library(tmp_path / "nope", create=False)


def test_second_process_gets_lock_error_naming_the_pid(tmp_path):
    lib_dir = tmp_path / "lib"
    with Library(lib_dir):
        code = textwrap.dedent(f"""
            from mmstudio.core.library import Library
            from mmstudio.core.errors import LibraryLockedError
            try:
                Library({str(lib_dir)!r})
            except LibraryLockedError as exc:
                print("LOCKED", exc.pid, exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
        assert f"LOCKED {os.getpid()} library in use by PID {os.getpid()}" in out.stdout, out.stderr
    # released on close: now another process can open it
    out = subprocess.run([sys.executable, "-c", f"from mmstudio.core.library import Library; "
                          f"Library({str(lib_dir)!r}).close(); print('OPENED')"],
                         capture_output=True, text=True, timeout=60)
    assert "OPENED" in out.stdout, out.stderr


def test_lock_error_in_same_process(tmp_path):
    with Library(tmp_path / "lib"):
        with pytest.raises(LibraryLockedError, match="library in use by PID"):
            Library(tmp_path / "lib")


def test_catalog_refuses_a_newer_schema(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    cat._db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    cat.close()
    with pytest.raises(MmstudioError, match="newer mmstudio"):
        Catalog(tmp_path / "c.sqlite")


def test_an_ordinary_folder_is_never_turned_into_a_library(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(MmstudioError, match="no library"):
        Library(tmp_path / "photos", create=False)
    with pytest.raises(MmstudioError, match="not a library"):
        Library(tmp_path / "photos")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["a.jpg"]
