"""Cutting a text into chunks of at most N characters along its natural boundaries.

Paragraphs (separated by blank lines) are the unit; consecutive small paragraphs are
merged up to the limit, and a paragraph over the limit is split at line breaks, then
at sentence ends, then at any whitespace, and as a last resort every N characters.
Chunks are (start, end) character spans with no surrounding whitespace, so
text[start:end] is exactly what gets embedded and what a result highlights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

Span = tuple[int, int]

# A blank line: two line breaks with nothing but spaces between (handles \r\n too).
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")

# Finer and finer places to cut a paragraph that is too long.
_SPLIT_LEVELS = (
    re.compile(r"\n"),
    # After . ! ? or … (optionally closed by a quote or bracket) and whitespace, or
    # right after CJK full stops, which are not followed by spaces.
    re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|(?<=[。！？])\s*"),
    re.compile(r"\s+"),
)


def chunk_spans(text: str, limit: int) -> Iterator[Span]:
    """Yield stripped (start, end) spans of `text`, each at most `limit` characters."""
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    paragraphs = _pieces(text, 0, len(text), _PARAGRAPH_BREAK)
    yield from _pack(text, paragraphs, limit, 0)


def _pack(text: str, spans: Iterable[Span], limit: int, level: int) -> Iterator[Span]:
    """Merge consecutive spans while the merged span fits; split those that never fit."""
    current: Span | None = None
    for start, end in spans:
        if end - start > limit:
            if current is not None:
                yield current
                current = None
            yield from _split(text, start, end, limit, level)
        elif current is not None and end - current[0] <= limit:
            current = (current[0], end)
        else:
            if current is not None:
                yield current
            current = (start, end)
    if current is not None:
        yield current


def _split(text: str, start: int, end: int, limit: int, level: int) -> Iterator[Span]:
    """Split an over-long stripped span at the boundaries of `level` or finer."""
    if level >= len(_SPLIT_LEVELS):
        for cut in range(start, end, limit):
            span = _strip(text, cut, min(cut + limit, end))
            if span[1] > span[0]:
                yield span
        return
    units = list(_pieces(text, start, end, _SPLIT_LEVELS[level]))
    if len(units) <= 1:
        yield from _split(text, start, end, limit, level + 1)
    else:
        yield from _pack(text, units, limit, level + 1)


def _pieces(text: str, start: int, end: int, separator: re.Pattern[str]) -> Iterator[Span]:
    """Non-empty stripped spans of text[start:end] between matches of `separator`."""
    pos = start
    for match in separator.finditer(text, start, end):
        span = _strip(text, pos, match.start())
        if span[1] > span[0]:
            yield span
        pos = match.end()
    span = _strip(text, pos, end)
    if span[1] > span[0]:
        yield span


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
