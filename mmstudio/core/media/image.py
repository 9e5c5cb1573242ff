"""Images: one RGB picture per file, upright, flattened onto white and bounded in size."""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmstudio.core.errors import MediaError
from mmstudio.core.media._util import as_media_error, fit_within, require_file
from mmstudio.core.media.options import DEFAULT_OPTIONS, DecodeOptions
from mmstudio.core.segments import Segment

log = logging.getLogger(__name__)

# What PIL raises for a header it parsed but pixel data it cannot decode (truncated
# streams, corrupt chunks, bad offsets). Caught per file; LOAD_TRUNCATED_IMAGES stays
# off because a half-grey picture would be embedded as if it were real.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

# Modes that Image.thumbnail resamples well as they are (LA/RGBA are premultiplied by
# PIL while resizing, so transparent pixels do not bleed colour into the edges).
_RESIZABLE = {"RGB", "RGBA", "L", "LA", "F"}


def load_image(path: str | os.PathLike[str], options: DecodeOptions = DEFAULT_OPTIONS) -> Image.Image:
    """The picture in `path` as an RGB image whose longer side is <= options.image_max_side.

    EXIF orientation is applied, transparency is composited onto white and high bit
    depth images are scaled to 8 bits by their actual value range. Raises MediaError
    for anything that is not a readable image, and for images over
    options.max_megapixels (checked from the header, before pixels are decoded).
    """
    with as_media_error(path):
        return _load(require_file(path), path, options)


def _load(p: os.PathLike[str], path: object, options: DecodeOptions) -> Image.Image:
    try:
        im = Image.open(p)
    except UnidentifiedImageError as exc:
        raise MediaError(path, "not a valid image (cannot identify image file)") from exc
    except Image.DecompressionBombError as exc:
        raise MediaError(path, _bomb_reason(str(exc), options.max_megapixels)) from exc
    except _DECODE_ERRORS as exc:
        raise MediaError(path, f"not a valid image ({exc})") from exc
    with im:
        return _decode_pixels(im, path, options)


def decode_image(path: str | os.PathLike[str], options: DecodeOptions) -> Iterator[Segment]:
    """One image segment for an image file."""
    yield Segment(kind="image", data=load_image(path, options), index=0)


def _decode_pixels(im: Image.Image, path: object, options: DecodeOptions) -> Image.Image:
    width, height = im.size
    megapixels = width * height / 1e6
    if megapixels > options.max_megapixels:
        raise MediaError(path, _too_big(megapixels, options.max_megapixels))
    if im.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: a 40 MP photo then costs a
        # fraction of the time and memory. draft() never goes below the requested size.
        im.draft("RGB", fit_within(width, height, options.image_max_side))
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise MediaError(path, _bomb_reason(str(exc), options.max_megapixels)) from exc
    except _DECODE_ERRORS as exc:
        raise MediaError(path, f"image data is truncated or corrupt ({exc})") from exc
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # malformed EXIF must not cost us the picture itself
        log.warning("%s: ignoring unreadable EXIF orientation", path, exc_info=True)
    try:
        out = _resizable(im)
        out.thumbnail((options.image_max_side,) * 2, Image.Resampling.LANCZOS)
        out = _to_rgb(out)
    except _DECODE_ERRORS as exc:
        raise MediaError(path, f"unsupported image data (mode {im.mode}: {exc})") from exc
    # Hand back a plain in-memory image, not the file-backed object we are closing.
    return out.copy() if out is im else out


def _resizable(im: Image.Image) -> Image.Image:
    """`im` in a mode that resizes well and still holds everything we keep (alpha, depth)."""
    mode = im.mode
    if mode in _RESIZABLE:
        return im
    if mode == "I" or mode.startswith("I;16"):
        # 16/32-bit integers: go through float so the later range scaling is exact.
        return Image.fromarray(np.asarray(im, dtype=np.float32))
    if mode == "1":
        return im.convert("L")
    if mode == "La":
        return im.convert("LA")
    # P / PA / RGBa / CMYK / YCbCr / RGBX / HSV ...: keep alpha only if there is some.
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "F":
        im = _range_to_8bit(np.asarray(im, dtype=np.float32))
    if im.mode in ("RGBA", "LA"):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im if im.mode == "RGB" else im.convert("RGB")


def _range_to_8bit(values: np.ndarray) -> Image.Image:
    """Scale high bit depth / float pixels to 0..255 by their actual min..max.

    Clipping would turn a 16-bit image almost entirely white (every value above 255),
    and dividing by the type's maximum would leave a 12-bit camera image nearly black.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Image.new("L", (values.shape[1], values.shape[0]))
    lo, hi = float(finite.min()), float(finite.max())
    if hi > lo:
        scaled = (np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo) - lo) * (255.0 / (hi - lo))
    else:
        # A flat image has no range to stretch; keep its level where it is in 0..255.
        scaled = np.full_like(values, lo)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _too_big(megapixels: float, limit: float) -> str:
    return f"image is {megapixels:,.0f} megapixels, over the {limit:g} MP limit (decompression bomb?)"


def _bomb_reason(message: str, limit: float) -> str:
    """Reason for PIL's own bomb error (raised before our check, for huge headers)."""
    found = re.search(r"\((\d+) pixels\)", message)
    megapixels = int(found.group(1)) / 1e6 if found else None
    if megapixels is not None and megapixels > limit:
        return _too_big(megapixels, limit)
    # Our limit was set above PIL's own hard limit (2 * Image.MAX_IMAGE_PIXELS).
    return f"image is over PIL's decompression bomb limit ({message})"
