"""Decoding: every modality from files generated here, good and bad."""

from __future__ import annotations

import inspect
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmstudio.core import media
from mmstudio.core.errors import MediaError
from mmstudio.core.media import EXTENSIONS, DecodeOptions, decode, modality_of
from mmstudio.core.media.audio import audio_windows
from mmstudio.core.media.chunking import chunk_spans
from mmstudio.core.segments import Audio, Segment


def segments(path: Path, **options: object) -> list[Segment]:
    """All segments of `path`, checking the invariants every decode must keep."""
    out = list(decode(path, DecodeOptions(**options)))  # type: ignore[arg-type]
    assert [s.index for s in out] == list(range(len(out)))
    for s in out:
        if s.kind == "image":
            assert isinstance(s.data, Image.Image) and s.data.mode == "RGB"
        elif s.kind == "audio":
            assert isinstance(s.data, Audio) and s.data.samples.dtype == np.float32
            assert s.data.samples.ndim == 1
    return out


def only_image(path: Path, **options: object) -> Image.Image:
    (seg,) = segments(path, **options)
    assert seg.kind == "image"
    return seg.data  # type: ignore[return-value]


def media_error(path: Path, **options: object) -> MediaError:
    with pytest.raises(MediaError) as info:
        list(decode(path, DecodeOptions(**options)))  # type: ignore[arg-type]
    assert info.value.path == str(path)
    return info.value


# ---------------------------------------------------------------- registry


def test_extensions_and_modality_of() -> None:
    assert all(ext == ext.lower() and ext.startswith(".") for ext in EXTENSIONS)
    assert modality_of("a/B.JPG") == "image"
    assert modality_of(Path("x.Tiff")) == "image"
    assert modality_of("notes.md") == "text"
    assert modality_of("song.FLAC") == "audio"
    assert modality_of("clip.mkv") == "video"
    assert modality_of("archive.zip") is None
    assert modality_of("README") is None


def test_decode_is_a_generator_that_fails_lazily(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    gen = decode(missing)
    assert inspect.isgenerator(gen)  # nothing read yet, so nothing raised yet
    with pytest.raises(MediaError, match="file not found"):
        next(gen)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("hello")
    assert "unsupported file type" in media_error(path).reason


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="audio_hop"):
        DecodeOptions(audio_hop=0)


# ---------------------------------------------------------------- images


def halves(size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...], mode: str = "RGB") -> Image.Image:
    im = Image.new(mode, size, left)
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return im


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    halves((80, 40), (255, 0, 0), (0, 0, 255)).save(path, exif=exif, quality=95)
    im = only_image(path)
    assert im.size == (40, 80)
    # The stored left (red) half is on top once turned clockwise.
    top, bottom = np.asarray(im)[5, 20], np.asarray(im)[75, 20]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_greyscale_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (30, 20), 77).save(path)
    assert np.array_equal(np.asarray(only_image(path))[0, 0], [77, 77, 77])


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    halves((40, 20), (0, 0, 0, 0), (0, 128, 0, 255), mode="RGBA").save(path)
    px = np.asarray(only_image(path))
    assert np.array_equal(px[10, 2], [255, 255, 255])  # transparent black shows as white
    assert np.array_equal(px[10, 37], [0, 128, 0])


def test_palette_with_transparency(tmp_path: Path) -> None:
    path = tmp_path / "palette.gif"
    im = Image.new("P", (40, 20), 0)
    im.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    im.paste(1, (20, 0, 40, 20))
    im.save(path, transparency=0)
    px = np.asarray(only_image(path))
    assert np.array_equal(px[10, 2], [255, 255, 255])
    assert np.array_equal(px[10, 37], [200, 30, 30])


def test_16_bit_is_scaled_by_its_range_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    gradient = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    Image.fromarray(gradient).save(path)
    with Image.open(path) as stored:
        assert stored.mode.startswith("I")
    row = np.asarray(only_image(path))[8, :, 0].astype(int)
    assert row[0] <= 2 and row[-1] >= 253
    assert np.all(np.diff(row) >= 0)
    assert abs(int(row[128]) - 128) <= 3  # mid-grey in the middle, not white


