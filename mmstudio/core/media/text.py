"""Text files: decoded to str (whatever their encoding), then cut into chunks."""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Iterator

from mmstudio.core.errors import MediaError
from mmstudio.core.media._util import as_media_error, require_file
from mmstudio.core.media.chunking import chunk_spans
from mmstudio.core.media.htmltext import visible_text
from mmstudio.core.media.options import DecodeOptions
from mmstudio.core.segments import Segment

log = logging.getLogger(__name__)

_HTML_SUFFIXES = frozenset({".html", ".htm"})

# Byte order marks, longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Control characters that do not occur in text (\t \n \r \f do, and so does ESC
# in coloured logs, rarely enough to stay under the share below).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MAX_CONTROL_SHARE = 0.05

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# A non-ASCII symbol between two letters ("Za¿ó³æ") is what Polish, Czech, ... text
# looks like when read as cp1252; real Western text has none (apostrophes aside).
_SYMBOL_IN_WORD = re.compile(r"(?<=[^\W\d_])[^\w\s\x00-\x7f’‘](?=[^\W\d_])")


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of `path`, decoded; for HTML, only its visible text.

    Text chunks' char_start/char_end are offsets into this string. Raises MediaError
    for empty files and for binary data.
    """
    p = require_file(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MediaError(path, f"cannot read file ({exc.strerror or exc})") from exc
    with as_media_error(path):
        text = _decode_bytes(data, path)
        return visible_text(text) if p.suffix.lower() in _HTML_SUFFIXES else text


def decode_text(path: str | os.PathLike[str], options: DecodeOptions) -> Iterator[Segment]:
    """Chunks of the text of `path` (see `chunking`), with spans into read_text(path)."""
    text = read_text(path)
    index = 0
    for start, end in chunk_spans(text, options.text_chunk_chars):
        yield Segment(kind="text", data=text[start:end], index=index, char_start=start, char_end=end)
        index += 1
    if index == 0:
        raise MediaError(path, "no text")


def _decode_bytes(data: bytes, path: object) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # The mark says what the file is; a few bad bytes later on should not
            # cost the whole file.
            text = data.decode(encoding, errors="replace")
            break
    else:
        if b"\x00" in data:
            raise MediaError(path, "binary data, not text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode_legacy(data)
    if len(_CONTROL.findall(text)) > _MAX_CONTROL_SHARE * max(1, len(text)):
        raise MediaError(path, "binary data, not text")
    return text


def _decode_legacy(data: bytes) -> str:
    """Text in a single- or multi-byte legacy encoding, best guess."""
    western = _as_western(data)
    if western is not None:
        return western
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        log.debug("charset_normalizer not installed; reading non-UTF-8 text as cp1252")
    else:
        best = from_bytes(data).best()
        if best is not None:
            return str(best)
    return data.decode("cp1252", errors="replace")


def _as_western(data: bytes) -> str | None:
    """`data` as cp1252 (the superset of latin-1) if it reads as Western European text.

    Tried before charset detection because detectors guess poorly on short texts:
    b"caf\\xe9 cr\\xe8me" comes back as Farsi or Czech. Cyrillic, Greek, CJK and
    Central European bytes read as cp1252 give words made mostly of accented letters
    or of letters and symbols mixed, which is what the checks below reject.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    accented = sum(1 for ch in _NON_ASCII.findall(text) if ch.isalpha())
    plain = sum(1 for _ in _ASCII_LETTER.finditer(text))
    if accented > 0.4 * (accented + plain) or _SYMBOL_IN_WORD.search(text):
        return None
    return text
