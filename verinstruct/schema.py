"""The typed VerInstruct instance: an instruction plus constraints, each with the way it is checked.

Plain frozen dataclasses, not pydantic: the rest of the project (``checkers.base``) uses dataclasses,
instances are built millions of times by the RL reward (cheap construction matters), and validation here
is small and hand-written so every error names the row and field the way ``verif check`` does.
Registry parameters are still validated through ``checkers.build`` (the single source of truth).

A constraint is checked one of three ways (``Constraint.check``):

* ``RegistryCheck`` — a deterministic checker from ``checkers`` with typed params (IFEval-style);
* ``CodeCheck``     — dataset Python defining ``check_following(instruction, response)``, run in the
  sandbox; when it calls ``llm_judge``/``llm_extract``/``llm_score`` it is soft and needs the LLM bridge;
* ``LLMCheck``      — a soft constraint with no code: the LLM verifier judges ``Constraint.text``.
"""

from __future__ import annotations

import ast
import functools
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from checkers.sandbox.protocol import LLM_FUNCTIONS

T = TypeVar("T")
Kind = Literal["hard", "soft"]
KINDS: tuple[str, ...] = ("hard", "soft")
CHECK_TYPES: tuple[str, ...] = ("registry", "code", "llm")
#: where a constraint's text came from: a prompt line, an llm_* string argument in its code,
#: a readable form of its name (nothing better found), or a checker description (IFEval, typed input)
TEXT_SOURCES: tuple[str, ...] = ("prompt", "code", "name", "description", "given")
_LLM_RE = re.compile(r"\b(?:" + "|".join(LLM_FUNCTIONS) + r")\s*\(|\bllm_call\b")


class SchemaError(ValueError):
    """A row or field does not fit the schema; the message names where (row id / line) and what was expected."""


