"""The visible text of an HTML page, with paragraph breaks where blocks end."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown as text.
_HIDDEN = frozenset({"script", "style", "template", "noscript"})
# Block elements: their edges become blank lines, so chunking sees paragraphs.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "caption", "details", "dialog", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "summary",
    "table", "title", "ul",
})
# Elements that only start a new line.
_LINES = frozenset({"li", "tr", "dt", "dd", "option"})
_SPACE_RUN = re.compile(r"\s+")


def visible_text(html: str) -> str:
    """Text a browser would show for `html`: no script/style, whitespace collapsed."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser.text()


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._newlines = 0  # line breaks owed before the next visible text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        self._boundary(tag)
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag != "br":  # </br> is a typo browsers ignore, not a second break
            self._boundary(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>, <script/>: a boundary, but nothing opened that needs closing.
        self._boundary(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            data = _SPACE_RUN.sub(" ", data)
            at_line_start = not self._parts or self._newlines or self._parts[-1].endswith(("\n", " "))
            if at_line_start:
                data = data.lstrip(" ")
        if not data:
            return
        if self._newlines and self._parts:
            self._parts[-1] = self._parts[-1].rstrip(" ")
            self._parts.append("\n" * self._newlines)
        self._newlines = 0
        self._parts.append(data)

    def _boundary(self, tag: str) -> None:
        if tag in _BLOCKS:
            self._newlines = 2
        elif tag == "br":  # <br><br> leaves a blank line, as it shows
            self._newlines = min(2, self._newlines + 1)
        elif tag in _LINES:
            self._newlines = max(self._newlines, 1)

    def text(self) -> str:
        return "".join(self._parts).strip()
