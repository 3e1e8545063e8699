"""Cleaning raw lines before any tokenizer sees them.

Invisible characters carry no words: format characters (Unicode category
Cf: zero-width space U+200B, byte-order mark U+FEFF, joiners, direction
marks, soft hyphen), NUL and the replacement character U+FFFD that stands
for undecodable bytes.  Left in, a zero-width space glued to a word makes it
``<unk>``, and a line of them alone looks like a sentence to the model.
:func:`clean_line` removes them; the pipeline calls it on every line it
tokenizes (training, translation, serving), so all paths see the same text.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable

_EXTRA = "\x00\ufffd"  # NUL and the replacement character (not category Cf)


def _junk_pattern() -> re.Pattern[str]:
    """A character class of the junk, written as ranges of code points: the
    regex engine tests a few ranges per character, not hundreds of members."""
    codes = sorted(
        {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
        | {ord(c) for c in _EXTRA}
    )
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    parts = (re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in ranges)
    return re.compile("[" + "".join(parts) + "]")


_JUNK = _junk_pattern()


def clean_line(text: str) -> str:
    """``text`` without format characters (category Cf), NUL and U+FFFD."""
    return _JUNK.sub("", text)


def clean_lines(texts: Iterable[str]) -> list[str]:
    return [clean_line(text) for text in texts]
