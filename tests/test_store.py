import numpy as np
import pytest

from mmstudio.core.errors import MmstudioError
from mmstudio.store.edge import EdgeStore, StoredPoint


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def point(pid, file_id, modality, **vectors):
    return StoredPoint(pid, {k: unit(v) for k, v in vectors.items()},
                       {"file_id": file_id, "item_id": file_id, "modality": modality,
                        "segment_id": pid, "start": None, "end": None, "labels": []})


def test_spaces_search_filter_delete(tmp_path):
    store = EdgeStore(tmp_path / "v", {"a": 3})
    store.ensure_spaces({"b": 2})
    store.upsert([
        point(1, 10, "image", a=[1, 0, 0]),
        point(2, 10, "image", a=[0.9, 0.1, 0], b=[1, 0]),
        point(3, 11, "audio", b=[0, 1]),
        point(4, 12, "video", a=[0, 0, 1]),
    ])
    assert store.count("a") == 3 and store.count("b") == 2 and store.count() == 4
    hits = store.search({"a": unit([1, 0, 0]), "b": unit([0, 1])}, limit=10)
    assert [h.id for h in hits["a"]] == [1, 2, 4]
    assert [h.id for h in hits["b"]] == [3, 2]
    assert hits["a"][0].score == pytest.approx(1.0, abs=1e-5)
    only_video = store.search({"a": unit([1, 0, 0])}, limit=10, modalities=["video"])
    assert [h.id for h in only_video["a"]] == [4]
    assert store.search({"unknown": unit([1, 0])}, limit=5) == {}
    store.delete_files([10])
    assert store.count() == 2
    store.close()
    reopened = EdgeStore(tmp_path / "v")
    assert reopened.spaces == {"a": 3, "b": 2}
    assert reopened.count() == 2
    with pytest.raises(MmstudioError, match="3-d"):
        reopened.ensure_spaces({"a": 5})
    reopened.close()