@pytest.mark.parametrize("mode", ["1", "LA", "I", "F", "CMYK"])
def test_other_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"mode_{mode}.tif"
    Image.new("RGB", (24, 12), (10, 200, 90)).convert(mode).save(path)
    im = only_image(path)
    assert im.size == (24, 12)


def test_large_images_are_downscaled(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    halves((2000, 1000), (250, 250, 250), (0, 0, 0)).save(path, quality=90)
    assert only_image(path).size == (512, 256)
    assert only_image(path, image_max_side=100).size == (100, 50)
    assert media.load_image(path, DecodeOptions(image_max_side=64)).size == (64, 32)


def png_claiming(width: int, height: int) -> bytes:
    """A real tiny PNG whose header then claims width x height (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    rows = zlib.compress(b"\x00" * 16)
    idat = struct.pack(">I", len(rows)) + b"IDAT" + rows + struct.pack(">I", zlib.crc32(b"IDAT" + rows))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + iend


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [12000, 20000])  # under and over PIL's own hard limit
def test_decompression_bomb(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(side, side))
    reason = media_error(path).reason
    assert "megapixels" in reason and "100 MP limit" in reason
    assert f"{side * side / 1e6:,.0f} megapixels" in reason


def test_megapixel_limit_is_an_option(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (1000, 1000)).save(path)
    assert "over the 0.5 MP limit" in media_error(path, max_megapixels=0.5).reason
    assert only_image(path).size == (512, 512)


def test_truncated_jpeg(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(whole, quality=90)
    path = tmp_path / "truncated.jpg"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "truncated" in media_error(path).reason


# ---------------------------------------------------------------- bad input, every modality


@pytest.mark.parametrize("name", ["noise.jpg", "noise.png", "noise.wav", "noise.mp3", "noise.mp4", "noise.txt"])
def test_random_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    reason = media_error(path).reason
    if name.endswith(".jpg"):
        assert reason == "not a valid image (cannot identify image file)"
    if name.endswith(".txt"):
        assert reason == "binary data, not text"


@pytest.mark.parametrize("name", ["empty.jpg", "empty.txt", "empty.wav", "empty.mp4", "empty.html"])
def test_empty_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert media_error(path).reason == "empty file"


# ---------------------------------------------------------------- text


def test_cp1252_text(tmp_path: Path) -> None:
    path = tmp_path / "menu.txt"
    path.write_bytes("Un café crème, s’il vous plaît — 3 €".encode("cp1252"))
    assert media.read_text(path) == "Un café crème, s’il vous plaît — 3 €"
    assert segments(path)[0].data == "Un café crème, s’il vous plaît — 3 €"


def test_latin1_short_text(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes("café".encode("latin-1"))
    assert media.read_text(path) == "café"


def test_other_legacy_encodings_go_to_detection(tmp_path: Path) -> None:
    pytest.importorskip("charset_normalizer")
    path = tmp_path / "ru.txt"
    text = "Привет, мир! Это обычный русский текст в старой кодировке."
    path.write_bytes(text.encode("cp1251"))
    assert media.read_text(path) == text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_text_with_bom(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("Grüße aus Köln\n\nZweiter Absatz".encode(encoding))
    assert media.read_text(path) == "Grüße aus Köln\n\nZweiter Absatz"  # no BOM left
    assert [s.data for s in segments(path)] == ["Grüße aus Köln\n\nZweiter Absatz"]


def test_control_characters_are_binary(tmp_path: Path) -> None:
    path = tmp_path / "controls.csv"
    path.write_bytes(bytes(range(1, 32)) * 50)  # no NUL, but no text either
    assert media_error(path).reason == "binary data, not text"


def test_whitespace_only_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("  \n\n\t \n")
    assert media_error(path).reason == "no text"


def test_html_visible_text(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Harbour</title><style>p { color: red }</style>"
        "<script>var secret = 'hidden words';</script></head>"
        "<body><h1>Boats</h1><p>Sailing   boats\n crossed at <b>dawn</b>.</p>"
        "<p>Fish &amp; chips<br>after.</p><script>alert(1)</script></body></html>",
        encoding="utf-8",
    )
    text = media.read_text(path)
    assert text == "Harbour\n\nBoats\n\nSailing boats crossed at dawn.\n\nFish & chips\nafter."
    for seg in segments(path):
        assert text[seg.char_start : seg.char_end] == seg.data


def check_chunks(text: str, limit: int) -> list[str]:
    spans = list(chunk_spans(text, limit))
    chunks = [text[a:b] for a, b in spans]
    assert all(0 < len(c) <= limit and c == c.strip() for c in chunks)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans[:-1], spans[1:], strict=True))  # in order
    # Nothing but whitespace is lost between chunks.
    assert "".join(chunks).replace(" ", "").replace("\n", "") == "".join(text.split())
    return chunks


def test_small_paragraphs_are_merged_up_to_the_limit() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 8 for i in range(6)]  # ~52 chars each
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = check_chunks(text, 120)
    assert len(chunks) == 3
    assert chunks[0].startswith("Paragraph 0") and chunks[0].endswith("word")
    assert "\n\nParagraph 1" in chunks[0]


def test_long_paragraph_is_split_at_lines_then_sentences_then_spaces() -> None:
    lines = "First line is here.\nSecond line follows it.\nThird line ends it."
    assert check_chunks(lines, 45) == [
        "First line is here.\nSecond line follows it.",
        "Third line ends it.",
    ]
    sentences = "One short sentence. Another one here! A question? Final words."
    assert check_chunks(sentences, 40) == [
        "One short sentence. Another one here!",
        "A question? Final words.",
    ]
    words = "alpha beta gamma delta epsilon zeta eta theta"
    assert check_chunks(words, 12) == ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"]
    assert check_chunks("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_text_segments_point_into_read_text(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    body = "\r\n\r\n".join(f"  Part {i}. " + "Some sentence here. " * (i * 7) for i in range(1, 8))
    path.write_text("\n\n" + body + "\n   \n", encoding="utf-8", newline="")
    text = media.read_text(path)
    segs = segments(path, text_chunk_chars=200)
    assert len(segs) > 7
    for seg in segs:
        assert seg.kind == "text"
        assert text[seg.char_start : seg.char_end] == seg.data
        assert len(seg.data) <= 200 and seg.data == seg.data.strip()


# ---------------------------------------------------------------- audio


def sine(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_becomes_16k_mono_windows(tmp_path: Path) -> None:
    path = tmp_path / "ten.wav"
    left = sine(10, 44100)
    sf.write(path, np.stack([left, left], axis=1), 44100)
    segs = segments(path)
    assert [s.kind for s in segs] == ["audio"] * 6
    assert [s.start for s in segs] == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    assert [s.end for s in segs[:5]] == [3.0, 4.5, 6.0, 7.5, 9.0]
    assert segs[-1].end == pytest.approx(10.0, abs=0.01)
    for s in segs:
        assert s.data.rate == 16000
        assert s.data.samples.size == round((s.end - s.start) * 16000)
    # Mono mix of two equal channels is the channel, resampled: same sine at 16 kHz.
    expected = sine(3, 16000)[2000:46000]
    np.testing.assert_allclose(segs[0].data.samples[2000:46000], expected, atol=0.02)


def test_resampling_has_no_seams_between_blocks(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    sf.write(path, sine(5, 48000, freq=300), 48000)  # several 65536-frame blocks
    audio = media.load_audio(path, 16000)
    assert audio.rate == 16000
    assert abs(audio.samples.size - 5 * 16000) <= 2
    expected = sine(5, 16000, freq=300)
    n = min(audio.samples.size, expected.size) - 500
    np.testing.assert_allclose(audio.samples[500:n], expected[500:n], atol=0.01)


def test_short_audio_is_one_window_of_its_length(tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    sf.write(path, sine(1.0, 16000), 16000)
    (seg,) = segments(path)
    assert (seg.start, seg.end, seg.data.samples.size) == (0.0, 1.0, 16000)


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 16000)
    assert path.stat().st_size > 0
    assert "no audio" in media_error(path).reason


def windows_of(total: int, window: float, hop: float, block: int = 7) -> list[tuple[int, int]]:
    signal = np.arange(total, dtype=np.float32)
    blocks = [signal[i : i + block] for i in range(0, total, block)]
    out = []
    for samples, start in audio_windows(blocks, 10, window, hop):
        assert np.array_equal(samples, signal[start : start + samples.size])
        out.append((start, start + samples.size))
    return out


def test_window_tail_rules() -> None:
    # 6.2 s: full windows to 6.0 s, then a 1.7 s partial (over half a window) to the end.
    assert windows_of(62, 3, 1.5) == [(0, 30), (15, 45), (30, 60), (45, 62)]
    # 4.5 s, no overlap: the 0.5 s tail is too short for its own window, so the last
    # window is a full one aligned to the end.
    assert windows_of(45, 2, 2) == [(0, 20), (20, 40), (25, 45)]
    # 5.5 s, no overlap: the 1.5 s tail makes a partial window.
    assert windows_of(55, 2, 2) == [(0, 20), (20, 40), (40, 55)]
    # Exactly covered: nothing extra.
    assert windows_of(60, 3, 1.5) == [(0, 30), (15, 45), (30, 60)]
    assert windows_of(12, 3, 1.5) == [(0, 12)]
    assert windows_of(0, 3, 1.5) == []


@pytest.mark.parametrize(("ext", "fmt", "subtype"), [("mp3", "MP3", "MPEG_LAYER_III"), ("ogg", "OGG", "VORBIS")])
def test_compressed_audio(tmp_path: Path, ext: str, fmt: str, subtype: str) -> None:
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}")
    path = tmp_path / f"tone.{ext}"
    sf.write(path, np.stack([sine(4, 44100)] * 2, axis=1), 44100, format=fmt, subtype=subtype)
    segs = segments(path)
    assert [s.start for s in segs] == [0.0, 1.5]
    assert segs[-1].end == pytest.approx(4.0, abs=0.1)  # codecs pad a little
    assert 0.2 < float(np.abs(segs[0].data.samples).max()) < 0.7


# ---------------------------------------------------------------- video


RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR, as OpenCV writes


def write_cut_video(path: Path, seconds: float = 5.0, fps: int = 10) -> None:
    """mp4v video, red with a moving bar, turning blue at seconds / 2."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    assert writer.isOpened()
    for i in range(round(seconds * fps)):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:] = RED if i < seconds * fps / 2 else BLUE
        frame[50:70, 2 * i : 2 * i + 20] = 255
        writer.write(frame)
    writer.release()


