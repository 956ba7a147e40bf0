"""NLTK's ``word_tokenize`` (English): Punkt sentences, then the improved Treebank rules on each."""

from __future__ import annotations

import functools
from typing import NamedTuple

import regex

from checkers.text.counting import CACHE_SIZE
from checkers.text.punkt import split_sentences

# (pattern, replacement, needles): a rule can only match where one of its needles occurs in the current
# string (None: always tried), so a rule whose needles are all absent is skipped without changing anything.
_TB = regex.compile
_STARTING_QUOTES = (
    (_TB("([«“‘„]|[`]+)", regex.U), r" \1 ", ("«", "“", "‘", "„", "`")),
    (_TB(r"^\""), r"``", ('"',)),
    (_TB(r"(``)"), r" \1 ", ("``",)),
    (_TB(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` ", ('"', "''")),
    (_TB(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", regex.U), r"\1 ", ("'",)),
)
_PUNCTUATION = (
    (_TB(r"([^\.])(\.)([\]\)}>\"\'»”’ ]*+)\s*$", regex.U), r"\1 \2 \3 ", (".",)),
    (_TB(r"([:,])([^\d])"), r" \1 \2", (":", ",")),
    (_TB(r"([:,])$"), r" \1 ", (":", ",")),
    (_TB(r"\.{2,}", regex.U), r" \g<0> ", ("..",)),
    (_TB(r"[;@#$%&]"), r" \g<0> ", (";", "@", "#", "$", "%", "&")),
    (_TB(r"[\u2012-\u2015]", regex.U), r" \g<0> ", ("\u2012", "\u2013", "\u2014", "\u2015")),
    (_TB(r"([^\.])(\.)([\]\)}>\"\']*)\s*$"), r"\1 \2\3 ", (".",)),
    (_TB(r"[?!]"), r" \g<0> ", ("?", "!")),
    (_TB(r"([^'])' "), r"\1 ' ", ("' ",)),
    (_TB(r"[*]", regex.U), r" \g<0> ", ("*",)),
    (_TB(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ", ("]", "[", "(", ")", "{", "}", "<", ">")),
    (_TB(r"--"), r" -- ", ("--",)),
)
_ENDING_QUOTES = (
    (_TB("([»”’])", regex.U), r" \1 ", ("»", "”", "’")),
    (_TB(r"''"), " '' ", ("''",)),
    (_TB(r'"'), " '' ", ('"',)),
    (_TB(r"\s+"), " ", None),
    (_TB(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 ", ("'",)),
    (_TB(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 ", ("'",)),
)
# Case-insensitive: their needle (lower case) is looked for in the lower-cased string, and only for ASCII
# strings, where lower-casing is exactly the regex engine's case folding; other strings try every rule.
_CONTRACTIONS = tuple(
    (_TB(p), r" \1 \2 ", needle)
    for p, needle in (
        (r"(?i)\b(can)(?#X)(not)\b", "cannot"),
        (r"(?i)\b(d)(?#X)('ye)\b", "d'ye"),
        (r"(?i)\b(gim)(?#X)(me)\b", "gimme"),
        (r"(?i)\b(gon)(?#X)(na)\b", "gonna"),
        (r"(?i)\b(got)(?#X)(ta)\b", "gotta"),
        (r"(?i)\b(lem)(?#X)(me)\b", "lemme"),
        (r"(?i)\b(more)(?#X)('n)\b", "more'n"),
        (r"(?i)\b(wan)(?#X)(na)(?=\s)", "wanna"),
        (r"(?i) ('t)(?#X)(is)\b", " 'tis"),
        (r"(?i) ('t)(?#X)(was)\b", " 'twas"),
    )
)


class _Rule(NamedTuple):
    pattern: regex.Pattern[str]
    replacement: str
    needles: tuple[str, ...] | None  # the rule can only match where one of these occurs (None: always tried)
    firsts: frozenset[str]  # the needles' first characters, tested against the sentence's characters


def _gated(rules: tuple[tuple[regex.Pattern[str], str, tuple[str, ...] | None], ...]) -> tuple[_Rule, ...]:
    return tuple(_Rule(p, r, n, frozenset(x[0] for x in n or ())) for p, r, n in rules)


_STARTING_QUOTES_G, _PUNCTUATION_G, _ENDING_QUOTES_G = map(_gated, (_STARTING_QUOTES, _PUNCTUATION, _ENDING_QUOTES))
# Characters the rules themselves introduce (spaces, `` and '' quotes): with the sentence's own characters
# they bound what the string can contain while the rules run.
_INTRODUCED = frozenset(" `'")


def _apply(rules: tuple[_Rule, ...], s: str, chars: set[str]) -> str:
    for rule in rules:
        needles = rule.needles
        if needles is None or (not rule.firsts.isdisjoint(chars) and any(n in s for n in needles)):
            s = rule.pattern.sub(rule.replacement, s)
    return s


@functools.lru_cache(maxsize=CACHE_SIZE)
def _treebank(sentence: str) -> tuple[str, ...]:
    """Treebank tokens of one sentence (memoised: loose-mode variants share most sentences)."""
    chars = set(sentence) | _INTRODUCED
    s = _apply(_PUNCTUATION_G, _apply(_STARTING_QUOTES_G, sentence, chars), chars)
    s = _apply(_ENDING_QUOTES_G, " " + s + " ", chars)
    ascii_text = s.isascii()
    for pat, rep, needle in _CONTRACTIONS:
        if not ascii_text or needle in s.lower():
            s = pat.sub(rep, s)
    return tuple(s.split())


@functools.lru_cache(maxsize=CACHE_SIZE)
def word_tokens(text: str) -> tuple[str, ...]:
    """Word tokens as NLTK's ``word_tokenize(text)`` (English) returns them."""
    return tuple(t for sent in split_sentences(text) for t in _treebank(sent))