def _one_of(owner: str, name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Closed-set fields are checked when an object is built: a typo must not become a silent wrong reward."""
    if value not in allowed:
        raise SchemaError(f"{owner}.{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _str(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise SchemaError(f"{owner}.{name} must be a string, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class RegistryCheck:
    checker: str
    params: Mapping[str, Any] = field(default_factory=dict)
    type: Literal["registry"] = "registry"

    def __post_init__(self) -> None:
        _str("RegistryCheck", "checker", self.checker)
        if not isinstance(self.params, Mapping):
            raise SchemaError(f"RegistryCheck.params must be a mapping, got {type(self.params).__name__}")
        _one_of("RegistryCheck", "type", self.type, ("registry",))


@dataclass(frozen=True, slots=True)
class CodeCheck:
    source: str
    type: Literal["code"] = "code"

    def __post_init__(self) -> None:
        _str("CodeCheck", "source", self.source)
        _one_of("CodeCheck", "type", self.type, ("code",))

    @property
    def uses_llm(self) -> bool:
        return code_uses_llm(self.source)


@dataclass(frozen=True, slots=True)
class LLMCheck:
    """Judged by the verifier. Plain: ``Constraint.text`` at the batch's granularity. From dataset code that
    only returns ``llm_judge(instruction, response, TEXT)`` / ``llm_score(instruction, response, TEXTS)``
    (see :func:`forwarded_llm_call`): ``call`` and ``asks`` say exactly what that code asks (llm_judge one
    constraint, llm_score one item-level judgement over its texts), so the verdict is the code's, without
    the sandbox; ``source`` keeps the code for round trips."""

    call: str | None = None
    asks: tuple[str, ...] = ()
    source: str = ""
    type: Literal["llm"] = "llm"

    def __post_init__(self) -> None:
        _one_of("LLMCheck", "type", self.type, ("llm",))
        if self.call is not None:
            _one_of("LLMCheck", "call", self.call, ("llm_judge", "llm_score"))

    @classmethod
    def from_code(cls, source: str) -> LLMCheck | None:
        fwd = forwarded_llm_call(source)
        return None if fwd is None else cls(fwd[0], fwd[1], source)


Check = RegistryCheck | CodeCheck | LLMCheck


@dataclass(frozen=True, slots=True)
class Constraint:
    name: str
    kind: str
    text: str
    check: Check
    #: the dataset's tag ("rule" / "llm") or None when the checker name was untagged
    tag: str | None = None
    text_source: str = "given"

    def __post_init__(self) -> None:
        _str("Constraint", "name", self.name)
        _one_of("Constraint", "kind", self.kind, KINDS)
        _str("Constraint", "text", self.text)
        if not isinstance(self.check, (RegistryCheck, CodeCheck, LLMCheck)):
            raise SchemaError(f"Constraint.check must be a RegistryCheck, CodeCheck or LLMCheck, "
                              f"got {type(self.check).__name__}")
        if self.tag is not None and not isinstance(self.tag, str):
            raise SchemaError(f"Constraint.tag must be a string or None, got {type(self.tag).__name__}")
        _one_of("Constraint", "text_source", self.text_source, TEXT_SOURCES)
        if self.kind != "soft" and isinstance(self.check, LLMCheck):
            raise SchemaError(f"Constraint.kind must be 'soft' for an llm check, got {self.kind!r}")

    @property
    def check_type(self) -> str:
        return self.check.type

    @property
    def code(self) -> str:
        """The dataset code behind the check ("" for registry checks and plain llm checks)."""
        return getattr(self.check, "source", "")

    @property
    def needs_llm(self) -> bool:
        """True when deciding it takes the LLM verifier (llm type, or code that calls llm_*)."""
        return isinstance(self.check, LLMCheck) or (isinstance(self.check, CodeCheck) and self.check.uses_llm)


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    prompt: str
    constraints: tuple[Constraint, ...]
    #: chat form of the prompt when the source had one (the last user turn is ``prompt``)
    messages: tuple[Mapping[str, str], ...] | None = None
    #: raw fields preserved for round trips: {"format": "verif"|"ifeval"|"typed", "checkers": [...],
    #: "functions": [...], "extra": {other raw fields}}
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _str("Instance", "id", self.id)
        _str("Instance", "prompt", self.prompt)
        if not isinstance(self.constraints, tuple):
            if isinstance(self.constraints, (str, Mapping)) or not isinstance(self.constraints, Sequence):
                raise SchemaError(f"Instance.constraints must be a sequence of Constraint, "
                                  f"got {type(self.constraints).__name__}")
            object.__setattr__(self, "constraints", tuple(self.constraints))
        for k, c in enumerate(self.constraints):
            if not isinstance(c, Constraint):
                raise SchemaError(f"Instance.constraints[{k}] must be a Constraint, got {type(c).__name__}")

    @property
    def instruction(self) -> str:
        """The text passed as ``instruction`` to dataset code and the verifier (never the literal word)."""
        return self.prompt

    def counts(self) -> dict[str, int]:
        out = {"hard": 0, "soft": 0}
        for c in self.constraints:
            out[c.kind] += 1
        return out


#: dataset code longer than this is not parsed in the parent process: CPython parses long f-strings in
#: quadratic time (300 KB took 6 s), and real checker functions are a few KB. Longer code is still run by the
#: sandbox (which has its own limits); here it is classified by a linear regex search for ``llm_*`` calls.
MAX_ANALYSED_CODE = 16_000
#: at most this many string / number literals per function are kept as evidence for text recovery (they
#: live in analyse_code's cache, beside the source itself)
_MAX_EVIDENCE = 32


@dataclass(frozen=True, slots=True)
class CodeFacts:
    """What the parent learns from one dataset function, from a single parse (see :func:`analyse_code`)."""

    #: why the code could not be analysed (too deeply nested, out of memory, ...); None when it could
    error: str | None
    uses_llm: bool
    #: ``(function, texts)`` when the code only forwards one llm_judge / llm_score call (see forwarded_llm_call)
    forwarded: tuple[str, tuple[str, ...]] | None
    #: string arguments of llm_* calls, other string literals, small integer literals (for text recovery)
    llm_args: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()


_STR_LITERAL_RE = re.compile(r"(['\"])([^'\"\n]{3,80})\1")


@functools.lru_cache(maxsize=65536)
def analyse_code(source: str) -> CodeFacts:
    """Parse dataset code once and answer every question the parent asks about it. Never raises.

    The code is untrusted input: besides ``SyntaxError``, parsing can raise ``RecursionError`` or
    ``MemoryError`` (``return ---...-1`` with 5,000 or 10,000 signs); those become ``error``, which validation
    turns into the row's one-line error. (A 20,000-digit literal is no error: only numbers a prompt could
    spell are kept, so ``str()`` never sees it.)
    Code that is not Python (syntax error, NUL bytes) or is over :data:`MAX_ANALYSED_CODE` is kept without
    a tree: the sandbox reports it when it runs. Cached: scoring asks for every code constraint of every batch.
    """
    if not source:
        return CodeFacts(None, False, None)
    tree = None
    if len(source) <= MAX_ANALYSED_CODE:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):  # ValueError: NUL bytes (3.10/3.11)
            tree = None
        except (MemoryError, RecursionError) as e:
            return CodeFacts(_analysis_error(e), bool(_LLM_RE.search(source)), None)
    if tree is None:
        return unparsed_facts(source)
    try:
        return _facts(tree)
    except (MemoryError, RecursionError, ValueError) as e:
        return CodeFacts(_analysis_error(e), bool(_LLM_RE.search(source)), None)


def unparsed_facts(source: str) -> CodeFacts:
    """What a linear scan tells about code that is not parsed (not Python, over a size cap): ``llm_*`` calls
    by a regex (it also matches them in comments, so it errs toward soft) and quoted literals."""
    strings = tuple(itertools.islice((m.group(2) for m in _STR_LITERAL_RE.finditer(source)), _MAX_EVIDENCE))
    return CodeFacts(None, bool(_LLM_RE.search(source)), None, (), strings, ())


def _analysis_error(e: BaseException) -> str:
    why = {"RecursionError": "nested too deeply", "MemoryError": "too large to parse"}.get(type(e).__name__, str(e))
    return f"code cannot be analysed: {type(e).__name__} ({why[:120]})"


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree``: ``ast.walk`` without its generators, about ten times faster (an f-string of
    16 KB has 16,000 nodes, and a row may have many functions)."""
    out: list[ast.AST] = [tree]
    node_type = ast.AST
    i = 0
    while i < len(out):  # breadth first, children in field order: the order ast.walk gives
        node = out[i]
        i += 1
        for name in node._fields:
            v = getattr(node, name, None)
            if isinstance(v, list):
                out.extend(x for x in v if isinstance(x, node_type))
            elif isinstance(v, node_type):
                out.append(v)
    return out


