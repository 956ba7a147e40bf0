"""Base types shared by every judge: verdicts, typed parameters and checker specs.

A verdict is data, never an exception crossing a batch: ``passed`` is True/False,
or None when the constraint could not be decided (then ``error`` says why).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of judging one constraint on one response."""

    passed: bool | None
    reason: str = ""
    error: str | None = None
    #: probability of "yes" when a verifier scored it (None otherwise)
    prob: float | None = None
    #: raw model output a verdict was parsed from (None for code checks)
    raw: str | None = None

    def __post_init__(self) -> None:
        # closed set: a truthy 1 or "no" would otherwise be counted as a pass (or silently as undecided)
        if self.passed is not None and self.passed is not True and self.passed is not False:
            raise TypeError(f"Verdict.passed must be True, False or None, got {self.passed!r}")

    @classmethod
    def ok(cls, reason: str = "") -> Verdict:
        return cls(True, reason)

    @classmethod
    def fail(cls, reason: str = "") -> Verdict:
        return cls(False, reason)

    @classmethod
    def undecided(cls, error: str, reason: str = "") -> Verdict:
        return cls(None, reason, error)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed, "reason": self.reason}
        if self.error is not None:
            out["error"] = self.error
        if self.prob is not None:
            out["prob"] = self.prob
        if self.raw is not None:
            out["raw"] = self.raw
        return out


class CheckerError(ValueError):
    """Base class for errors in building constraints (bad ids, bad parameters)."""


class UnknownCheckerError(CheckerError, KeyError):
    def __init__(self, checker_id: str, suggestions: Sequence[str] = ()) -> None:
        self.checker_id = checker_id
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        msg = f"unknown constraint id {checker_id!r}{hint} (see `verif checkers list`)"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return self.args[0]


class ParamError(CheckerError):
    def __init__(self, checker_id: str, param: str, problem: str) -> None:
        self.checker_id = checker_id
        self.param = param
        self.problem = problem
        super().__init__(f"constraint {checker_id!r}: parameter {param!r} {problem}")


_MISSING: Any = object()
PARAM_TYPES: tuple[type, ...] = (int, float, str, bool, list)
KINDS: tuple[str, ...] = ("hard", "soft")


@dataclass(frozen=True, slots=True)
class Param:
    """One typed parameter of a checker: the single source for validation, docs and schema."""

    name: str
    type: type  # int, float, str, bool, list (of str)
    description: str
    default: Any = _MISSING
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            names = ", ".join(t.__name__ for t in PARAM_TYPES)
            raise TypeError(f"Param {self.name!r}: type must be one of {names}, got {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def validate(self, checker_id: str, value: Any) -> Any:
        """Return the value coerced to the declared type, or raise ParamError."""
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                raise ParamError(checker_id, self.name, f"must be a boolean, got {value!r}")
        elif t is int:
            if isinstance(value, bool):
                raise ParamError(checker_id, self.name, f"must be an integer, got {value!r}")
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise ParamError(checker_id, self.name, f"must be an integer, got {value!r}")
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ParamError(checker_id, self.name, f"must be a number, got {value!r}")
            value = float(value)
        elif t is str:
            if not isinstance(value, str):
                raise ParamError(checker_id, self.name, f"must be a string, got {value!r}")
        elif t is list:
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ParamError(checker_id, self.name, f"must be a list of strings, got {value!r}")
            if not all(isinstance(v, str) for v in value):
                raise ParamError(checker_id, self.name, f"must be a list of strings, got {value!r}")
            value = tuple(value)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise ParamError(checker_id, self.name, f"must be one of {allowed}, got {value!r}")
        if self.min is not None and value < self.min:
            raise ParamError(checker_id, self.name, f"must be >= {self.min:g}, got {value!r}")
        if self.max is not None and value > self.max:
            raise ParamError(checker_id, self.name, f"must be <= {self.max:g}, got {value!r}")
        return value

    def json_schema(self) -> dict[str, Any]:
        names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
        out: dict[str, Any] = {"type": names[self.type], "description": self.description}
        if self.type is list:
            out["items"] = {"type": "string"}
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.min is not None:
            out["minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        if not self.required:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        return out


#: a check function: (response, params, prompt) -> Verdict
CheckFn = Callable[[str, Mapping[str, Any], str], Verdict]


@dataclass(frozen=True, slots=True)
class CheckerSpec:
    """A registered checker: id, one-line description, typed parameters and the pure check function."""

    id: str
    description: str
    params: tuple[Param, ...]
    fn: CheckFn
    kind: str = "hard"
    #: the family it belongs to (IFEval's "keywords", "length_constraints", ...), for reports
    group: str = field(default="")
    #: optional rule across parameters (e.g. nth <= num); gets the validated params, raises ParamError
    check_params: Callable[[Mapping[str, Any]], None] | None = None
    #: True: the checker itself decides an empty/whitespace response (FollowBench's rules pass some);
    #: False: IFEval's convention, an empty response fails in strict mode without running the check
    judges_empty: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"CheckerSpec {self.id!r}: kind must be one of 'hard', 'soft', got {self.kind!r}")

    def validate(self, kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate kwargs against the declared params; None values count as absent (IFEval convention)."""
        given = {k: v for k, v in (kwargs or {}).items() if v is not None}
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            expected = ", ".join(sorted(known)) or "no parameters"
            raise ParamError(self.id, unknown[0], f"is not accepted (expected {expected})")
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.validate(self.id, given[p.name])
            elif p.required:
                raise ParamError(self.id, p.name, f"is required ({p.description})")
            else:
                out[p.name] = p.default
        if self.check_params is not None:
            self.check_params(out)
        return out

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "title": self.id,
            "description": self.description,
            "properties": {p.name: p.json_schema() for p in self.params},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }
