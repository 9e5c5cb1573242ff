"""Thumbnails: sizes per modality, posters, waveforms, snippets, the cache, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image, ImageFile

from mmstudio.core import media, thumbnails
from mmstudio.core.errors import MediaError
from mmstudio.core.jobs import CancelToken, Progress
from mmstudio.core.samples import draw, write_video
from mmstudio.core.thumbnails import Thumbnail, thumbnail
from tests.media_factory import broken_collection, bump_mtime


def pixels(thumb: Thumbnail) -> np.ndarray:
    assert thumb.path is not None
    with Image.open(thumb.path) as im:
        assert im.size == (thumb.width, thumb.height)
        return np.asarray(im.convert("RGB")).astype(np.float32)


def mean_colour(image: Image.Image | np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32).reshape(-1, 3).mean(axis=0)


def two_colours(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", size, left)
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return im


# ---------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("size", "expected"),
    [((400, 200), (256, 128)), ((200, 400), (128, 256)), ((100, 50), (100, 50))],
)
def test_image_is_fitted_keeping_aspect_never_upscaled(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    path = tmp_path / "picture.png"
    two_colours(size, (255, 0, 0), (0, 0, 255)).save(path)
    thumb = thumbnail(path, tmp_path / "thumbs")
    assert (thumb.width, thumb.height) == expected
    assert thumb.snippet is None
    assert thumb.path is not None and thumb.path.suffix == ".jpg"
    assert thumb.path.parent.parent == tmp_path / "thumbs"
    assert thumb.path.parent.name == thumb.path.stem[:2]
    with Image.open(thumb.path) as im:
        assert im.format == "JPEG"
    left, right = pixels(thumb)[thumb.height // 2, [2, -3]]
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60


def test_exif_rotation_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned 90 degrees clockwise
    two_colours((400, 200), (255, 0, 0), (0, 0, 255)).save(path, exif=exif, quality=95)
    thumb = thumbnail(path, tmp_path / "thumbs")
    assert (thumb.width, thumb.height) == (128, 256)
    top, bottom = pixels(thumb)[[5, -6], 64]
    assert top[0] > 200 and top[2] < 60  # the stored left (red) half ends up on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_transparency_is_flattened_onto_white_in_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cutout.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(path)
    thumb = thumbnail(path, tmp_path / "thumbs")
    assert thumb.path is not None and thumb.path.suffix == ".jpg"
    assert pixels(thumb).min() > 245


def test_big_jpeg_is_decoded_near_thumbnail_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 4000), (30, 120, 200)).save(path, quality=80)  # 32 MP
    loaded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile):  # noqa: ANN202
        loaded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    thumb = thumbnail(path, tmp_path / "thumbs")
    assert (thumb.width, thumb.height) == (256, 128)
    # libjpeg decoded at 1/8 scale (draft): 1000 x 500, never the 32 MP original.
    assert loaded and max(w * h for w, h in loaded) <= 1000 * 500


# ---------------------------------------------------------------------------- video

SCENE_1, SCENE_2 = ("stripes", 0), ("dots", 3)  # clearly different mean colours


def scene(pattern_seed: tuple[str, int], size: int) -> Image.Image:
    pattern, seed = pattern_seed
    return draw(pattern, size, seed)


def test_video_poster_at_a_moment_shows_that_scene(tmp_path: Path) -> None:
    path = write_video(tmp_path / "scenes.mp4", [(*SCENE_1, 2.0), (*SCENE_2, 2.0)], fps=10, size=128)
    one, two = mean_colour(scene(SCENE_1, 128)), mean_colour(scene(SCENE_2, 128))
    assert np.abs(one - two).max() > 30
    for moment, expected, other in [(3.0, two, one), (0.5, one, two), (99.0, two, one)]:
        thumb = thumbnail(path, tmp_path / "thumbs", 64, moment=moment)
        assert (thumb.width, thumb.height) == (64, 64)
        colour = mean_colour(pixels(thumb))
        assert np.abs(colour - expected).max() < 10, moment
        assert np.abs(colour - other).max() > 20, moment


def write_black_then(path: Path, pattern_seed: tuple[str, int], black_seconds: float, seconds: float) -> Path:
    import cv2

    fps, size = 10, 96
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    assert writer.isOpened()
    picture = np.ascontiguousarray(np.asarray(scene(pattern_seed, size))[:, :, ::-1])
    black = np.zeros_like(picture)
    for i in range(round((black_seconds + seconds) * fps)):
        writer.write(black if i < black_seconds * fps else picture)
    writer.release()
    return path


def test_default_poster_skips_a_black_start(tmp_path: Path) -> None:
    path = write_black_then(tmp_path / "fade-in.mp4", SCENE_2, black_seconds=1.0, seconds=2.0)
    thumb = thumbnail(path, tmp_path / "thumbs")
    assert (thumb.width, thumb.height) == (96, 96)
    assert np.abs(mean_colour(pixels(thumb)) - mean_colour(scene(SCENE_2, 96))).max() < 10


def test_an_all_black_video_still_gets_a_poster(tmp_path: Path) -> None:
    path = write_black_then(tmp_path / "black.mp4", SCENE_2, black_seconds=2.0, seconds=0.0)
    thumb = thumbnail(path, tmp_path / "thumbs")
    assert pixels(thumb).max() < 20


# ---------------------------------------------------------------------------- audio

RATE = 22050


def silent_then_loud(path: Path, seconds: float = 4.0) -> Path:
    """Silence, then a 440 Hz tone for the second half (more than one read block)."""
    t = np.arange(int(seconds * RATE)) / RATE
    y = np.where(t >= seconds / 2, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    sf.write(path, np.stack([y, y], axis=1), RATE)  # stereo: mixed down to mono
    return path


def wave_pixels(image: np.ndarray) -> np.ndarray:
    """Per column, how many pixels are drawn in the waveform colour."""
    return (np.abs(image - np.asarray(thumbnails._WAVE, np.float32)).max(axis=2) < 8).sum(axis=0)


def test_audio_waveform_is_wide_where_loud_and_flat_where_silent(tmp_path: Path) -> None:
    path = silent_then_loud(tmp_path / "late.wav")
    thumb = thumbnail(path, tmp_path / "thumbs", 128)
    assert (thumb.width, thumb.height) == (128, 64)
    assert thumb.path is not None and thumb.path.suffix == ".png"
    drawn = wave_pixels(pixels(thumb))
    assert drawn[:63].max() <= 1  # the silent half: a flat line
    assert drawn[65:].min() >= 50  # the tone at its peak fills the height


def test_audio_moment_is_marked(tmp_path: Path) -> None:
    path = silent_then_loud(tmp_path / "late.wav")
    plain = thumbnail(path, tmp_path / "thumbs", 128)
    marked = thumbnail(path, tmp_path / "thumbs", 128, moment=1.0)
    assert marked.path != plain.path
    image = pixels(marked)
    red = np.abs(image - np.asarray(thumbnails._MARKER, np.float32)).max(axis=2) < 8
    assert set(np.flatnonzero(red.all(axis=0))) == {32}  # 1 s of 4 s, across the height
    assert not (np.abs(pixels(plain) - np.asarray(thumbnails._MARKER, np.float32)).max(axis=2) < 8).any()


# ---------------------------------------------------------------------------- text


def test_text_snippet_is_collapsed_and_truncated(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("  Hello,\n\n\tworld   and\r\n  friends.  \n", encoding="utf-8")
    thumb = thumbnail(short, tmp_path / "thumbs")
    assert thumb == Thumbnail(path=None, snippet="Hello, world and friends.", width=0, height=0)

    long = tmp_path / "long.md"
    long.write_text("\n\n".join(f"word{i}   again" for i in range(2000)), encoding="utf-8")
    snippet = thumbnail(long, tmp_path / "thumbs").snippet
    assert snippet is not None and snippet.endswith("…")
    assert 250 <= len(snippet) <= 301
    assert snippet.startswith("word0 again word1 again")
    assert "  " not in snippet and "\n" not in snippet
    assert snippet[:-1].split(" ")[-1] in {"again", *(f"word{i}" for i in range(100))}  # whole words

    page = tmp_path / "page.html"
    page.write_text("<html><head><style>p {}</style></head><body><p>Seen  text</p></body></html>")
    assert thumbnail(page, tmp_path / "thumbs").snippet == "Seen text"


# ---------------------------------------------------------------------------- cache


def forbid(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> None:
    def decode(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{name} called: the cache was not used")

    monkeypatch.setattr(target, name, decode)


@pytest.mark.parametrize("modality", ["image", "video", "audio", "text"])
def test_cache_hit_does_not_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modality: str) -> None:
    if modality == "image":
        path = tmp_path / "a.png"
        draw("circles", 64, 1).save(path)
        decoder = (media, "load_image")
    elif modality == "video":
        path = write_video(tmp_path / "a.mp4", [(*SCENE_1, 1.0)], fps=5, size=64)
        decoder = (thumbnails, "_poster")
    elif modality == "audio":
        path = silent_then_loud(tmp_path / "a.wav", seconds=1.0)
        decoder = (media.audio, "audio_blocks")
    else:
        path = tmp_path / "a.txt"
        path.write_text("some words", encoding="utf-8")
        decoder = (media, "read_text")
    first = thumbnail(path, tmp_path / "thumbs", 64, moment=0.5)
    forbid(monkeypatch, *decoder)
    assert thumbnail(path, tmp_path / "thumbs", 64, moment=0.5) == first
    with pytest.raises(MediaError, match="cache was not used"):
        thumbnail(path, tmp_path / "thumbs", 32, moment=0.5)  # another size: decodes


def test_changed_file_gets_a_new_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (80, 40), (250, 0, 0)).save(path)
    red = thumbnail(path, tmp_path / "thumbs")
    Image.new("RGB", (80, 40), (0, 0, 250)).save(path)
    bump_mtime(path)  # a coarse file system clock could leave the mtime as it was
    blue = thumbnail(path, tmp_path / "thumbs")
    assert blue.path != red.path
    assert mean_colour(pixels(blue))[2] > 200 and mean_colour(pixels(red))[0] > 200


def test_moments_are_keyed_to_a_tenth_of_a_second_and_ignored_for_images(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", [(*SCENE_1, 1.0)], fps=5, size=32)
    at = [thumbnail(video, tmp_path / "thumbs", moment=m).path for m in (0.51, 0.54, 0.56)]
    assert at[0] == at[1] != at[2]
    image = tmp_path / "i.png"
    draw("dots", 32).save(image)
    assert len({thumbnail(image, tmp_path / "thumbs", moment=m).path for m in (None, 1.0, 2.0)}) == 1


def test_damaged_cache_entry_is_remade(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    draw("checker", 64).save(path)
    first = thumbnail(path, tmp_path / "thumbs")
    assert first.path is not None
    first.path.write_bytes(b"garbage")
    again = thumbnail(path, tmp_path / "thumbs")
    assert again == first and pixels(again).shape == (64, 64, 3)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "photo.png"
    draw("checker", 64).save(path)

    def full_disk(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"half a jpeg")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        thumbnail(path, tmp_path / "thumbs")
    assert [p for p in (tmp_path / "thumbs").rglob("*") if p.is_file()] == []


# ---------------------------------------------------------------------------- bad input and the job


def test_bad_files_raise_media_error(tmp_path: Path) -> None:
    files = broken_collection(tmp_path / "broken")
    files["missing"] = tmp_path / "missing.png"
    files["folder"] = tmp_path / "folder.jpg"
    files["folder"].mkdir()
    files["unsupported"] = tmp_path / "notes.xyz"
    files["unsupported"].write_text("hello")
    files["blank_text"] = tmp_path / "blank.txt"
    files["blank_text"].write_text(" \n\t \n")
    reasons = {}
    for name, path in files.items():
        with pytest.raises(MediaError) as info:
            thumbnail(path, tmp_path / "thumbs", moment=1.0)
        reasons[name] = info.value.reason
        assert info.value.path == str(path)
    assert reasons["empty"] == "empty file"
    assert reasons["missing"] == "file not found"
    assert reasons["folder"] == "not a regular file"
    assert reasons["unsupported"] == "unsupported file type '.xyz'"
    assert reasons["binary_text"] == "binary data, not text"
    assert reasons["blank_text"] == "no text"
    assert "megapixels" in reasons["bomb"]
    assert reasons["random_mp4"].startswith("not a readable video")
    assert reasons["random_wav"].startswith("not a readable audio file")
    assert not list((tmp_path / "thumbs").rglob("*.*"))  # nothing cached for any of them


def test_thumbnails_job_goes_on_past_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    draw("waves", 64).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    text = tmp_path / "note.txt"
    text.write_text("a note")
    seen: list[Progress] = []
    results = list(thumbnails.thumbnails(
        [(good, None), (bad, 2.0), (text, None)], tmp_path / "thumbs", 64, progress=seen.append
    ))
    assert [(p, m) for p, m, _ in results] == [(good, None), (bad, 2.0), (text, None)]
    assert isinstance(results[0][2], Thumbnail) and results[0][2].width == 64
    assert isinstance(results[1][2], MediaError)
    assert results[2][2] == Thumbnail(None, "a note", 0, 0)
    assert [(p.done, p.total, p.errors) for p in seen] == [(0, 3, 0), (1, 3, 0), (2, 3, 1), (3, 3, 1)]
    assert not list((tmp_path / "thumbs").rglob("*.tmp"))


def test_cancel_stops_between_files(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        draw("dots", 32, i).save(paths[-1])
    cancel = CancelToken()
    done = []
    for path, _, result in thumbnails.thumbnails(
        ((p, None) for p in paths), tmp_path / "thumbs", 32, cancel=cancel
    ):
        assert isinstance(result, Thumbnail)
        done.append(path)
        if len(done) == 2:
            cancel.cancel()
    assert done == paths[:2]
    assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 2


def test_thumbs_dir_is_in_the_library(tmp_path: Path) -> None:
    assert thumbnails.thumbs_dir(tmp_path) == tmp_path / "thumbs"
    with pytest.raises(ValueError):
        thumbnail(tmp_path / "x.png", tmp_path / "thumbs", 0)
