"""The registry of deterministic checkers: id -> spec, with typed params and helpful errors."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from checkers.base import CheckerSpec, CheckFn, Param, UnknownCheckerError

_REGISTRY: dict[str, CheckerSpec] = {}


def register(
    checker_id: str,
    description: str,
    params: tuple[Param, ...] | list[Param] = (),
    *,
    kind: str = "hard",
    group: str = "",
    check_params: Callable[[Mapping[str, Any]], None] | None = None,
    judges_empty: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    """Decorator: register ``fn(response, params, prompt) -> Verdict`` under ``checker_id``.

    ``check_params`` validates rules that span parameters (or need more than a type), raising ParamError.
    ``judges_empty``: the checker decides empty responses itself (see ``CheckerSpec.judges_empty``).
    """

    def deco(fn: CheckFn) -> CheckFn:
        if checker_id in _REGISTRY:
            raise ValueError(f"checker id {checker_id!r} is registered twice")
        names = [p.name for p in params]
        if len(names) != len(set(names)):
            raise ValueError(f"checker {checker_id!r} declares a parameter twice: {names}")
        _REGISTRY[checker_id] = CheckerSpec(checker_id, description, tuple(params), fn, kind, group, check_params,
                                                judges_empty)
        return fn

    return deco


def _ensure_loaded() -> None:
    # Importing the checker modules registers them; done lazily so `checkers.base` stays light.
    from checkers import followbench, ifbench, ifeval, multilingual  # noqa: F401


def get(checker_id: str) -> CheckerSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[checker_id]
    except KeyError:
        close = difflib.get_close_matches(checker_id, list(_REGISTRY), n=3, cutoff=0.5)
        if not close:  # try the part after the group prefix ("length:num_words" vs "num_words")
            tail = checker_id.rsplit(":", 1)[-1]
            close = [k for k in sorted(_REGISTRY) if k.rsplit(":", 1)[-1] == tail][:3]
        raise UnknownCheckerError(checker_id, close) from None


def ids() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def specs() -> list[CheckerSpec]:
    return [_REGISTRY[i] for i in ids()]


@dataclass(frozen=True, slots=True)
class Constraint:
    """A checker plus validated parameters: the unit every judge works on."""

    spec: CheckerSpec
    params: Mapping[str, Any]

    @property
    def id(self) -> str:
        return self.spec.id


def build(checker_id: str, kwargs: Mapping[str, Any] | None = None) -> Constraint:
    """Look up and validate; raises UnknownCheckerError / ParamError naming id, param and expectation."""
    spec = get(checker_id)
    return Constraint(spec, spec.validate(kwargs))
