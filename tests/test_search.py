import pytest

from mmstudio.core.catalog import SegmentRecord
from mmstudio.core.errors import MediaError, MmstudioError
from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.core.samples import draw, write_video
from mmstudio.core.search import SearchQuery, fuse, search
from mmstudio.store.edge import Hit
from tests.fakes import FakeEncoder
from tests.media_factory import good_collection


def rec(sid, item, path="p", modality="image", start=None):
    return SegmentRecord(sid, sid, item, path, modality, 0, "image", start, start, None, None)


def test_fuse_collapses_segments_and_ranks_by_reciprocal_rank():
    resolved = {1: rec(1, 10), 2: rec(2, 10), 3: rec(3, 20), 4: rec(4, 30), 5: rec(5, 30)}
    hits = {
        "a": [Hit(2, 0.9), Hit(1, 0.8), Hit(3, 0.7), Hit(99, 0.6)],  # 99: not in catalog
        "b": [Hit(4, 0.95), Hit(3, 0.5), Hit(5, 0.4)],
    }
    results = fuse(hits, resolved, limit=10)
    # item 20 is 2nd in a and 2nd in b: beats items that are 1st in one space only;
    # items 10 and 30 tie (1st in one space each): the higher similarity goes first
    assert [r.item_id for r in results] == [20, 30, 10]
    assert results[2].segment_id == 2 and results[2].space == "a"  # best segment of item 10
    assert results[1].segment_id == 4 and results[1].similarity == pytest.approx(0.95)
    assert results[0].score < 1.0 and all(0 < r.score <= 1 for r in results)
    assert fuse(hits, resolved, limit=1)[0].item_id == 20


def test_fuse_scores_first_everywhere_as_one():
    resolved = {1: rec(1, 10)}
    results = fuse({"a": [Hit(1, 0.5)], "b": [Hit(1, 0.4)]}, resolved, 5)
    assert results[0].score == pytest.approx(1.0)


@pytest.fixture
def library(tmp_path):
    files = good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        yield lib, files


def test_file_query_finds_itself_first_and_filters_by_modality(library):
    lib, files = library
    enc = [FakeEncoder()]
    results = search(lib, SearchQuery(path=files["checker"]), encoders=enc)
    assert results[0].path == str(files["checker"]) and results[0].similarity > 0.999
    sounds = search(lib, SearchQuery(path=files["tone"]), encoders=enc)
    assert sounds[0].path == str(files["tone"])
    assert sounds[0].start == 0.0 and sounds[0].end > 0
    only_text = search(lib, SearchQuery(text="harbour regatta"), encoders=enc,
                       modalities=["text"])
    assert only_text and {r.modality for r in only_text} == {"text"}
    assert only_text[0].char_start is not None and only_text[0].char_end > only_text[0].char_start


def test_bad_queries_give_clear_errors(library, tmp_path):
    lib, _ = library
    with pytest.raises(MmstudioError, match="empty"):
        search(lib, SearchQuery(text="   "), encoders=[FakeEncoder()])
    with pytest.raises(MediaError, match="not found"):
        search(lib, SearchQuery(path=tmp_path / "missing.png"), encoders=[FakeEncoder()])
    with pytest.raises(MmstudioError, match="unknown modality"):
        search(lib, SearchQuery(text="x"), encoders=[FakeEncoder()], modalities=["smell"])


def test_video_hit_carries_the_matching_moment(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    write_video(folder / "clip.mp4", [("stripes", 1, 2.0), ("circles", 2, 1.0),
                                      ("stripes", 1, 2.0)], fps=10, size=96)
    draw("circles", 96, seed=2).save(tmp_path / "query.png")
    with Library(tmp_path / "lib") as lib:
        index(lib, [folder], encoders=[FakeEncoder()])
        top = search(lib, SearchQuery(path=tmp_path / "query.png"), encoders=[FakeEncoder()])[0]
    assert top.modality == "video" and top.path.endswith("clip.mp4")
    assert 2.0 <= top.start < 3.0


def test_query_file_is_summarised_from_its_whole_length():
    from mmstudio.core.search import MAX_QUERY_SEGMENTS, _sample_segments
    from mmstudio.core.segments import Segment

    segs = (Segment("image", i, i) for i in range(1000))
    picked = _sample_segments(segs)["image"]
    assert len(picked) == MAX_QUERY_SEGMENTS and picked == sorted(picked)
    assert picked[-1] > 700 and picked[0] < 300  # not just the opening