def write_av_video(path: Path, seconds: float = 3.0, with_audio: bool = True) -> None:
    """H.264 (or MPEG-4 part 2) video with an AAC soundtrack, made with PyAV."""
    import av

    fps, rate = 10, 16000
    with av.open(str(path), "w") as out:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = None
        if with_audio:
            audio = out.add_stream("aac", rate=rate)
            audio.layout = "mono"
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100 + i, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            tone = sine(seconds, rate)
            for at in range(0, tone.size, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, at : at + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = rate, at
                for packet in audio.encode(chunk):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)


def test_video_frames_and_scene_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    write_cut_video(path)
    segs = segments(path)
    assert all(s.kind == "image" and s.start == s.end for s in segs)  # no soundtrack
    assert [s.start for s in segs] == pytest.approx([0.0, 1.0, 2.0, 2.5, 3.0, 4.0])
    cut = np.asarray(segs[3].data)[5, 5]
    before = np.asarray(segs[2].data)[5, 5]
    assert before[0] > 200 and before[2] < 50  # red (RGB now)
    assert cut[2] > 200 and cut[0] < 50  # blue: the first frame of the new shot
    assert segs[0].data.size == (160, 120)


def test_video_sampling_options(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    write_cut_video(path)
    assert [s.start for s in segments(path, scene_cuts=False)] == pytest.approx([0, 1, 2, 3, 4])
    halves = segments(path, frames_per_second=2, image_max_side=80)
    # The cut at 2.5 s falls on a regular sample: no extra frame.
    assert [s.start for s in halves] == pytest.approx([i / 2 for i in range(10)])
    assert halves[0].data.size == (80, 60)


def test_gradual_change_is_not_a_cut(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "fade.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), 20 + 5 * i, np.uint8))
    writer.release()
    assert [s.start for s in segments(path)] == pytest.approx([0, 1, 2, 3])


def test_video_with_soundtrack(tmp_path: Path) -> None:
    path = tmp_path / "talk.mp4"
    # 4 s, not 3: whether AAC's padding (128 samples here) is trimmed on decoding is up
    # to the PyAV release (18 keeps it, 19 trims it), and a 3.000 s track is one window
    # where 3.008 s is two; 4 s is two windows either way
    write_av_video(path, seconds=4.0)
    segs = segments(path)
    kinds = [s.kind for s in segs]
    assert kinds == ["image"] * 4 + ["audio"] * (len(segs) - 4)  # frames first
    audio = segs[4:]
    assert [s.start for s in audio] == [0.0, 1.5]
    assert audio[0].end == 3.0 and audio[0].data.rate == 16000
    assert float(np.abs(audio[0].data.samples).max()) > 0.2


def test_video_without_soundtrack_yields_frames_only(tmp_path: Path) -> None:
    path = tmp_path / "mute.mp4"
    write_av_video(path, seconds=2.0, with_audio=False)
    assert [s.kind for s in segments(path)] == ["image", "image"]


def test_broken_soundtrack_keeps_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import av

    path = tmp_path / "talk.mp4"
    write_av_video(path, seconds=2.0)

    def broken(*args: object, **kwargs: object) -> None:
        raise av.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(av, "open", broken)
    with caplog.at_level(logging.WARNING):
        segs = segments(path)
    assert [s.kind for s in segs] == ["image", "image"]
    assert "soundtrack" in caplog.text


def test_video_streams(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    write_cut_video(path)
    gen = decode(path)
    first = next(gen)
    assert (first.index, first.start) == (0, 0.0)
    gen.close()  # releases the capture; nothing else was decoded


def test_video_without_frame_rate_uses_decoder_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    real = cv2.VideoCapture

    class NoFps:
        """A capture whose container claims no frame rate (wrapped: subclassing the
        OpenCV class crashes the interpreter when the object is freed)."""

        def __init__(self, *args: object) -> None:
            self._cap = real(*args)

        def get(self, prop: int) -> float:
            return 0.0 if prop == cv2.CAP_PROP_FPS else self._cap.get(prop)

        def __getattr__(self, name: str) -> object:
            return getattr(self._cap, name)

    path = tmp_path / "cut.mp4"
    write_cut_video(path)
    monkeypatch.setattr(cv2, "VideoCapture", NoFps)
    starts = [s.start for s in segments(path)]
    assert starts == pytest.approx([0.0, 1.0, 2.0, 2.5, 3.0, 4.0], abs=0.01)


def test_unexpected_library_errors_become_media_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmstudio.core.media import image

    path = tmp_path / "odd.png"
    Image.new("RGB", (8, 8)).save(path)

    def trip(im: Image.Image) -> Image.Image:
        raise ZeroDivisionError("a parser bug")

    monkeypatch.setattr(image, "_to_rgb", trip)
    assert "ZeroDivisionError: a parser bug" in media_error(path).reason
    with pytest.raises(MediaError, match="a parser bug") as info:
        media.load_image(path)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