def _facts(tree: ast.Module) -> CodeFacts:
    uses_llm = False
    llm_args: list[str] = []
    arg_nodes: set[int] = set()
    nodes = _nodes(tree)
    for node in nodes:
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in LLM_FUNCTIONS:
                uses_llm = True
                for a in list(node.args[2:]) + [k.value for k in node.keywords]:
                    if isinstance(a, ast.Constant) and isinstance(a.value, str):
                        llm_args.append(a.value)
                        arg_nodes.add(id(a))
        elif (isinstance(node, ast.ImportFrom) and node.module == "llm_call"
              or isinstance(node, ast.Import) and any(a.name == "llm_call" for a in node.names)):
            uses_llm = True
    strings: list[str] = []
    numbers: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Constant) and id(node) not in arg_nodes:
            v = node.value
            if isinstance(v, str) and len(strings) < _MAX_EVIDENCE:
                s = v.strip()
                if 2 <= len(s) <= 80 and not s.startswith(("\\", "^")):
                    strings.append(s)
            # only numbers a prompt line could spell matter; str() of a huge literal raises ValueError
            elif (isinstance(v, int) and not isinstance(v, bool) and 1 < v < 10**15
                  and len(numbers) < _MAX_EVIDENCE):
                numbers.append(str(v))
    return CodeFacts(None, uses_llm, _forwarded(tree), tuple(llm_args), tuple(strings), tuple(numbers))


def code_uses_llm(source: str) -> bool:
    """Does dataset code call llm_judge / llm_extract / llm_score (or import llm_call)?"""
    return analyse_code(source).uses_llm


