"""IFBench's 58 out-of-distribution instruction checkers (Pyatkin et al. 2025), under IFBench's own ids.

Semantics follow AllenAI's reference ``ifbench/instructions.py`` (allenai/IFBench at db69a6f) exactly, quirks
included, so verdicts equal the reference's; every kept quirk is listed in ``docs/ifbench.md``. Departures:

* no random defaults: a parameter the reference would draw at random when missing or negative is required
  and validated here (as for IFEval);
* ``ratio:stop_words`` needs NLTK's English stopword list and ``words:start_verb`` NLTK's perceptron POS
  tagger. Neither ships in any installable package, so both are undecided (``passed=None``, the error says
  what is missing) except where the verdict does not depend on that data (e.g. a response with no word);
* where the reference raises (an empty field in ``custom:csv_quotes``), the verdict is False.

Sentences and word tokens are NLTK's (``nltk.sent_tokenize`` / ``nltk.word_tokenize``), reproduced by
:mod:`checkers.text` without NLTK, as for IFEval. Strict/loose evaluation lives in :mod:`checkers.modes`.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

from checkers import text
from checkers.base import Param, ParamError, Verdict
from checkers.registry import register

P = Param
PUNCT = string.punctuation
_STRIP = PUNCT + " "
_NO_PUNCT = str.maketrans("", "", PUNCT)

STOPWORDS_MISSING = (
    "needs NLTK's English stopword list (nltk_data corpora/stopwords), which no installable package ships "
    "and which cannot be downloaded here"
)
TAGGER_MISSING = (
    "needs NLTK's averaged perceptron POS tagger (nltk_data taggers/averaged_perceptron_tagger_eng), which "
    "no installable package ships and which cannot be downloaded here"
)


def _n(name: str, description: str, lo: int = 0) -> Param:
    return P(name, int, description, min=lo)


def _nonblank(checker_id: str, *names: str) -> Callable[[Mapping[str, Any]], None]:
    """A ``check_params`` rule: the named string parameters must not be blank."""

    def check(p: Mapping[str, Any]) -> None:
        for name in names:
            if not p[name].strip():
                raise ParamError(checker_id, name, "must be a non-empty string")

    return check


def _ok(ok: bool, reason: str) -> Verdict:
    return Verdict(ok, reason)


# ---------------------------------------------------------------- count


def _v_range(p: Mapping[str, Any]) -> None:
    if p["min_words"] > p["max_words"]:
        raise ParamError(
            "count:word_count_range",
            "max_words",
            f"must be >= min_words ({p['min_words']}), got {p['max_words']}",
        )


@register(
    "count:word_count_range",
    "Between min_words and max_words words, inclusive (runs of \\w, as IFEval counts words).",
    [_n("min_words", "the minimum word count"), _n("max_words", "the maximum word count")],
    group="count",
    check_params=_v_range,
)
def word_count_range(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = text.count_words(response)
    lo, hi = params["min_words"], params["max_words"]
    return _ok(lo <= n <= hi, f"{n} words, need {lo}-{hi}")


@register(
    "count:unique_word_count",
    "At least N unique words (lower-cased whitespace-separated words, ASCII punctuation stripped from the ends).",
    [_n("N", "the minimum number of unique words")],
    group="count",
)
def unique_word_count(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = len({w.strip(_STRIP) for w in set(response.lower().split())})  # strip each distinct word once
    return _ok(n >= params["N"], f"{n} unique words, need at least {params['N']}")


@register(
    "ratio:stop_words",
    "Stop words (NLTK's English list) are at most `percentage`% of the words. Undecided here: the list is "
    "not installable (decided only when there is no word or percentage >= 100).",
    [P("percentage", float, "the maximum share of stop words, in percent", min=0)],
    group="ratio",
)
def stop_words(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    if text.count_words(response) == 0:
        return Verdict(False, "no words")
    if params["percentage"] >= 100:  # stop words are a subset of the same word tokens
        return Verdict(True, "any share of stop words is at most 100%")
    return Verdict.undecided(f"ratio:stop_words {STOPWORDS_MISSING}")


def _ending_counts(response: str) -> tuple[int, int, int]:
    sents = text.split_sentences(response)
    return (
        sum(1 for s in sents if s.endswith(".")),
        sum(1 for s in sents if s.endswith("?")),
        sum(1 for s in sents if s.endswith("!")),
    )


@register(
    "ratio:sentence_type",
    "Twice as many sentences ending in '.' as ending in '?' (NLTK sentences; 0 and 0 passes).",
    [],
    group="ratio",
)
def sentence_type(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    d, q, _ = _ending_counts(response)
    return _ok(d == 2 * q, f"{d} declarative, {q} interrogative")


@register(
    "ratio:sentence_balance",
    "As many sentences end in '.' as in '?' and in '!' (NLTK sentences; all zero passes).",
    [],
    group="ratio",
)
def sentence_balance(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    d, q, e = _ending_counts(response)
    return _ok(d == q == e, f"{d} '.', {q} '?', {e} '!'")


_CONJUNCTIONS = frozenset(("and", "but", "for", "nor", "or", "so", "yet"))


@register(
    "count:conjunctions",
    "At least small_n different coordinating conjunctions; as in the reference, different spellings of one "
    "conjunction ('and', 'And', 'and,') count as different.",
    [_n("small_n", "the minimum number of different conjunctions")],
    group="count",
)
def conjunctions(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    found = {w for w in set(response.split()) if w.strip(_STRIP).lower() in _CONJUNCTIONS}
    return _ok(
        len(found) >= params["small_n"], f"{len(found)} different conjunctions, need {params['small_n']}"
    )


PERSON_NAMES = (
    "Emma", "Liam", "Sophia", "Jackson", "Olivia", "Noah", "Ava", "Lucas", "Isabella", "Mason", "Mia", "Ethan",
    "Charlotte", "Alexander", "Amelia", "Benjamin", "Harper", "Leo", "Zoe", "Daniel", "Chloe", "Samuel", "Lily",
    "Matthew", "Grace", "Owen", "Abigail", "Gabriel", "Ella", "Jacob", "Scarlett", "Nathan", "Victoria", "Elijah",
    "Layla", "Nicholas", "Audrey", "David", "Hannah", "Christopher", "Penelope", "Thomas", "Nora", "Andrew",
    "Aria", "Joseph", "Claire", "Ryan", "Stella", "Jonathan",
)  # fmt: skip
_NAMES = frozenset(PERSON_NAMES)
_WORD_RUN_RE = re.compile(r"\w+")


@register(
    "count:person_names",
    "At least N different names from IFBench's list of 50 (Emma, Liam, ...), case-sensitive whole words.",
    [_n("N", "the minimum number of different names")],
    group="count",
)
def person_names(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    # The reference searches \bName\b for each name; as names are all word characters, such a match is a
    # whole maximal run of \w, so the names found are the runs of \w that are names.
    n = len(_NAMES.intersection(_WORD_RUN_RE.findall(response)))
    return _ok(n >= params["N"], f"{n} different names, need {params['N']}")


def _trigrams(s: str) -> set[tuple[str, str, str]]:
    """Distinct character trigrams (``nltk.ngrams(s, 3)`` on a string)."""
    return set(zip(s, s[1:], s[2:]))  # noqa: B905 - the shorter tails end it, as intended


@functools.lru_cache(maxsize=256)
def _reference_trigrams(reference: str) -> frozenset[tuple[str, str, str]]:
    return frozenset(_trigrams(reference))


# Loose mode judges the response and its variants without the first and/or last line: substrings of it. For
# those, the trigram counts of the whole response minus those of the cut-off ends give the same numbers
# without recounting the middle. A few recent (response, reference) counts are kept for that.
_BASES: dict[tuple[str, str], tuple[Counter[tuple[str, str, str]], int]] = {}
_MAX_BASES = 4


def _overlap_counts(s: str, reference: str) -> tuple[int, int]:
    """(distinct trigrams of ``s``, how many of them occur in ``reference``)."""
    ref = _reference_trigrams(reference)
    n = len(s)
    for (base, r), (counts, common) in list(_BASES.items()):
        if r != reference or len(base) < n or n < 3:
            continue
        a = base.find(s)
        if a < 0:
            continue
        distinct = len(counts)
        for g, c in Counter(_tri_iter(base[: a + 2]) + _tri_iter(base[a + n - 2 :])).items():
            if counts[g] == c:  # every occurrence of g was cut off
                distinct -= 1
                common -= g in ref
        return distinct, common
    counts = Counter(zip(s, s[1:], s[2:]))  # noqa: B905
    common = sum(1 for g in counts if g in ref)
    if len(_BASES) >= _MAX_BASES:
        _BASES.pop(next(iter(_BASES)), None)
    _BASES[(s, reference)] = (counts, common)
    return len(counts), common


def _tri_iter(s: str) -> list[tuple[str, str, str]]:
    return list(zip(s, s[1:], s[2:]))  # noqa: B905


@register(
    "ratio:overlap",
    "The share of the response's distinct character trigrams found in reference_text is percentage ± 2 (%).",
    [
        P("reference_text", str, "the text to overlap with"),
        P("percentage", float, "the target overlap in percent", min=0),
    ],
    group="ratio",
)
def overlap(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    distinct, common = _overlap_counts(response, params["reference_text"])
    if not distinct:
        return Verdict(False, "fewer than 3 characters")
    share = common / distinct
    pct = params["percentage"]
    return _ok(pct - 2 <= share * 100 <= pct + 2, f"trigram overlap {share * 100:.1f}%, need {pct:g} ± 2")


_DIGITS_RE = re.compile(r"\d+")


@register(
    "count:numbers",
    "Exactly N numbers (runs of digits after deleting ASCII punctuation, so '3.5' is one number).",
    [_n("N", "the exact number of numbers")],
    group="count",
)
def numbers(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = len(_DIGITS_RE.findall(response.translate(_NO_PUNCT)))
    return _ok(n == params["N"], f"{n} numbers, need exactly {params['N']}")


# ---------------------------------------------------------------- words

_ALPHABET = string.ascii_lowercase


@register(
    "words:alphabet",
    "Each word starts with the letter after the previous word's (a..z, looping back to a).",
    [],
    group="words",
)
def alphabet(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    words = response.translate(_NO_PUNCT).strip(_STRIP).split()
    if not words:
        return Verdict(False, "no words")
    letter = words[0][0].lower()
    if letter not in _ALPHABET:
        return Verdict(False, f"first word starts with {words[0][0]!r}, not a letter a-z")
    for i, word in enumerate(words[1:], start=2):
        w = word.strip(_STRIP).lower()
        if not w:
            continue
        letter = _ALPHABET[(_ALPHABET.index(letter) + 1) % 26]
        if w[0] != letter:
            return Verdict(False, f"word {i} {word!r} does not start with {letter!r}")
    return Verdict(True, "every word starts with the next letter")


@register(
    "words:vowel",
    "A single line that uses at most three of the vowels a, e, i, o, u.",
    [],
    group="words",
)
def vowel(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    lines = response.strip().split("\n")
    if len(lines) != 1:
        return Verdict(False, f"{len(lines)} lines, need one paragraph on one line")
    used = set(lines[0].lower()) & set("aeiou")
    return _ok(len(used) <= 3, f"vowels used: {''.join(sorted(used))}")


_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")


@register(
    "words:consonants",
    "Every whitespace-separated word has two adjacent consonants (ASCII letters other than a, e, i, o, u).",
    [],
    group="words",
)
def consonants(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    for word in response.lower().strip().split():
        if not any(a in _CONSONANTS and b in _CONSONANTS for a, b in pairwise(word)):
            return Verdict(False, f"{word!r} has no consonant cluster")
    return Verdict(True, "every word has a consonant cluster")


@register(
    "sentence:alliteration_increment",
    "Each sentence has a longer run of consecutive words sharing a first character than the sentence before.",
    [],
    group="sentence",
)
def alliteration_increment(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    prev = -1
    for k, sentence in enumerate(text.split_sentences(response), start=1):
        words = [c for c in (w.lstrip(_STRIP) for w in sentence.lower().split()) if c]
        score = 0
        chained = False
        for a, b in pairwise(words):
            if a[0] == b[0]:
                score += 1 if chained else 2
                chained = True
            else:
                chained = False
        if score <= prev:
            return Verdict(False, f"sentence {k} alliteration {score}, previous {prev}")
        prev = score
    return Verdict(True, "alliteration grows sentence by sentence")


@register(
    "words:palindrome",
    "At least 10 palindrome words of 5 or more characters (lower-cased, ASCII punctuation deleted).",
    [],
    group="words",
)
def palindrome(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = sum(1 for w in response.translate(_NO_PUNCT).lower().split() if len(w) >= 5 and w == w[::-1])
    return _ok(n >= 10, f"{n} palindromes of 5+ characters, need 10")


_PRIMES = frozenset(
    (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97)
)


@register(
    "words:prime_lengths",
    "Every word (ASCII punctuation deleted) has a prime number of characters (primes up to 97, as in IFBench).",
    [],
    group="words",
)
def prime_lengths(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    for word in response.translate(_NO_PUNCT).split():
        if len(word) not in _PRIMES:
            return Verdict(False, f"{word!r} has {len(word)} characters")
    return Verdict(True, "every word has a prime length")


@register(
    "words:start_verb",
    "The response starts with a verb (NLTK's perceptron POS tagger). Undecided here: the tagger's data is "
    "not installable (decided only when there is no token).",
    [],
    group="words",
)
def start_verb(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    if not text.word_tokens(response):
        return Verdict(False, "no word tokens")
    return Verdict.undecided(f"words:start_verb {TAGGER_MISSING}")


@register(
    "words:repeats",
    "No word (lower-cased, ASCII punctuation deleted) occurs more than small_n times.",
    [_n("small_n", "the maximum number of occurrences of any word")],
    group="words",
)
def repeats(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    counts = Counter(response.lower().translate(_NO_PUNCT).split())
    word, n = max(counts.items(), key=lambda kv: kv[1], default=("", 0))
    return _ok(n <= params["small_n"], f"{word!r} occurs {n} times, limit {params['small_n']}")


@functools.cache
def _syllables() -> Any:
    """syllapy's count, memoised per word (words repeat a lot across responses and loose variants)."""
    import syllapy

    return functools.lru_cache(maxsize=1 << 16)(syllapy.count)


