"""Language-aware word and sentence counts, as Multi-IF (Meta, 2024) counts them, and the two length
checkers that use them.

Multi-IF keeps IFEval's instructions but counts words and sentences by the response's detected language
(langdetect, seeded here; undetectable text counts as English):

* sentences: Thai (``th``) sums PyThaiNLP's sentence tokenizer over the lines; Hindi (``hi``) counts the
  non-blank pieces after each ``।``, ``!`` or ``?``; Chinese/Japanese (``zh-cn``, ``zh-tw``, ``ja``) count,
  per line, the runs of text between ``!?。.！？．``; anything else is IFEval's count (NLTK Punkt, English).
* words: Thai counts PyThaiNLP's word tokens (whitespace tokens included, as the authors count them);
  Chinese/Japanese count every CJK ideograph, kana and Hangul syllable as a word, plus one per emoji, plus
  the whitespace-separated words left once those and a set of ASCII/CJK punctuation are removed; anything
  else is IFEval's ``\\w+`` count. That count keeps Devanagari vowel signs inside their word, as NLTK's
  ``RegexpTokenizer`` does today (it matches with the ``regex`` engine); NLTK releases that matched with
  ``re`` split Hindi words at each vowel sign ("हिन्दी भाषा में लिखिए" is 4 words here, 9 there), so Hindi
  word counts may be lower than the authors' if their NLTK was one of those.

Thai needs ``pythainlp`` (with ``python-crfsuite`` for its sentence tokenizer) and the CJK word count needs
``emoji``: ``pip install 'verinstruct[multilingual]'``. Without them those verdicts (and only those) are
undecided, saying what to install; other languages never need them.

Registered as ``multilingual:number_words`` / ``multilingual:number_sentences`` with IFEval's parameters, so
the RL reward can use them as well as the Multi-IF benchmark.

Two more of the authors' checkers differ from Google's IFEval, and have their own ids here so that IFEval's
stay exactly Google's:

* ``multilingual:quotation`` (Multi-IF's ``startend:quotation``): the stripped response may be wrapped in
  ``"…"``, ``“…”`` (Chinese, and curly quotes in any language) or ``「…」`` (Japanese).
* ``multilingual:keyword_frequency`` (Multi-IF's ``keywords:frequency``): a keyword that is not a valid regular
  expression (the data has ``*``) fails that one instruction, as the authors' ``try``/``except`` does, instead of
  rejecting the data file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from checkers import text
from checkers.base import Param, ParamError, Verdict
from checkers.registry import register

CJK_LANGS = frozenset({"zh", "zh-cn", "zh-tw", "ja"})
INSTALL_HINT = "pip install 'verinstruct[multilingual]'"


class MissingDependency(RuntimeError):
    """A language needs an optional package that is not installed (the verdict becomes undecided)."""


def language_of(response: str) -> str:
    """The detected language code, 'en' when undetectable (Multi-IF's fallback)."""
    return text.detect_language(response) or "en"


# ------------------------------------------------------------------------------------------- Thai


@functools.lru_cache(maxsize=1)
def _thai() -> tuple[Any, Any]:
    try:
        from pythainlp.tokenize import sent_tokenize, word_tokenize
    except ImportError as e:
        raise MissingDependency(f"Thai counting needs pythainlp ({e}); {INSTALL_HINT}") from None
    return sent_tokenize, word_tokenize


def thai_sentences(response: str) -> int:
    sent_tokenize = _thai()[0]
    try:
        return sum(len(sent_tokenize(line)) for line in response.splitlines())
    except ImportError as e:  # its default engine (crfcut) imports python-crfsuite on first use
        raise MissingDependency(f"Thai sentence splitting needs python-crfsuite ({e}); {INSTALL_HINT}") from None


def thai_words(response: str) -> int:
    return len(_thai()[1](response))


# ------------------------------------------------------------------------------------------- Hindi

_HINDI_PIECE = re.compile(r"[^।!?]*(?:[।!?]|$)")


def hindi_sentences(response: str) -> int:
    """Pieces ending at each danda / '!' / '?' (or the end) that hold more than whitespace."""
    return sum(1 for piece in _HINDI_PIECE.findall(response) if piece.strip())


# --------------------------------------------------------------------------------- Chinese / Japanese

_CJK_RUN = re.compile(r"[^!?。.！？．\n]+")
_CJK_CHAR = re.compile(r"[\u4E00-\u9FFF\u3400-\u4DBF\u3040-\u309F\u30A0-\u30FF\uAC00-\uD7AF]")
# the ASCII and CJK punctuation Multi-IF deletes before counting (deleting, not spacing: "a,b" is one word)
_CJK_PUNCT = re.compile(
    "[" + re.escape("\\.!?．/_,{}<>:;$%^&*(+\"'—！，。？、`~@#￥…（）：；《》“”()[]»〔〕-「」") + "]+"
)


def cjk_sentences(response: str) -> int:
    """Per line (stripped), the runs of text between sentence-ending marks."""
    return sum(len(_CJK_RUN.findall(line.strip())) for line in response.splitlines())


@functools.lru_cache(maxsize=1)
def _emoji() -> Any:
    try:
        import emoji
    except ImportError as e:
        raise MissingDependency(f"Chinese/Japanese word counting needs emoji ({e}); {INSTALL_HINT}") from None
    return emoji


def cjk_words(response: str) -> int:
    emoji = _emoji()
    rest = _CJK_PUNCT.sub("", response)
    n_emoji = emoji.emoji_count(rest)
    rest = emoji.replace_emoji(rest, "")
    n_chars = len(_CJK_CHAR.findall(rest))
    return n_chars + n_emoji + len(_CJK_CHAR.sub(" ", rest).split())


# ------------------------------------------------------------------------------------------- counts


def count_sentences(response: str, lang: str | None = None) -> int:
    lang = lang or language_of(response)
    if lang == "th":
        return thai_sentences(response)
    if lang == "hi":
        return hindi_sentences(response)
    if lang in CJK_LANGS:
        return cjk_sentences(response)
    return text.count_sentences(response)


def count_words(response: str, lang: str | None = None) -> int:
    lang = lang or language_of(response)
    if lang == "th":
        return thai_words(response)
    if lang in CJK_LANGS:
        return cjk_words(response)
    return text.count_words(response)


# ------------------------------------------------------------------------------------------ checkers

RELATIONS = ("less than", "at least")


def _relation() -> Param:
    return Param("relation", str, "comparison: 'less than' (count < N) or 'at least' (count >= N)",
                 choices=RELATIONS)


def _judge(count_fn: Any, response: str, n: int, relation: str, what: str) -> Verdict:
    lang = language_of(response)
    try:
        count = count_fn(response, lang)
    except MissingDependency as e:
        return Verdict.undecided(str(e))
    ok = count < n if relation == "less than" else count >= n
    return Verdict(ok, f"{count} {what} (language {lang!r}), need {relation} {n}")


@register(
    "multilingual:number_sentences",
    "Sentence count by the response's language (Multi-IF: Thai, Hindi, Chinese/Japanese rules; else Punkt "
    "English) is 'less than' / 'at least' N.",
    [Param("num_sentences", int, "the threshold N", min=0), _relation()],
    group="length_constraints",
)
def number_sentences(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    return _judge(count_sentences, response, params["num_sentences"], params["relation"], "sentences")


@register(
    "multilingual:number_words",
    "Word count by the response's language (Multi-IF: Thai tokens, CJK characters; else \\w+ runs) is "
    "'less than' / 'at least' N.",
    [Param("num_words", int, "the threshold N", min=0), _relation()],
    group="length_constraints",
)
def number_words(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    return _judge(count_words, response, params["num_words"], params["relation"], "words")


#: the (opening, closing) marks Multi-IF's ``startend:quotation`` accepts around the stripped response
QUOTES: tuple[tuple[str, str], ...] = (('"', '"'), ("\u201c", "\u201d"), ("\u300c", "\u300d"))


@register(
    "multilingual:quotation",
    "The whole response is wrapped in double quotation marks: \"...\", \u201c...\u201d or \u300c...\u300d "
    "(Multi-IF's startend:quotation).",
    [],
    group="startend",
)
def quotation(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    v = response.strip()
    for left, right in QUOTES:
        if len(v) > 1 and v[0] == left and v[-1] == right:
            return Verdict(True, f"wrapped in {left}{right}")
    return Verdict(False, "not wrapped in \"\", \u201c\u201d or \u300c\u300d")


def _v_keyword(p: Mapping[str, Any]) -> None:
    if not p["keyword"].strip():
        raise ParamError("multilingual:keyword_frequency", "keyword", "must be a non-empty string")


@register(
    "multilingual:keyword_frequency",
    "A keyword occurs 'less than' / 'at least' N times (case-insensitive regex count); a keyword that is not a "
    "valid regex fails (Multi-IF's keywords:frequency).",
    [
        Param("keyword", str, "the keyword, a regular expression (surrounding spaces are stripped)"),
        Param("frequency", int, "the threshold N", min=0),
        _relation(),
    ],
    group="keywords",
    check_params=_v_keyword,
)
def keyword_frequency(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    kw = params["keyword"].strip()
    try:
        n = len(re.findall(kw, response, flags=re.IGNORECASE))
    except re.error as e:
        return Verdict(False, f"keyword {kw!r} is not a valid regular expression ({e}); Multi-IF scores it False")
    n_needed = params["frequency"]
    ok = n < n_needed if params["relation"] == "less than" else n >= n_needed
    return Verdict(ok, f"{n} occurrences of {kw!r}, need {params['relation']} {n_needed}")