def forwarded_llm_call(source: str) -> tuple[str, tuple[str, ...]] | None:
    """(function, literal texts) when ``source`` is nothing but ``from llm_call import ...`` and a
    ``check_following(a, b)`` whose body is ``return llm_judge(a, b, 'text')`` or
    ``return llm_score(a, b, 'text' | ['text', ...])`` (a docstring allowed); else None.

    Strict on purpose: anything else (other imports, statements, keywords, aliases that are not imported)
    could change what running the code gives, and then it must run."""
    return analyse_code(source).forwarded


def check_code(source: str, where: str) -> CodeFacts:
    """:func:`analyse_code`, raising the row's one-line :class:`SchemaError` when the code cannot be analysed."""
    facts = analyse_code(source)
    if facts.error is not None:
        raise SchemaError(f"{where}: {facts.error}")
    return facts


def _forwarded(tree: ast.Module) -> tuple[str, tuple[str, ...]] | None:
    imported: dict[str, str] = {}
    fn = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "llm_call" and node.level == 0:
            for a in node.names:
                if a.name in LLM_FUNCTIONS:
                    imported[a.asname or a.name] = a.name
        elif isinstance(node, ast.FunctionDef) and node.name == "check_following" and fn is None:
            fn = node
        elif not _is_docstring(node):
            return None
    if fn is None or fn.decorator_list or fn.returns is not None:
        return None
    args = fn.args
    if (len(args.args) != 2 or args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg or args.defaults
            or any(a.annotation is not None for a in args.args)):
        return None
    body = fn.body[1:] if fn.body and _is_docstring(fn.body[0]) else fn.body
    if len(body) != 1 or not isinstance(body[0], ast.Return) or not isinstance(body[0].value, ast.Call):
        return None
    call = body[0].value
    name = imported.get(call.func.id) if isinstance(call.func, ast.Name) else None
    if name not in ("llm_judge", "llm_score") or call.keywords or len(call.args) != 3:
        return None
    a0, a1, lit = call.args
    if not (isinstance(a0, ast.Name) and a0.id == args.args[0].arg and isinstance(a1, ast.Name)
            and a1.id == args.args[1].arg):
        return None
    if isinstance(lit, ast.Constant) and isinstance(lit.value, str):
        return name, (lit.value,)
    if name == "llm_score" and isinstance(lit, (ast.List, ast.Tuple)) and lit.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in lit.elts):
        return name, tuple(e.value for e in lit.elts)  # type: ignore[attr-defined]
    return None


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


# ---------------------------------------------------------------------------------------------- validation


