"""Word counting: IFEval's ``\\w+`` word count.

NLTK's ``RegexpTokenizer(r"\\w+")`` compiles with the ``regex`` engine, whose ``\\w`` differs from ``re``'s
on combining marks (Hindi, Thai, ...), so we use ``regex`` too.
"""

from __future__ import annotations

import functools

import regex

CACHE_SIZE = 8192

_WORD_RE = regex.compile(r"\w+")
# On ASCII text \w is exactly [A-Za-z0-9_]: blank every other byte and count the runs left by splitting.
_ASCII_NON_WORD_TO_SPACE = bytes(
    c if chr(c).isascii() and (chr(c).isalnum() or c == 0x5F) else 0x20 for c in range(256)
)


@functools.lru_cache(maxsize=CACHE_SIZE)
def count_words(text: str) -> int:
    """Number of ``\\w+`` runs (IFEval's word count)."""
    if text.isascii():
        return len(text.encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).split())
    return len(_WORD_RE.findall(text))

