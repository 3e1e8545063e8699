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
    junk = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    return re.compile("[" + re.escape("".join(junk) + _EXTRA) + "]")


_JUNK = _junk_pattern()


def clean_line(text: str) -> str:
    """``text`` without format characters (category Cf), NUL and U+FFFD."""
    return _JUNK.sub("", text)


def clean_lines(texts: Iterable[str]) -> list[str]:
    return [clean_line(text) for text in texts]