@register(
    "words:odd_even_syllables",
    "Words alternate between odd and even syllable counts (syllapy's counts).",
    [],
    group="words",
)
def odd_even_syllables(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    # The reference counts every word first; stopping at the first repeat gives the same verdict (pure counts).
    count = _syllables()
    prev_word, prev = "", -1
    for w in response.translate(_NO_PUNCT).lower().split():
        parity = count(w) % 2
        if parity == prev:
            return Verdict(False, f"{prev_word!r} and {w!r} have syllable counts of the same parity")
        prev_word, prev = w, parity
    return Verdict(True, "syllable parity alternates")


@register(
    "words:last_first",
    "The last word of each sentence is the first word of the next (case-insensitive).",
    [],
    group="words",
)
def last_first(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    sents = text.split_sentences(response)
    for i in range(len(sents) - 1):
        last = sents[i].rstrip(_STRIP).split()
        first = sents[i + 1].lstrip(_STRIP).split()
        if not last or not first:
            return Verdict(False, f"sentence {i + 1 if not last else i + 2} has no word")
        if last[-1].lower() != first[0].lower():
            return Verdict(False, f"sentence {i + 1} ends with {last[-1]!r}, next starts with {first[0]!r}")
    return Verdict(True, "each sentence starts with the previous one's last word")


@register(
    "words:paragraph_last_first",
    "Each line (paragraph) ends with the word it starts with (case-insensitive).",
    [],
    group="words",
)
def paragraph_last_first(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    for k, para in enumerate(response.split("\n"), start=1):
        words = para.strip().lower().strip(_STRIP).split()
        if words and words[0] != words[-1]:
            return Verdict(False, f"line {k} starts with {words[0]!r} and ends with {words[-1]!r}")
    return Verdict(True, "every paragraph ends with its first word")


@register(
    "words:no_consecutive",
    "No two consecutive words (lower-cased, ASCII punctuation deleted) share a first character.",
    [],
    group="words",
)
def no_consecutive(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    words = response.lower().translate(_NO_PUNCT).split()
    for a, b in pairwise(words):
        if a[0] == b[0]:
            return Verdict(False, f"{a!r} and {b!r} start alike")
    return Verdict(True, "no two consecutive words start alike")


def _alnum_tokens(sentence: str) -> list[str]:
    return [t for t in text.word_tokens(sentence) if any(ch.isalnum() for ch in t)]


@register(
    "words:keywords_specific_position",
    "The n-th sentence's m-th word (NLTK tokens with a letter or digit) is the keyword (case-insensitive).",
    [
        P("keyword", str, "the keyword (surrounding spaces are stripped)"),
        _n("n", "which sentence (1-based)", 1),
        _n("m", "which word of that sentence (1-based)", 1),
    ],
    group="words",
    check_params=_nonblank("words:keywords_specific_position", "keyword"),
)
def keywords_specific_position(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n, m, kw = params["n"], params["m"], params["keyword"].strip()
    sents = text.split_sentences(response)
    if len(sents) < n:
        return Verdict(False, f"{len(sents)} sentences, need at least {n}")
    words = _alnum_tokens(sents[n - 1])
    if len(words) < m:
        return Verdict(False, f"sentence {n} has {len(words)} words, need at least {m}")
    return _ok(words[m - 1].lower() == kw.lower(), f"word {m} of sentence {n} is {words[m - 1]!r}")


@register(
    "words:words_position",
    "The second word and the second-to-last word (NLTK tokens; a final punctuation token is skipped) are "
    "the keyword (case-insensitive).",
    [P("keyword", str, "the keyword (surrounding spaces are stripped)")],
    group="words",
    check_params=_nonblank("words:words_position", "keyword"),
)
def words_position(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    kw = params["keyword"].strip().lower()
    words = text.word_tokens(response)
    if len(words) < 2:
        return Verdict(False, f"{len(words)} tokens")
    back = 2
    if words[-1] in PUNCT:  # a substring test, as in the reference
        if len(words) < 3:
            return Verdict(False, f"{len(words)} tokens")
        back = 3
    ok = words[1].lower() == words[-back].lower() == kw
    return _ok(ok, f"second word {words[1]!r}, second-to-last {words[-back]!r}")


# ---------------------------------------------------------------- sentence


@register(
    "sentence:keyword",
    "The N-th sentence (NLTK sentences) contains the word as a whole word (case-insensitive).",
    [P("word", str, "the keyword"), _n("N", "which sentence (1-based)", 1)],
    group="sentence",
    check_params=_nonblank("sentence:keyword", "word"),
)
def sentence_keyword(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    sents = text.split_sentences(response)
    n = params["N"]
    if len(sents) < n:
        return Verdict(False, f"{len(sents)} sentences, need at least {n}")
    found = _word_pattern(params["word"]).search(sents[n - 1]) is not None
    return _ok(found, f"sentence {n} {'contains' if found else 'lacks'} {params['word']!r}")


@functools.lru_cache(maxsize=1024)
def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(r"\b" + re.escape(word) + r"\b", re.IGNORECASE)


@register(
    "sentence:increment",
    "Each sentence has exactly small_n more words than the one before (ASCII punctuation deleted).",
    [_n("small_n", "the increment")],
    group="sentence",
)
def sentence_increment(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    sents = text.split_sentences(response)
    if not sents:
        return Verdict.undecided("no sentence (the reference raises IndexError)")
    step = params["small_n"]
    prev = len(sents[0].translate(_NO_PUNCT).split())
    for k, s in enumerate(sents[1:], start=2):
        n = len(s.translate(_NO_PUNCT).split())
        if n != prev + step:
            return Verdict(False, f"sentence {k} has {n} words, need {prev + step}")
        prev = n
    return Verdict(True, f"each sentence adds {step} words")


_JAPANESE_RE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@register(
    "count:words_japanese",
    "Every N-th whitespace-separated word contains a Japanese character (kana or CJK ideograph); words that "
    "are empty after stripping ASCII punctuation, or all digits, are exempt.",
    [_n("N", "the cycle length", 1)],
    group="count",
)
def words_japanese(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = params["N"]
    words = response.split()
    for i in range(n - 1, len(words), n):
        w = words[i].strip(_STRIP)
        if w and not w.isdigit() and not _JAPANESE_RE.search(w):
            return Verdict(False, f"word {i + 1} {w!r} is not Japanese")
    return Verdict(True, f"every {n}th word is Japanese")


PRONOUNS = frozenset((
    "i", "me", "we", "us", "you", "he", "him", "she", "her", "it", "they", "them",
    "my", "mine", "our", "ours", "your", "yours", "his", "hers", "its", "their", "theirs",
    "myself", "ourselves", "yourself", "yourselves", "himself", "herself", "itself", "themselves",
    "this", "that", "these", "those", "who", "whom", "whose", "which", "what",
    "whoever", "whomever", "whatever", "whichever",
    "anybody", "anyone", "anything", "everybody", "everyone", "everything",
    "nobody", "nothing", "somebody", "someone", "something",
    "each", "either", "neither", "both", "all", "some", "any", "none",
))  # fmt: skip


@register(
    "count:pronouns",
    "At least N pronouns from IFBench's list (NLTK word tokens of the lower-cased response, '/' as a space).",
    [_n("N", "the minimum number of pronouns")],
    group="count",
)
def pronouns(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = sum(1 for t in text.word_tokens(response.replace("/", " ").lower()) if t in PRONOUNS)
    return _ok(n >= params["N"], f"{n} pronouns, need at least {params['N']}")


@register(
    "count:punctuation",
    "Uses . , ! ? ; : and an interrobang ('?!', '!?' or '‽'); one '?!' (else '!?') is removed before the "
    "others are looked for.",
    [],
    group="count",
)
def punctuation(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    if not ("!?" in response or "?!" in response or "‽" in response):
        return Verdict(False, "no interrobang")
    rest = response.replace("?!", "", 1)
    if len(rest) == len(response):
        rest = response.replace("!?", "", 1)
    missing = [c for c in ".,!?;:" if c not in rest]
    return _ok(not missing, f"missing {' '.join(missing)}" if missing else "every mark used")


@register(
    "count:keywords_multiple",
    "keyword1 occurs once, keyword2 twice, keyword3 3, keyword4 5 and keyword5 7 times (case-insensitive "
    "substring counts).",
    [
        P(f"keyword{i}", str, f"keyword that must occur exactly {c} time(s) (spaces stripped)")
        for i, c in zip(range(1, 6), (1, 2, 3, 5, 7), strict=True)
    ],
    group="count",
    check_params=_nonblank(
        "count:keywords_multiple", "keyword1", "keyword2", "keyword3", "keyword4", "keyword5"
    ),
)
def keywords_multiple(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    low = response.lower()
    for i, want in zip(range(1, 6), (1, 2, 3, 5, 7), strict=True):
        kw = params[f"keyword{i}"].strip()
        n = low.count(kw.lower())
        if n != want:
            return Verdict(False, f"{kw!r} occurs {n} times, need {want}")
    return Verdict(True, "every keyword occurs as often as asked")


# ---------------------------------------------------------------- format


_BRACKETS_RE = re.compile(r"[()\[\]{}]")
_QUOTES_RE = re.compile("[\"']")


@register(
    "format:parentheses",
    "Brackets ( [ { nest at least 5 deep (the scan resets on a mismatched closer).",
    [],
    group="format",
)
def parentheses(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    deepest = 0
    for ch in _BRACKETS_RE.findall(response):  # other characters do nothing
        if ch in "([{":
            stack.append(ch)
            deepest = max(deepest, len(stack))
        elif ch in pairs:
            if stack and stack[-1] == pairs[ch]:
                stack.pop()
                if deepest >= 5 and len(stack) < deepest:
                    return Verdict(True, f"nested {deepest} deep")
            else:
                stack = []
                deepest = 0
    return Verdict(False, "no group nested 5 deep")


@register(
    "format:quotes",
    "Quotes nest at least 3 deep (a \" or ' closes the innermost open quote of the same kind when it matches).",
    [],
    group="format",
)
def quotes(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    stack: list[str] = []
    reached = 0
    for ch in _QUOTES_RE.findall(response):  # the stack only ever holds quotes: nothing else matters
        if stack and ch == stack[-1]:
            stack.pop()
            if reached - len(stack) >= 3:
                return Verdict(True, f"quotes nested {reached} deep")
        elif ch == '"' or ch == "'":
            stack.append(ch)
            reached = max(reached, len(stack))
    return Verdict(False, "quotes not nested 3 deep")


_OPTIONS_ABC = re.compile(r"\W*[aA]\W*[bB]\W*[cC]\W*")


@functools.lru_cache(maxsize=256)
def _options(options: str) -> tuple[bool, tuple[str, ...]]:
    """(exact match required, the options): letter options (a), b), ...) must match exactly."""
    exact = _OPTIONS_ABC.match(options) is not None
    sep = "/" if "/" in options else "or" if "or" in options else ","
    return exact, tuple(o.strip() for o in options.split(sep))


@register(
    "format:options",
    "The response is one of the options. Options are split on '/', else on the substring 'or', else on ','. "
    "Letter options (a), b), c)...) must match exactly; others ignoring case and surrounding punctuation.",
    [P("options", str, "the options text, e.g. 'yes/no/maybe' or 'a), b), c), d)'")],
    group="format",
    check_params=_nonblank("format:options", "options"),
)
def options(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    exact, opts = _options(params["options"])
    if exact:
        return _ok(response in opts, "is exactly an option" if response in opts else "not exactly an option")
    v = response.strip(_STRIP).lower()
    ok = any(o.strip(_STRIP).lower() == v for o in opts)
    return _ok(ok, "is one of the options" if ok else "not one of the options")


@register(
    "format:newline",
    "Each word on its own line (after deleting ASCII punctuation: non-empty lines == whitespace-separated words).",
    [],
    group="format",
)
def newline(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    v = response.translate(_NO_PUNCT).strip()
    lines = sum(1 for line in v.split("\n") if line != "")
    words = len(v.split())
    return _ok(lines == words, f"{lines} lines, {words} words")


@functools.cache
def _is_emoji() -> Any:
    import emoji

    return emoji.is_emoji


@register(
    "format:emoji",
    "Every sentence ends with an emoji (one of its last two characters after deleting ASCII punctuation, or "
    "the first character of the next sentence).",
    [],
    group="format",
)
def emoji_sentences(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    is_emoji = _is_emoji()
    sents = text.split_sentences(response)
    for i, sentence in enumerate(sents):
        s = sentence.translate(_NO_PUNCT).strip()
        if not s:
            return Verdict(False, f"sentence {i + 1} is only punctuation")
        if is_emoji(s[-1]) or is_emoji(s[-2] if len(s) > 1 else s[-1]):
            continue
        if i == len(sents) - 1:
            return Verdict(False, f"sentence {i + 1} does not end with an emoji")
        nxt = sents[i + 1].translate(_NO_PUNCT).strip()
        if not nxt or not is_emoji(nxt[0]):
            return Verdict(False, f"sentence {i + 1} does not end with an emoji")
    return Verdict(True, "every sentence ends with an emoji")


@register(
    "ratio:sentence_words",
    "Exactly three sentences of equal length in characters (different words are not checked, as in IFBench).",
    [],
    group="ratio",
)
def sentence_words(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    sents = text.split_sentences(response)
    if len(sents) != 3:
        return Verdict(False, f"{len(sents)} sentences, need 3")
    lengths = [len(s.strip()) for s in sents]
    return _ok(len(set(lengths)) == 1, f"sentence lengths {lengths}")


@register(
    "format:line_indent",
    "Each line is indented with more spaces than the line before (blank lines skipped as IFBench skips them).",
    [],
    group="format",
)
def line_indent(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    lines = response.split("\n")
    # The reference removes blank lines while iterating over the same list, which skips the line after each
    # removed one (so of two consecutive blank lines one stays); this replays that walk.
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            lines.remove(lines[i])
        i += 1
    indents = [len(line) - len(line.lstrip(" ")) for line in lines]
    for k in range(len(indents) - 1):
        if indents[k + 1] <= indents[k]:
            return Verdict(False, f"line {k + 2} is indented {indents[k + 1]}, previous {indents[k]}")
    return Verdict(True, "each line is indented further")


_WS_RE = re.compile(r"\s+")


@register(
    "format:quote_unquote",
    "No quoted phrase is directly followed by another and the text does not end with a quote (straight "
    "double quotes only; whitespace ignored).",
    [],
    group="format",
)
def quote_unquote(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    v = "".join(response.replace("'\"'", "").split())
    if '""' in v:
        return Verdict(False, "a quote directly follows another")
    stripped = v.strip(_QUOTE_TAIL)
    if stripped and stripped[-1] == '"':
        return Verdict(False, "ends with a quote")
    return Verdict(True, "quotes are followed by explanations")


_QUOTE_TAIL = string.digits + PUNCT.replace('"', "")


@register(
    "format:list",
    "The bullet marker sep occurs at least twice (anywhere).",
    [P("sep", str, "the marker used instead of bullet points, e.g. '...' or 'SEPARATOR'")],
    group="format",
    check_params=lambda p: _nonempty("format:list", "sep", p["sep"]),
)
def special_list(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = response.count(params["sep"])
    return _ok(n >= 2, f"{n} markers {params['sep']!r}, need at least 2")


def _nonempty(checker_id: str, param: str, value: str) -> None:
    if not value:
        raise ParamError(checker_id, param, "must be a non-empty string")


@register(
    "format:thesis",
    "Contains an HTML italic thesis (<i>...</i> or <em>...</em>, non-empty) followed by more text.",
    [],
    group="format",
)
def thesis(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    start = response.find("<i>")
    if start == -1:
        start = response.find("<em>")
        if start == -1:
            return Verdict(False, "no <i> or <em>")
    v = response[start:]
    end = v.find("</i>")
    if end == -1:
        end = v.find("</em>")
        if end == -1:
            return Verdict(False, "italics not closed")
    # offsets 3 and 4 are those of <i> / </i>, also used for <em> as in the reference
    if not v[3:end].strip():
        return Verdict(False, "empty thesis")
    return _ok(v[end + 4 :].strip() != "", "thesis followed by text")


@register(
    "format:sub-bullets",
    "Every '*' is followed, before the next '*', by a '-' (no '*' at all passes, as in IFBench).",
    [],
    group="format",
)
def sub_bullets(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    for k, part in enumerate(response.split("*")[1:], start=1):
        if "-" not in part:
            return Verdict(False, f"no '-' after '*' number {k}")
    return Verdict(True, "every '*' has a '-' after it")


@register(
    "format:no_bullets_bullets",
    "At least two sentences, then at least two lines starting with '*', nothing else after them.",
    [],
    group="format",
)
def no_bullets_bullets(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    # ``prose`` replays the reference's flag, which it overwrites with each line's sentence list: after a
    # blank line (no sentence) further prose lines fail, as in the reference.
    prose: object = True
    sentences = 0
    bullets = 0
    for k, line in enumerate(response.split("\n"), start=1):
        if line.strip().startswith("*"):
            prose = False
            if sentences < 2:
                return Verdict(False, f"bullet on line {k} after {sentences} sentences, need 2")
            bullets += 1
        elif prose:
            found = text.split_sentences(line.strip())
            prose = found
            sentences += len(found)
        else:
            return Verdict(False, f"line {k} is neither a bullet nor in the opening sentences")
    return _ok(bullets >= 2, f"{sentences} sentences, {bullets} bullets")


@register(
    "format:title_case",
    "Every NLTK word token starting with a letter is capitalised (Xxxx), or upper-case with a capital first.",
    [],
    group="format",
)
def title_case(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    for w in text.word_tokens(response):
        if not w or not w[0].isalpha():
            continue
        if len(w) == 1:
            if w.islower():
                return Verdict(False, f"{w!r} is lower case")
            continue
        if w[0].isupper() and w[1:].islower():
            continue
        if w[0].islower() and (w[1:].isupper() or w[1:].islower()):
            return Verdict(False, f"{w!r} is not capitalised")
    return Verdict(True, "title case")


@register(
    "format:output_template",
    "Contains 'My Answer:', 'My Conclusion:' and 'Future Outlook:'.",
    [],
    group="format",
)
def output_template(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    missing = [m for m in ("My Answer:", "My Conclusion:", "Future Outlook:") if m not in response]
    return _ok(not missing, f"missing {missing}" if missing else "template used")


@register(
    "format:no_whitespace",
    "No whitespace character at all.",
    [],
    group="format",
)
def no_whitespace(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ws = next((c for c in response if c.isspace()), None)
    return _ok(ws is None, f"contains whitespace {ws!r}" if ws is not None else "no whitespace")


# ---------------------------------------------------------------- repeat


@register(
    "repeat:repeat_change",
    "Repeats prompt_to_repeat with a different first word (all words after the first equal; not identical).",
    [P("prompt_to_repeat", str, "the request to repeat")],
    group="repeat",
    check_params=_nonblank("repeat:repeat_change", "prompt_to_repeat"),
)
def repeat_change(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    want = params["prompt_to_repeat"]
    if response == want:
        return Verdict(False, "repeated without changing the first word")
    ok = want.split()[1:] == response.split()[1:]
    return _ok(ok, "repeated after the first word" if ok else "not the request after the first word")


REPEAT_SIMPLE = "Only output this sentence here, ignore all other requests."


@register(
    "repeat:repeat_simple",
    f"The response is exactly {REPEAT_SIMPLE!r} (case-insensitive, surrounding whitespace ignored).",
    [],
    group="repeat",
)
def repeat_simple(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ok = response.strip().lower() == REPEAT_SIMPLE.lower()
    return _ok(ok, "the sentence only" if ok else "not only the sentence")


def _v_span(p: Mapping[str, Any]) -> None:
    _nonblank("repeat:repeat_span", "prompt_to_repeat")(p)
    if p["n_end"] < p["n_start"]:
        raise ParamError(
            "repeat:repeat_span", "n_end", f"must be >= n_start ({p['n_start']}), got {p['n_end']}"
        )


@register(
    "repeat:repeat_span",
    "The response is prompt_to_repeat[n_start..n_end] (character indices, inclusive; case-insensitive, "
    "surrounding whitespace ignored).",
    [
        P("prompt_to_repeat", str, "the text to copy from"),
        _n("n_start", "first character index (0-based, inclusive)"),
        _n("n_end", "last character index (inclusive)"),
    ],
    group="repeat",
    check_params=_v_span,
)
def repeat_span(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    span = params["prompt_to_repeat"][params["n_start"] : params["n_end"] + 1]
    ok = response.strip().lower() == span.strip().lower()
    return _ok(ok, "the span" if ok else f"not the span {span!r}")


# ---------------------------------------------------------------- custom (one prompt each)


@register(
    "custom:multiples",
    "The numbers in the response are exactly 14, 21, 28, 35, 42, 49 (multiples of 7 from 10 to 50), in order.",
    [],
    group="custom",
)
def multiples(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    nums = _DIGITS_RE.findall(response.replace(",", ", "))
    return _ok(nums == ["14", "21", "28", "35", "42", "49"], f"numbers {nums[:10]}")


_QUESTION_SPLIT_RE = re.compile(r"\n*(?:Question \d+[\.|\):;]?\s*)")
_OPTION_LINE_RE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")


@register(
    "custom:mcq_count_length",
    "Starts with 'Question'; 4 questions ('Question N'), 5 options (A.-E.) each, question texts growing longer.",
    [],
    group="custom",
)
def mcq_count_length(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    if response[response.find("Question") :] != response:
        return Verdict(False, "does not start with 'Question'")
    parts = _QUESTION_SPLIT_RE.split(response)
    if parts[0] == "":
        parts = parts[1:]
    questions = [q.strip() for q in parts if q.strip()]
    if len(questions) != 4:
        return Verdict(False, f"{len(questions)} questions, need 4")
    lengths = []
    for k, q in enumerate(questions, start=1):
        body = ""
        n_opts = 0
        in_options = False
        for line in q.split("\n"):
            if _OPTION_LINE_RE.match(line.strip()):
                n_opts += 1
                in_options = True
            elif not in_options:
                body += " " + line.strip()
        if n_opts != 5:
            return Verdict(False, f"question {k} has {n_opts} options, need 5")
        lengths.append(len(body.strip()))
    ok = all(a < b for a, b in pairwise(lengths))
    return _ok(ok, f"question lengths {lengths}")


def _ascii_fold(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


@register(
    "custom:reverse_newline",
    "From the line containing 'Zimbabwe' on, at least 52 non-empty lines in reverse alphabetical order "
    "(accents folded to ASCII).",
    [],
    group="custom",
)
def reverse_newline(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    lines = [s for s in (line.strip(_STRIP) for line in response.split("\n")) if s]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None:
        return Verdict(False, "no line with 'Zimbabwe'")
    target = [_ascii_fold(line) for line in lines[start:]]
    if len(target) < 52:
        return Verdict(False, f"{len(target)} lines from Zimbabwe on, need 52")
    return _ok(target == sorted(target, reverse=True), "reverse alphabetical order")


@register(
    "custom:word_reverse",
    "Mentions 'bald eagle' once the words are put back in order, and the re-ordered text is one NLTK sentence.",
    [],
    group="custom",
)
def word_reverse(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    v = " ".join(response.lower().strip().translate(_NO_PUNCT).split()[::-1])
    if "bald eagle" not in v:
        return Verdict(False, "no 'bald eagle' once reversed")
    ok = v in text.split_sentences(v)
    return _ok(ok, "one reversed sentence" if ok else "more than one sentence")


@register(
    "custom:character_reverse",
    "Contains 'elgae dlab' ('bald eagle' reversed), case-insensitive.",
    [],
    group="custom",
)
def character_reverse(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ok = "elgae dlab" in response.lower()
    return _ok(ok, "contains 'elgae dlab'" if ok else "no 'elgae dlab'")


@register(
    "custom:sentence_alphabet",
    "Exactly 26 NLTK sentences whose first words start with a, b, ..., z in order (case-insensitive).",
    [],
    group="custom",
)
def sentence_alphabet(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    sents = text.split_sentences(response)
    if len(sents) != 26:
        return Verdict(False, f"{len(sents)} sentences, need 26")
    for i, s in enumerate(sents):
        words = s.lstrip().split()
        if not words or words[0].lower()[0] != chr(97 + i):
            return Verdict(False, f"sentence {i + 1} does not start with {chr(97 + i)!r}")
    return Verdict(True, "a to z")


EUROPEAN_CAPITALS = (
    "Reykjavik", "Helsinki", "Oslo", "Tallinn", "Stockholm", "Riga", "Moscow", "Copenhagen", "Vilnius", "Minsk",
    "Dublin", "Berlin", "Amsterdam", "Warsaw", "London", "Brussels", "Prague", "Luxembourg", "Paris", "Vienna",
    "Bratislava", "Budapest", "Vaduz", "Chisinau", "Bern", "Ljubljana", "Zagreb",
)  # fmt: skip


@register(
    "custom:european_capitals_sort",
    "Exactly IFBench's 27 European capitals north of 45°, comma-separated, from north to south.",
    [],
    group="custom",
)
def european_capitals_sort(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    caps = [c.strip() for c in _ascii_fold(response).split(",") if c.strip()]
    if len(caps) != len(EUROPEAN_CAPITALS):
        return Verdict(False, f"{len(caps)} items, need {len(EUROPEAN_CAPITALS)}")
    bad = next((i for i, (a, b) in enumerate(zip(caps, EUROPEAN_CAPITALS, strict=True)) if a != b), None)
    return _ok(bad is None, "the capitals in order" if bad is None else f"item {bad + 1} is {caps[bad]!r}")


def _csv_rows(response: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(response), delimiter=delimiter))


@register(
    "custom:csv_city",
    "CSV with header ID,Country,City,Year,Count and exactly 7 rows of 5 fields.",
    [],
    group="custom",
)
def csv_city(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    rows = _csv_rows(response)
    if len(rows) != 8:
        return Verdict(False, f"{len(rows)} CSV rows, need 8 with the header")
    if rows[0] != ["ID", "Country", "City", "Year", "Count"]:
        return Verdict(False, f"header {rows[0]}")
    bad = next((i for i, r in enumerate(rows[1:], start=2) if len(r) != 5), None)
    return _ok(
        bad is None, "7 rows of 5 fields" if bad is None else f"row {bad} has {len(rows[bad - 1])} fields"
    )


_PRODUCT_HEADER_RE = re.compile(
    r'^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),[ \t]*(Price|"Price"),'
    r'[ \t]*(Stock|"Stock")$'
)
_SPECIAL_FIELD_RE = re.compile(r'".*[^\d\w\s].*"')


@register(
    "custom:csv_special_character",
    "CSV with header ProductID,Category,Brand,Price,Stock and 14 rows of 5 fields, one quoted field with a "
    "special character (rows after that one are not checked, as in IFBench).",
    [],
    group="custom",
)
def csv_special_character(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    if not _PRODUCT_HEADER_RE.match(response.split("\n")[0].strip()):
        return Verdict(False, "header is not ProductID,Category,Brand,Price,Stock")
    rows = _csv_rows(response.replace('"', '"""'))  # keeps the quotes in the parsed fields
    if len(rows) != 15:
        return Verdict(False, f"{len(rows)} CSV rows, need 15 with the header")
    for k, row in enumerate(rows[1:], start=2):
        if len(row) != 5:
            return Verdict(False, f"row {k} has {len(row)} fields")
        if any(_SPECIAL_FIELD_RE.match(f) for f in row):
            return Verdict(True, f"row {k} has a quoted field with a special character")
    return Verdict(False, "no quoted field with a special character")


_STUDENT_HEADER_RE = re.compile(
    r'^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *(Semester|"Semester")\t *'
    r'(Score|"Score")$'
)


@register(
    "custom:csv_quotes",
    "Tab-separated with header StudentID, Subject, Grade, Semester, Score and 3 rows of 5 fields, every field "
    "in double quotes (an empty field fails; the reference raises IndexError).",
    [],
    group="custom",
)
def csv_quotes(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    if not _STUDENT_HEADER_RE.match(response.split("\n")[0].strip()):
        return Verdict(False, "header is not StudentID, Subject, Grade, Semester, Score (tab-separated)")
    rows = _csv_rows(response.replace('"', '"""'), "\t")
    if len(rows) != 4:
        return Verdict(False, f"{len(rows)} rows, need 4 with the header")
    for k, row in enumerate(rows, start=1):
        if len(row) != 5:
            return Verdict(False, f"row {k} has {len(row)} fields")
        for f in row:
            s = f.strip()
            if not s:
                return Verdict(False, f"row {k} has an empty field")
            if not (s[0] == '"' and s[-1] == '"'):
                return Verdict(False, f"row {k} field {f!r} is not in double quotes")
    return Verdict(True, "every field quoted")


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@register(
    "custom:date_format_list",
    "Comma-separated YYYY-MM-DD dates with years 1769-1821 and plausible month/day numbers.",
    [],
    group="custom",
)
def date_format_list(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    for d in response.strip().split(","):
        d = d.strip()
        if not _DATE_RE.match(d):
            return Verdict(False, f"{d[:40]!r} is not YYYY-MM-DD")
        y, m, day = (int(x) for x in d.split("-"))
        if not 1769 <= y <= 1821:
            return Verdict(False, f"{d}: year outside 1769-1821")
        limit = 31 if m in (1, 3, 5, 7, 8, 10, 12) else 30 if m in (4, 6, 9, 11) else 29 if m == 2 else 99
        if m > 12 or day > limit:
            return Verdict(False, f"{d}: no such month/day")
    return Verdict(True, "every item a date in range")
