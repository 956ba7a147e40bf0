"""Converters between raw VerIF rows, IFEval rows and typed ``Instance`` objects.

Unlike the original VerIF trainer, nothing is dropped: every checker becomes a constraint.
Kind and check type come from the tag first, then from the code:

* ``[llm]``  -> soft; code check when the function has code (run with the LLM bridge), else an llm check;
* code that only returns ``llm_judge(instruction, response, 'text')`` or ``llm_score(..., 'text' | [...])``
  (any tag) -> soft llm check judging exactly that text (recorded in ``LLMCheck.call``/``asks``; the code
  is kept in ``LLMCheck.source``): the same verdict as running the code, without the sandbox;
* ``[rule]`` -> hard code check (soft if its code calls ``llm_*``; an empty rule function becomes an llm check);
* untagged   -> code calling ``llm_*`` is soft, other code is hard, no code is a soft llm check.

The constraint text is recovered from the prompt (task text followed by one constraint sentence per line):
each checker is matched to a line by its name words, the string/number literals of its code and the
string arguments of its ``llm_*`` calls, with the checker order as a tie-breaker; unmatched ones use the
``llm_judge`` argument (``text_source="code"``) or a readable form of the name (``text_source="name"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from verinstruct.schema import (
    CodeCheck,
    CodeFacts,
    Constraint,
    Instance,
    LLMCheck,
    RegistryCheck,
    SchemaError,
    _plain,
    analyse_code,
    check_unicode,
    instance_from_dict,
    row_errors,
    unparsed_facts,
)

if TYPE_CHECKING:
    import checkers


class ConversionError(SchemaError):
    """A raw row cannot be converted; the message names the row (id or line) and the field."""


_TAG_RE = re.compile(r"^\s*\[([A-Za-z_]+)\]\s*(.*)$", re.S)
_STOP = frozenset(["the", "a", "an", "of", "and", "or", "to", "in", "on", "for", "with", "be", "is", "are", "should", "your", "response", "answer", "use", "using"])
#: extra words that a constraint line about a given name-word tends to use
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "keyword": ("include", "mention", "contain", "word", "term", "phrase"),
    "length": ("word", "words", "character", "long", "short", "sentence", "exceed", "least", "most"),
    "number": ("exactly", "least", "most", "count"),
    "paragraph": ("paragraphs",),
    "bullet": ("list", "point", "dash", "item"),
    "style": ("tone", "manner", "voice", "written"),
    "tone": ("style", "manner", "voice"),
    "format": ("json", "markdown", "table", "list", "structured", "formatted", "title"),
    "language": ("english", "chinese", "french", "spanish", "german", "lowercase", "uppercase"),
    "sentence": ("sentences",),
    "forbidden": ("avoid", "not", "never", "without", "refrain"),
    "ending": ("end", "finish", "conclude", "close"),
    "starting": ("begin", "start", "first", "open"),
    "start": ("begin", "first", "open"),
    "audience": ("reader", "children", "expert", "beginner"),
    "emoji": ("emojis",),
    "punctuation": ("comma", "exclamation", "question"),
}


def parse_checker_name(raw: str) -> tuple[str | None, str]:
    """'[rule] Number_Paragraphs' -> ('rule', 'Number_Paragraphs'); untagged -> (None, name)."""
    m = _TAG_RE.match(raw)
    if m:
        return m.group(1).lower(), m.group(2).strip()
    return None, raw.strip()


def readable_name(name: str) -> str:
    """'Number_Paragraphs' / 'numberParagraphs' -> 'Number Paragraphs'."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    s = re.sub(r"[_\-\s]+", " ", s).strip()
    return s or name


def classify(tag: str | None, code: str, facts: CodeFacts | None = None) -> tuple[str, CodeCheck | LLMCheck]:
    """(kind, check) for a dataset checker from its tag and its code (see module docstring); ``facts``: the
    code's :func:`analyse_code`, when the caller has it already."""
    has_code = bool(code and code.strip())
    if not has_code:
        return "soft", LLMCheck()
    facts = facts or analyse_code(code)
    if facts.forwarded is not None:
        return "soft", LLMCheck(facts.forwarded[0], facts.forwarded[1], code)
    if tag == "llm" or facts.uses_llm:
        return "soft", CodeCheck(code)
    return "hard", CodeCheck(code)


