"""The preview pane's core: similarity along a file, waveform peaks, bounded images/text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmstudio.core.errors import Cancelled, MediaError
from mmstudio.core.ingest import index
from mmstudio.core.jobs import CancelToken
from mmstudio.core.library import Library
from mmstudio.core.preview import (
    preview_image,
    preview_text,
    similarity_curve,
    waveform_peaks,
)
from mmstudio.core.samples import draw, tone
from mmstudio.core.search import SearchQuery, encode_query
from tests.fakes import FakeEncoder
from tests.media_factory import good_collection

RATE = 16000


def write_voiced_video(path: Path, seconds: float = 4.0, fps: int = 5, size: int = 96) -> Path:
    """An mp4 with pictures (dots, then waves) and an AAC soundtrack (a chirp)."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        frames = int(seconds * fps)
        for i in range(frames):
            picture = np.asarray(draw("dots" if i < frames // 2 else "waves", size, seed=i * 2 // frames))
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        sound = tone("chirp", seconds, RATE)
        for lo in range(0, sound.size, 1024):
            frame = av.AudioFrame.from_ndarray(sound[None, lo : lo + 1024], format="flt", layout="mono")
            frame.sample_rate = RATE
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return path


LONG_TEXT = "".join(
    f"Paragraph {n} is about {topic} 🙂 and more {topic}.\r\n" * 6
    for n, topic in enumerate(["harbours", "lighthouses", "mountain goats", "tea", "violins"] * 4)
)


def preview_collection(folder: Path) -> dict[str, Path]:
    """good_collection plus what the preview shows best: a varied sound, a video with a
    soundtrack and a long text (several chunks, CRLF line ends, characters outside the BMP)."""
    files = good_collection(folder)
    files["talk"] = folder / "sounds" / "talk.wav"
    sf.write(files["talk"], np.concatenate(
        [tone("tone", 3.0, RATE), tone("noise", 2.5, RATE), tone("chirp", 2.5, RATE)]), RATE)
    files["voiced"] = write_voiced_video(folder / "clips" / "voiced.mp4")
    files["long"] = folder / "notes" / "long.txt"
    files["long"].write_bytes(LONG_TEXT.encode("utf-8"))
    return files


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("preview")
    files = preview_collection(root / "media")
    with Library(root / "lib") as lib:
        report = index(lib, [root / "media"], encoders=[FakeEncoder()])
        assert not report.errors
        yield lib, files


def query(path: Path) -> dict[str, np.ndarray]:
    return encode_query(SearchQuery(path=path), [FakeEncoder()])


# ---------------------------------------------------------------------------- catalog, store


def test_segments_of_lists_an_indexed_files_segments_in_order(indexed):
    lib, files = indexed
    segments = lib.catalog.segments_of(str(files["video"]))
    assert [s.index for s in segments] == list(range(len(segments))) and len(segments) >= 4
    assert {s.kind for s in segments} == {"image"} and segments[0].start == 0.0
    assert lib.catalog.segments_of(str(files["video"].with_name("nope.mp4"))) == []


def test_store_returns_stored_vectors_by_id(indexed):
    lib, files = indexed
    ids = [s.id for s in lib.catalog.segments_of(str(files["voiced"]))]
    visual, sound = lib.store.vectors(ids, "fake-visual"), lib.store.vectors(ids, "fake-sound")
    assert visual and sound and set(visual) | set(sound) == set(ids)  # frames, then windows
    assert not set(visual) & set(sound)
    v = next(iter(visual.values()))
    assert v.dtype == np.float32 and v.shape == (8,) and np.linalg.norm(v) == pytest.approx(1, abs=1e-5)
    assert lib.store.vectors(ids, "no-such-space") == {}
    assert lib.store.vectors([123456789], "fake-visual") == {}


# ---------------------------------------------------------------------------- similarity


def test_curve_follows_the_query_along_a_video(indexed, tmp_path):
    lib, files = indexed
    waves = tmp_path / "waves.png"
    draw("waves", 96, seed=6).save(waves)
    vectors = query(waves)
    curve = similarity_curve(lib, str(files["video"]), vectors, "fake-visual")
    assert len(curve) == len(lib.catalog.segments_of(str(files["video"])))
    assert [p.start for p in curve] == sorted(p.start for p in curve)
    first = [p.similarity for p in curve if p.start < 2.0]  # dots
    second = [p.similarity for p in curve if p.start >= 2.0]  # waves, like the query
    assert min(second) > max(first)
    # it is the cosine similarity with the stored vector
    seg = lib.catalog.segments_of(str(files["video"]))[0]
    stored = lib.store.vectors([seg.id], "fake-visual")[seg.id]
    assert curve[0].similarity == pytest.approx(float(stored @ vectors["fake-visual"]), abs=1e-5)


def test_curve_falls_back_to_a_shared_space_and_is_empty_without_one(indexed):
    lib, files = indexed
    vectors = query(files["talk"])  # a sound: fake-sound only
    curve = similarity_curve(lib, str(files["talk"]), vectors, "fake-visual")  # not in vectors
    assert len(curve) >= 4 and all(p.end > p.start for p in curve)
    # tone, then noise, then chirp: the curve is not flat
    assert max(p.similarity for p in curve) - min(p.similarity for p in curve) > 0.05
    assert similarity_curve(lib, str(files["video"]), vectors, "fake-sound") == []  # no sound
    assert similarity_curve(lib, str(files["cats"]), vectors, "fake-visual") == []  # untimed
    assert similarity_curve(lib, "/nowhere/x.mp4", vectors, "fake-sound") == []


def test_curve_of_a_video_with_sound_uses_the_results_space_first(indexed):
    lib, files = indexed
    vectors = {**query(files["talk"]), **query(files["stripes"])}
    frames = similarity_curve(lib, str(files["voiced"]), vectors, "fake-visual")
    windows = similarity_curve(lib, str(files["voiced"]), vectors, "fake-sound")
    assert frames and all(p.start == p.end for p in frames)
    assert windows and all(p.end > p.start for p in windows)


def test_curve_stops_on_cancel(indexed):
    lib, files = indexed
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        similarity_curve(lib, str(files["video"]), query(files["stripes"]), "fake-visual",
                         cancel=token)


# ---------------------------------------------------------------------------- waveform


def test_waveform_peaks_of_an_audio_file(indexed):
    _, files = indexed
    wave = waveform_peaks(files["talk"], bins=500)
    assert wave.peaks.shape == (500, 2) and wave.peaks.dtype == np.float32
    assert np.isfinite(wave.peaks).all() and (wave.peaks[:, 0] <= wave.peaks[:, 1]).all()
    assert wave.duration == pytest.approx(8.0, abs=1e-3)
    assert 0.4 < wave.peaks[:100, 1].max() <= 1.0  # the 0.5 tone
    # fewer bins than asked when the sound is too short to fill them
    short = waveform_peaks(files["tone"], bins=100_000)
    assert 0 < short.bins < 100_000 and short.duration == pytest.approx(2.0, abs=1e-3)


def test_waveform_peaks_of_a_videos_soundtrack(indexed):
    _, files = indexed
    wave = waveform_peaks(files["voiced"], bins=200)
    assert wave.bins == 200 and wave.duration == pytest.approx(4.0, abs=0.2)
    assert np.abs(wave.peaks).max() > 0.3
    with pytest.raises(MediaError, match="no soundtrack"):
        waveform_peaks(files["video"])


@pytest.mark.parametrize("name, content", [
    ("random.wav", np.random.default_rng(0).bytes(4000)),
    ("empty.wav", b""),
    ("picture.png", None),
])
def test_waveform_peaks_of_a_bad_file_is_a_media_error(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        draw("stripes", 32).save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(MediaError):
        waveform_peaks(path)
    with pytest.raises(MediaError, match="not found"):
        waveform_peaks(tmp_path / "missing.wav")


def test_waveform_stops_on_cancel(indexed):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        waveform_peaks(indexed[1]["talk"], cancel=token)


# ---------------------------------------------------------------------------- image, text


def test_preview_image_is_bounded(tmp_path):
    path = tmp_path / "big.png"
    draw("circles", 600).save(path)
    assert preview_image(path).size == (600, 600)
    assert max(preview_image(path, max_side=200).size) == 200
    with pytest.raises(MediaError):
        preview_image(tmp_path / "missing.png")


def test_preview_text_windows_a_huge_text_around_the_match(indexed):
    _, files = indexed
    whole = preview_text(files["long"])
    assert whole.text == LONG_TEXT and whole.offset == 0 and not whole.truncated
    assert whole.span(10, 20) == (10, 20)
    part = preview_text(files["long"], 3000, 3100, max_chars=1000)
    assert part.truncated and len(part.text) == 1000 and part.total == len(LONG_TEXT)
    assert part.offset <= 3000 and 3100 <= part.offset + 1000
    start, end = part.span(3000, 3100)
    assert part.text[start:end] == LONG_TEXT[3000:3100]
    assert part.span(0, 10) is None  # outside the window