def _where(label: Any, path: str) -> str:
    """``label`` is already formatted ("line 3 (id 'x')" / "row 'x'"), or None."""
    return f"{label}: field {path!r}" if label else f"field {path!r}"


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def check_unicode(row: Any, where: str) -> None:
    """Reject a row holding a lone surrogate anywhere (JSON's ``"\\ud800"`` decodes to one): it is not text any
    encoder can write, so it would pass here and then crash a writer (output, terminal, Parquet, a resume
    file) halfway through a chunk. One linear walk over the row; the error names the row and the field."""
    stack: list[tuple[str, Any]] = [("", row)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            m = _SURROGATE_RE.search(v)
            if m is not None:
                raise SchemaError(f"{where}: field {path!r} contains a lone surrogate (U+{ord(m.group()):04X}) at "
                                  f"character {m.start() + 1}, which is not valid Unicode text")
        elif isinstance(v, Mapping):
            for k, x in reversed(list(v.items())):
                key = str(k)
                if _SURROGATE_RE.search(key):
                    raise SchemaError(f"{where}: a field name ({key!r}) contains a lone surrogate, which is not "
                                      "valid Unicode text")
                stack.append((f"{path}.{key}" if path else key, x))
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{path}[{i}]", x) for i, x in reversed(list(enumerate(v))))


def row_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """For a converter ``fn(row, where=None, ...)``: any failure on an odd row becomes the row's one-line
    :class:`SchemaError` (naming ``where`` and the id), which every command reports or skips, and the RL
    reward turns into its input error. Validation names fields itself; this is the net under it, so that a
    row shape nobody thought of cannot stop a week-long run with a traceback."""

    @functools.wraps(fn)
    def wrapper(row: Any, where: str | None = None, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(row, where, *args, **kwargs)
        except SchemaError:
            raise
        except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError,
                RecursionError, MemoryError) as e:
            rid = row.get("id", row.get("key")) if isinstance(row, Mapping) else None
            label = where or "row"
            if isinstance(rid, (str, int)) and not isinstance(rid, bool):
                label += f" (id {rid!r})"
            raise SchemaError(f"{label}: cannot be read ({type(e).__name__}: {str(e)[:200]})") from e

    return wrapper


def _req_str(d: Mapping[str, Any], key: str, row_id: Any, path: str, *, allow_empty: bool = True) -> str:
    if key not in d:
        raise SchemaError(f"{_where(row_id, path)} is missing (expected a string)")
    v = d[key]
    if not isinstance(v, str):
        raise SchemaError(f"{_where(row_id, path)} must be a string, got {type(v).__name__}")
    if not allow_empty and not v.strip():
        raise SchemaError(f"{_where(row_id, path)} must not be empty")
    return v


def check_from_dict(d: Mapping[str, Any], row_id: Any = None, path: str = "check") -> Check:
    if not isinstance(d, Mapping):
        raise SchemaError(f"{_where(row_id, path)} must be an object, got {type(d).__name__}")
    t = d.get("type")
    if t == "registry":
        checker = _req_str(d, "checker", row_id, f"{path}.checker", allow_empty=False)
        params = d.get("params") or {}
        if isinstance(params, str):
            try:
                params = json.loads(params) if params.strip() else {}
            except json.JSONDecodeError as e:
                raise SchemaError(f"{_where(row_id, path + '.params')} is not valid JSON: {e.msg}") from None
        if not isinstance(params, Mapping):
            raise SchemaError(f"{_where(row_id, path + '.params')} must be an object, got {type(params).__name__}")
        return make_registry_check(checker, params, row_id, path)
    if t == "code":
        source = _req_str(d, "source", row_id, f"{path}.source")
        check_code(source, _where(row_id, f"{path}.source"))
        return CodeCheck(source)
    if t == "llm":
        source = d.get("source")
        if source:  # recognised dataset code: rebuilt from the code, the one source of truth
            if isinstance(source, str):
                check_code(source, _where(row_id, f"{path}.source"))
            if not isinstance(source, str) or (check := LLMCheck.from_code(source)) is None:
                raise SchemaError(f"{_where(row_id, path + '.source')} of an llm check must be code that only "
                                  "returns one llm_judge / llm_score call with literal text")
            return check
        return LLMCheck()
    raise SchemaError(f"{_where(row_id, path + '.type')} must be one of {', '.join(CHECK_TYPES)}, got {t!r}")


def make_registry_check(checker: str, params: Mapping[str, Any] | None, row_id: Any = None,
                        path: str = "check") -> RegistryCheck:
    """Validate through ``checkers.build`` so ids and params have one source of truth."""
    import checkers

    try:
        built = checkers.build(checker, params)
    except checkers.CheckerError as e:
        raise SchemaError(f"{_where(row_id, path)}: {e}") from None
    return RegistryCheck(built.id, _plain(dict(built.params)))


def _plain(v: Any) -> Any:
    """Tuples (from Param validation) back to lists so params serialise to JSON identically."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def constraint_from_dict(d: Mapping[str, Any], row_id: Any = None, path: str = "constraints[0]") -> Constraint:
    if not isinstance(d, Mapping):
        raise SchemaError(f"{_where(row_id, path)} must be an object, got {type(d).__name__}")
    name = _req_str(d, "name", row_id, f"{path}.name", allow_empty=False)
    kind = _req_str(d, "kind", row_id, f"{path}.kind")
    if kind not in KINDS:
        raise SchemaError(f"{_where(row_id, path + '.kind')} must be 'hard' or 'soft', got {kind!r}")
    text = _req_str(d, "text", row_id, f"{path}.text")
    if "check" in d:
        check = check_from_dict(d["check"], row_id, f"{path}.check")
    else:  # flattened (datasets) form
        check = check_from_dict(
            {"type": d.get("check_type"), "checker": d.get("checker"), "params": d.get("params"),
             "source": d.get("code")},
            row_id, f"{path}.check")
    tag = d.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise SchemaError(f"{_where(row_id, path + '.tag')} must be a string or null, got {type(tag).__name__}")
    ts = d.get("text_source") or "given"
    if ts not in TEXT_SOURCES:
        raise SchemaError(f"{_where(row_id, path + '.text_source')} must be one of {', '.join(TEXT_SOURCES)}, got {ts!r}")
    if isinstance(check, (LLMCheck,)) and kind != "soft":
        raise SchemaError(f"{_where(row_id, path + '.kind')} must be 'soft' for an llm check, got {kind!r}")
    return Constraint(name, kind, text, check, tag or None, ts)


def constraint_to_dict(c: Constraint) -> dict[str, Any]:
    check: dict[str, Any] = {"type": c.check.type}
    if isinstance(c.check, RegistryCheck):
        check.update(checker=c.check.checker, params=_plain(dict(c.check.params)))
    elif isinstance(c.check, CodeCheck) or (isinstance(c.check, LLMCheck) and c.check.source):
        check["source"] = c.check.source
    return {"name": c.name, "kind": c.kind, "text": c.text, "text_source": c.text_source, "tag": c.tag,
            "check": check}


@row_errors
def instance_from_dict(d: Mapping[str, Any], where: str | None = None) -> Instance:
    """Parse a typed row (``constraints`` list); errors name the row id (or ``where``, e.g. 'line 7')."""
    if not isinstance(d, Mapping):
        raise SchemaError(f"{where or 'row'}: must be a JSON object, got {type(d).__name__}")
    raw_id = d.get("id")
    if raw_id is None or isinstance(raw_id, (bool, dict, list)):
        raise SchemaError(f"{where or 'row'}: field 'id' must be a string or integer, got {raw_id!r}")
    row_id = str(raw_id)
    label = f"{where} (id {row_id!r})" if where else f"row {row_id!r}"
    check_unicode(d, label)
    messages = d.get("messages")
    if messages is not None:
        messages = _messages(messages, label)
    prompt = d.get("prompt")
    if prompt is None and messages:
        users = [m["content"] for m in messages if m["role"] == "user"]
        prompt = users[-1] if users else None
    if not isinstance(prompt, str):
        raise SchemaError(f"{_where(label, 'prompt')} must be a string (or give chat 'messages'), got {type(prompt).__name__}")
    cons = d.get("constraints")
    if not isinstance(cons, Sequence) or isinstance(cons, str):
        raise SchemaError(f"{_where(label, 'constraints')} must be a list, got {type(cons).__name__}")
    constraints = tuple(constraint_from_dict(c, label, f"constraints[{i}]") for i, c in enumerate(cons))
    source = d.get("source") or {}
    if isinstance(source, str):
        try:
            source = json.loads(source) if source.strip() else {}
        except json.JSONDecodeError as e:
            raise SchemaError(f"{_where(label, 'source')} is not valid JSON: {e.msg}") from None
    if not isinstance(source, Mapping):
        raise SchemaError(f"{_where(label, 'source')} must be an object, got {type(source).__name__}")
    return Instance(row_id, prompt, constraints, messages, dict(source))


def _messages(messages: Any, label: str) -> tuple[dict[str, str], ...]:
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise SchemaError(f"{_where(label, 'messages')} must be a list of {{role, content}}, got {type(messages).__name__}")
    out = []
    for i, m in enumerate(messages):
        if not (isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise SchemaError(f"{_where(label, f'messages[{i}]')} must be {{'role': str, 'content': str}}, got {m!r}")
        out.append({"role": m["role"], "content": m["content"]})
    return tuple(out)


def instance_to_dict(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "prompt": inst.prompt,
        "messages": [dict(m) for m in inst.messages] if inst.messages is not None else None,
        "constraints": [constraint_to_dict(c) for c in inst.constraints],
        "source": _plain(dict(inst.source)),
    }