def category(name: str) -> str:
    """A coarse family for reports (length, keywords, format, content, style) guessed from the checker name."""
    n = readable_name(name).lower()
    rules = (
        ("keywords", ("keyword", "include", "forbidden word", "mention", "frequency")),
        ("length", ("length", "number word", "number sentence", "number paragraph", "word count", "paragraph",
                    "sentence count", "character")),
        ("format", ("format", "bullet", "json", "markdown", "table", "title", "section", "list", "case", "start",
                    "end", "punctuation", "quotation", "highlight", "structure")),
        ("style", ("style", "tone", "audience", "sentiment", "formal", "literary", "grammatical", "voice")),
    )
    for cat, keys in rules:
        if any(k in n for k in keys):
            return cat
    return "content"


# ----------------------------------------------------------------------------------------- text recovery


def _stem(w: str) -> str:
    w = w.lower()
    for suf in ("ing", "es", "ed", "s"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            w = w[: -len(suf)]
            break
    return w[:5]


def _words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[A-Za-z]+", text) if w.lower() not in _STOP}


def _name_words(name: str) -> set[str]:
    base = {w.lower() for w in re.findall(r"[A-Za-z]+", readable_name(name)) if w.lower() not in _STOP}
    out = {_stem(w) for w in base}
    for w in base:
        for syn in _SYNONYMS.get(w.rstrip("s"), ()) + _SYNONYMS.get(w, ()):
            out.add(_stem(syn))
    return out


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


#: at most this much of a row's code is parsed (in function order); the rest is classified by a linear scan
#: (:func:`unparsed_facts`). Parsing costs about 1.5 us a character, f-strings 5 us and more (quadratic in
#: their length), so this keeps one row's conversion well under a second whatever its code; real rows have
#: a few KB of code
MAX_PARSED_PER_ROW = 64_000
#: text recovery scores every (checker, prompt line) pair up to this many pairs; past it (a row with
#: thousands of checkers or lines) each checker is scored against the lines near its own position, which is
#: where datasets put them, so the work per row stays linear in its size
MAX_PAIRS = 50_000
#: the longest prompt line / llm_* argument compared (longer ones are compared by their first characters)
_MAX_TEXT = 2_000


@dataclass(frozen=True, slots=True)
class _Checker:
    """One checker's evidence, computed once per row (not once per prompt line)."""

    llm_args: tuple[str, ...]  # normalised, at least 8 characters
    name_words: frozenset[str]
    name_total: int
    strings: tuple[str, ...]  # normalised, distinct, non-empty
    numbers: frozenset[str]
    fallback: str | None  # the first llm_* argument as written


def _checker(name: str, facts: CodeFacts) -> _Checker:
    args = tuple(na for na in (_norm(a[:_MAX_TEXT]) for a in facts.llm_args[:8]) if len(na) >= 8)
    strings = tuple(dict.fromkeys(ns for ns in map(_norm, facts.strings) if ns))
    total = max(1, len({_stem(w) for w in re.findall(r"[A-Za-z]+", readable_name(name))}))
    return _Checker(args, frozenset(_name_words(name)), total, strings, frozenset(facts.numbers),
                    facts.llm_args[0].strip() if facts.llm_args else None)


def _line_score(c: _Checker, nline: str, words: frozenset[str], toks: frozenset[str]) -> float:
    score = 0.0
    for na in c.llm_args:
        if na == nline or na in nline or (len(nline) >= 12 and nline in na):
            score += 5.0
    if c.name_words:
        score += 2.0 * len(c.name_words & words) / c.name_total
    if c.strings:
        score += min(2.0, 0.75 * sum(1 for s in c.strings if s in nline))
    if c.numbers:
        score += min(1.0, 0.5 * len(c.numbers & toks))
    return score


def recover_texts(prompt: str, names: Sequence[str], codes: Sequence[str],
                  facts: Sequence[CodeFacts] | None = None) -> list[tuple[str, str]]:
    """(text, text_source) per checker: matched prompt line, llm_* argument, or readable name.

    ``facts``: each code's :func:`analyse_code` when the caller has them (one parse per function)."""
    lines = [ln.strip() for ln in prompt.split("\n") if ln.strip()]
    cands = lines[1:]  # the first line is the task itself
    n, m = len(names), len(cands)
    checkers = [_checker(name, f) for name, f in
                zip(names, facts if facts is not None else [analyse_code(c) for c in codes], strict=True)]
    nlines = [_norm(ln[:_MAX_TEXT]) for ln in cands]
    words = [frozenset(_words(ln[:_MAX_TEXT])) for ln in cands]
    toks = [frozenset(re.findall(r"\d+", ln[:_MAX_TEXT])) for ln in cands]
    offset = m - n
    # past the pair budget, checker i sees only the lines around its positional line i + offset
    half = m if n * m <= MAX_PAIRS else max(1, MAX_PAIRS // max(1, 2 * n))
    pairs: list[tuple[float, int, int]] = []
    for i, c in enumerate(checkers):
        lo, hi = max(0, i + offset - half), min(m, i + offset + half + 1)
        for j in range(lo, hi):
            s = _line_score(c, nlines[j], words[j], toks[j])
            positional = j == i + offset
            if s <= 0 and not (positional and offset == 0):
                continue
            pairs.append((s + (0.5 if positional else 0.0), i, j))
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    chosen: dict[int, int] = {}
    used: set[int] = set()
    for _s, i, j in pairs:
        if i in chosen or j in used:
            continue
        chosen[i] = j
        used.add(j)
    out: list[tuple[str, str]] = []
    for i in range(n):
        if i in chosen:
            out.append((cands[chosen[i]], "prompt"))
        elif checkers[i].fallback is not None:
            out.append((checkers[i].fallback, "code"))
        else:
            out.append((readable_name(names[i]), "name"))
    return out


# ------------------------------------------------------------------------------------------- VerIF rows


def _label(row: Mapping[str, Any], where: str | None) -> str:
    rid = row.get("id") if isinstance(row, Mapping) else None
    if where and rid is not None:
        return f"{where} (id {rid!r})"
    return where or (f"row {rid!r}" if rid is not None else "row")


@row_errors
def from_verif(row: Mapping[str, Any], where: str | None = None) -> Instance:
    """A raw VerIF row (id, prompt, checkers, functions, ...) -> Instance; extra fields kept in ``source``."""
    if not isinstance(row, Mapping):
        raise ConversionError(f"{where or 'row'}: must be a JSON object, got {type(row).__name__}")
    label = _label(row, where)
    rid = row.get("id")
    if rid is None or isinstance(rid, (bool, dict, list)):
        raise ConversionError(f"{label}: field 'id' must be a string or integer, got {rid!r}")
    check_unicode(row, label)
    prompt = row.get("prompt")
    messages = None
    if isinstance(prompt, list):  # verl-style chat prompt
        messages = prompt
        for k, m in enumerate(messages):
            if not (isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                raise ConversionError(f"{label}: field 'prompt'[{k}] must be {{'role': str, 'content': str}}, "
                                      f"got {str(m)[:80]!r}")
        users = [m.get("content") for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        prompt = users[-1] if users else None
    if not isinstance(prompt, str):
        raise ConversionError(f"{label}: field 'prompt' must be a string, got {type(prompt).__name__}")
    names, funcs = row.get("checkers"), row.get("functions")
    for field_name, v in (("checkers", names), ("functions", funcs)):
        if not isinstance(v, list):
            raise ConversionError(f"{label}: field {field_name!r} must be a list, got {type(v).__name__}")
        bad = [k for k, x in enumerate(v) if not isinstance(x, str)]
        if bad:
            raise ConversionError(
                f"{label}: field {field_name!r}[{bad[0]}] must be a string, got {type(v[bad[0]]).__name__}")
    assert isinstance(names, list) and isinstance(funcs, list)
    if len(names) != len(funcs):
        raise ConversionError(
            f"{label}: fields 'checkers' and 'functions' must have the same length, got {len(names)} and {len(funcs)}")
    facts = []
    budget = MAX_PARSED_PER_ROW
    for k, code in enumerate(funcs):  # one parse per function, shared by classification and text recovery
        f = analyse_code(code) if len(code) <= budget else unparsed_facts(code)
        budget -= len(code)
        if f.error is not None:
            raise ConversionError(f"{label}: field 'functions'[{k}] ({names[k][:60]!r}): {f.error}")
        facts.append(f)
    parsed = [parse_checker_name(c) for c in names]
    texts = recover_texts(prompt, [p[1] for p in parsed], funcs, facts)
    constraints = []
    for raw, (tag, name), code, f, (text, ts) in zip(names, parsed, funcs, facts, texts, strict=True):
        kind, check = classify(tag, code, f)
        constraints.append(Constraint(name or readable_name(raw), kind, text, check, tag, ts))
    extra = {k: v for k, v in row.items() if k not in ("id", "prompt", "checkers", "functions")}
    source: dict[str, Any] = {"format": "verif", "checkers": list(names), "functions": list(funcs), "extra": extra}
    if not isinstance(rid, str):
        source["raw_id"] = rid  # ids may be integers in raw files; keep the type for an exact round trip
    if messages is not None:
        source["prompt_messages"] = True
    msgs = None
    if messages is not None:
        msgs = tuple({"role": str(m.get("role")), "content": str(m.get("content"))} for m in messages)
    return Instance(str(rid), prompt, tuple(constraints), msgs, source)


def to_verif(inst: Instance) -> dict[str, Any]:
    """Instance -> raw VerIF row; a row made by ``from_verif`` comes back identical (extra fields too)."""
    names, funcs = [], []
    src_names = list(inst.source.get("checkers") or [])
    for k, c in enumerate(inst.constraints):
        if isinstance(c.check, RegistryCheck):
            raise ConversionError(
                f"row {inst.id!r}: constraint {c.name!r} is a registry check ({c.check.checker}); "
                "VerIF rows hold only Python code — export it as an IFEval row (to_ifeval) or as a typed row")
        code = c.code
        raw = src_names[k] if k < len(src_names) and parse_checker_name(src_names[k]) == (c.tag, c.name) else None
        names.append(raw if raw is not None else (f"[{c.tag}] {c.name}" if c.tag else c.name))
        funcs.append(code)
    raw_id = inst.source.get("raw_id")
    row: dict[str, Any] = {"id": raw_id if raw_id is not None and str(raw_id) == inst.id else inst.id}
    if inst.source.get("prompt_messages") and inst.messages is not None:
        row["prompt"] = [dict(m) for m in inst.messages]
    else:
        row["prompt"] = inst.prompt
    row["checkers"] = names
    row["functions"] = funcs
    row.update(dict(inst.source.get("extra") or {}))
    return row


# ------------------------------------------------------------------------------------------ IFEval rows


def describe(checker_id: str, params: Mapping[str, Any]) -> str:
    """A readable sentence for a registry constraint: the checker's description plus its parameters."""
    import checkers

    desc = checkers.get(checker_id).description.rstrip(". ")
    shown = {k: v for k, v in params.items() if v not in (None, "", [], ())}
    if not shown:
        return desc + "."
    parts = ", ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                      for k, v in shown.items())
    return f"{desc} ({parts})."


@dataclass(frozen=True)
class IFEvalRow:
    """An IFEval row, validated, with its instructions built as checker constraints."""

    key: Any  # None when the row has neither 'key' nor 'id'
    prompt: str
    response: str | None  # None unless asked for
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    constraints: list[checkers.Constraint]
    key_field: str  # 'key' or 'id', as the row spelled it
    extra: dict[str, Any]


_IFEVAL_FIELDS = frozenset(("key", "id", "prompt", "response", "instruction_id_list", "kwargs"))
_PROMPT = ("prompt", str, "a string")
_RESPONSE = ("response", str, "a string")
_LISTS = (("instruction_id_list", list, "a list of instruction ids"), ("kwargs", list, "a list of parameter objects"))
_REQUIRED = {False: (_PROMPT, *_LISTS), True: (_PROMPT, _RESPONSE, *_LISTS)}


@row_errors
def parse_ifeval_row(row: Any, where: str | None = None, *, response: bool = False) -> IFEvalRow:
    """The one IFEval row parser (``verif check`` and conversion): every problem is a ConversionError
    naming the row (``where``, e.g. "line 3", and its key) and the field. ``response``: require one."""
    import checkers

    if not isinstance(row, dict):
        if not isinstance(row, Mapping):
            raise ConversionError(f"{where or 'row'}: expected a JSON object, got {type(row).__name__}")
        row = dict(row)
    key_field = "key" if "key" in row else "id"
    key = row.get(key_field)

    def fail(problem: str) -> ConversionError:  # the label is only formatted for an error
        ok_key = key is not None and not isinstance(key, (bool, dict, list, float))
        return ConversionError(f"{_label({'id': key}, where) if ok_key else where or 'row'}: {problem}")

    if key is not None and isinstance(key, (bool, dict, list, float)):
        raise fail(f"field {key_field!r} must be a string or integer, got {type(key).__name__}")
    check_unicode(row, _label({'id': key}, where) if key is not None else where or "row")
    for name, typ, what in _REQUIRED[response]:
        v = row.get(name, _MISSING)
        if type(v) is not typ and not isinstance(v, typ):
            raise fail(f"missing field {name!r}" if v is _MISSING else f"field {name!r} must be {what}, got {type(v).__name__}")
    ids, kwargs = row["instruction_id_list"], row["kwargs"]
    if len(ids) != len(kwargs):
        raise fail(f"'kwargs' has {len(kwargs)} entries but 'instruction_id_list' has {len(ids)}")
    constraints = []
    for i, (cid, kw) in enumerate(zip(ids, kwargs, strict=True)):
        if type(cid) is not str:
            raise fail(f"instruction_id_list[{i}] must be a string, got {cid!r}")
        if kw is not None and not isinstance(kw, dict):
            raise fail(f"kwargs[{i}] must be an object, got {type(kw).__name__}")
        try:
            constraints.append(checkers.build(cid, kw))
        except checkers.CheckerError as e:
            raise fail(f"instruction {i} ({cid}): {e}") from None
    extra = {k: v for k, v in row.items() if k not in _IFEVAL_FIELDS or (k == "response" and not response)}
    return IFEvalRow(key, row["prompt"], row["response"] if response else None, ids,
                     [k or {} for k in kwargs], constraints, key_field, extra)


_MISSING = object()


@row_errors
def from_ifeval(row: Mapping[str, Any], where: str | None = None) -> Instance:
    """An IFEval row (key, prompt, instruction_id_list, kwargs) -> Instance with registry constraints."""
    import checkers

    r = parse_ifeval_row(row, where)
    if r.key is None:
        raise ConversionError(f"{where or 'row'}: missing field 'key' (a string or integer)")
    constraints = []
    for cid, built in zip(r.instruction_id_list, r.constraints, strict=True):
        check = RegistryCheck(built.id, _plain(dict(built.params)))  # JSON-ready, as make_registry_check
        spec = checkers.get(check.checker)
        constraints.append(Constraint(cid, spec.kind if spec.kind in ("hard", "soft") else "hard",
                                      describe(check.checker, check.params), check, None, "description"))
    source = {"format": "ifeval", "key_field": r.key_field, "instruction_id_list": list(r.instruction_id_list),
              "kwargs": [dict(k) for k in r.kwargs], "extra": r.extra}
    return Instance(str(r.key), r.prompt, tuple(constraints), None, source)


def to_ifeval(inst: Instance) -> dict[str, Any]:
    """Instance (registry constraints only) -> IFEval row; exact for rows made by ``from_ifeval``."""
    for c in inst.constraints:
        if not isinstance(c.check, RegistryCheck):
            raise ConversionError(f"row {inst.id!r}: constraint {c.name!r} is a {c.check_type} check, not a registry one")
    src = inst.source
    key_field = src.get("key_field", "key")
    key: Any = inst.id
    if src.get("format") == "ifeval" and src.get("instruction_id_list") is not None:
        ids, kwargs = list(src["instruction_id_list"]), [dict(k) for k in src["kwargs"]]
        if key_field == "key" and inst.id.lstrip("-").isdigit():
            key = int(inst.id)
    else:
        ids = [c.check.checker for c in inst.constraints if isinstance(c.check, RegistryCheck)]
        kwargs = [dict(c.check.params) for c in inst.constraints if isinstance(c.check, RegistryCheck)]
    row = {key_field: key, "prompt": inst.prompt, "instruction_id_list": ids, "kwargs": kwargs}
    row.update(dict(src.get("extra") or {}))
    return row


# ------------------------------------------------------------------------------------------ any row


def row_format(row: Mapping[str, Any]) -> str | None:
    """'typed', 'verif', 'ifeval' or 'verl' from the fields present; None when it is none of them."""
    if not isinstance(row, Mapping):
        return None
    if "reward_model" in row:
        return "verl"
    if "constraints" in row:
        return "typed"
    if "checkers" in row or "functions" in row:
        return "verif"
    if "instruction_id_list" in row:
        return "ifeval"
    return None


def row_to_instance(row: Any, where: str | None = None, fmt: str | None = None) -> Instance:
    """Any supported row -> Instance (format auto-detected unless ``fmt`` is given)."""
    fmt = fmt or row_format(row)
    if fmt == "typed":
        return instance_from_dict(row, where)
    if fmt == "verif":
        return from_verif(row, where)
    if fmt == "ifeval":
        return from_ifeval(row, where)
    if fmt == "verl":
        return from_verl(row, where)
    if fmt is None:
        got = sorted(row)[:8] if isinstance(row, Mapping) else type(row).__name__
        raise ConversionError(
            f"{where or 'row'}: unrecognised row: expected a raw VerIF row (id, prompt, checkers, functions), "
            f"an IFEval row (key, prompt, instruction_id_list, kwargs), a typed row (id, prompt, constraints) or a "
            f"verl row (prompt, reward_model.ground_truth); got {got}")
    raise ConversionError(f"unknown row format {fmt!r} (expected typed, verif, ifeval or verl)")


# ------------------------------------------------------------------------------------------- verl rows


@row_errors
def from_verl(row: Mapping[str, Any], where: str | None = None) -> Instance:
    """A verl-wrapped row (``prompt`` as chat messages, ``reward_model.ground_truth`` JSON) -> Instance.

    The ground truth is either the typed row that ``verif rl prepare`` writes (``constraints``) or VerIF's own
    preprocessed form (``{"checkers", "functions"}``, the prompt outside it). The id comes from the typed row,
    else ``extra_info.id``, else ``extra_info.index``.
    """
    import json

    if not isinstance(row, Mapping):
        raise ConversionError(f"{where or 'row'}: must be a JSON object, got {type(row).__name__}")
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), Mapping) else {}
    rid = extra.get("id", extra.get("index"))
    label = _label({"id": rid}, where)
    check_unicode(row, label)
    rm = row.get("reward_model")
    gt = rm.get("ground_truth") if isinstance(rm, Mapping) else None
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except json.JSONDecodeError as e:
            raise ConversionError(f"{label}: field 'reward_model.ground_truth' is not valid JSON: {e.msg}") from None
    if not isinstance(gt, Mapping):
        raise ConversionError(f"{label}: field 'reward_model.ground_truth' must be a JSON object (typed constraints "
                              f"or VerIF checkers/functions), got {type(gt).__name__}")
    if "constraints" in gt:
        from verinstruct.dataset import from_row

        return from_row(dict(gt), label)
    if "checkers" in gt:
        prompt = row.get("prompt")
        if rid is None:
            raise ConversionError(f"{label}: a VerIF ground truth needs an id: field 'extra_info.id' or 'extra_info.index'")
        extra_fields = {k: v for k, v in row.items() if k not in ("prompt", "reward_model")}
        base = {"id": rid, "prompt": prompt, "checkers": gt.get("checkers"), "functions": gt.get("functions")}
        inst = from_verif(base, where)
        src = dict(inst.source)
        src["extra"] = {**dict(src.get("extra") or {}), "verl": _jsonable(extra_fields)}
        return Instance(inst.id, inst.prompt, inst.constraints, inst.messages, src)
    raise ConversionError(f"{label}: field 'reward_model.ground_truth' has neither 'constraints' (typed) nor "
                          f"'checkers' (VerIF); keys: {sorted(gt)[:8]}")


def _jsonable(v: Any) -> Any:
    """numpy arrays / scalars from Parquet readers -> plain lists and numbers."""
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "tolist"):
        return _jsonable(v.tolist())
    return v
