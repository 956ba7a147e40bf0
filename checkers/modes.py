"""Strict and loose evaluation: one generic mechanism around any checker.

* strict: the response must be non-empty after ``strip()`` and the check must pass (unless the checker
  declares ``judges_empty``: FollowBench's rules decide blank responses themselves, as their authors' do).
* loose (IFEval's upper bound): the check passes on any non-empty variant among the response with markdown
  asterisks removed and/or its first and/or last line dropped (8 variants, IFEval's order).

Checkers are pure, so a variant string that repeats (e.g. a response without ``*``) is judged once.
A checker that raises yields an undecided verdict for that item instead of failing the batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Literal

from checkers import text
from checkers.base import Verdict
from checkers.registry import Constraint

Mode = Literal["strict", "loose"]
MODES: tuple[Mode, ...] = ("strict", "loose")

_EMPTY = Verdict(False, "empty response")


def loose_variants(response: str) -> tuple[str, ...]:
    """The 8 responses IFEval's loose mode tries, in its order."""
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    plain = (response, no_first, no_last, no_both)
    stars = tuple(v.replace("*", "") for v in plain)
    return (response, stars[0], no_first, no_last, no_both, stars[1], stars[2], stars[3])


def _run(c: Constraint, response: str, prompt: str) -> Verdict:
    try:
        v = c.spec.fn(response, c.params, prompt)
    except Exception as e:  # one broken item must not sink the batch
        return Verdict.undecided(f"{c.id}: {type(e).__name__}: {e}")
    return v


def _strict(c: Constraint, response: str, prompt: str) -> Verdict:
    if not response.strip() and not c.spec.judges_empty:
        return _EMPTY
    return _run(c, response, prompt)


def _loose(
    c: Constraint, response: str, variants: list[tuple[str, ...]], prompt: str, strict: Verdict | None = None
) -> Verdict:
    """``variants`` holds the row's variant tuple once computed: it is only needed when the response
    itself (variant 0) does not pass, so rows that pass as they are never build it. ``strict``: the strict
    verdict on the same response, which is variant 0's (checkers are pure), so it is not judged again."""
    if c.spec.judges_empty and not response.strip():  # no variant of a blank text is anything but blank
        return strict if strict is not None else _run(c, response, prompt)
    first: Verdict | None = None
    undecided: Verdict | None = None
    seen: set[str] = set()
    k = 0
    v = response
    while True:
        if v not in seen and v.strip():
            seen.add(v)
            verdict = strict if k == 0 and strict is not None else _run(c, v, prompt)
            if verdict.passed:
                return verdict if k == 0 else Verdict(True, f"{verdict.reason} (loose variant {k})")
            if verdict.passed is None and undecided is None:
                undecided = verdict
            if first is None:
                first = verdict
        k += 1
        if not variants:
            variants.append(loose_variants(response))
        if k == len(variants[0]):
            return undecided or first or _EMPTY
        v = variants[0][k]


def evaluate(
    constraints: Sequence[Constraint], response: str, prompt: str = "", mode: Mode = "strict"
) -> list[Verdict]:
    """Judge one response against its constraints; one verdict per constraint, in order."""
    return evaluate_rows([(constraints, response, prompt)], mode)[0]


def evaluate_rows(
    rows: Iterable[tuple[Sequence[Constraint], str, str]], mode: Mode = "strict"
) -> list[list[Verdict]]:
    """Batch API: for each (constraints, response, prompt) row, the verdicts in ``mode``."""
    return evaluate_rows_modes(rows, (mode,))[mode]


def evaluate_rows_modes(
    rows: Iterable[tuple[Sequence[Constraint], str, str]], modes: Sequence[Mode] = MODES
) -> dict[Mode, list[list[Verdict]]]:
    """For each mode, the verdicts of each (constraints, response, prompt) row; judging strict and loose
    together runs each check on the response itself once (loose starts from the strict verdict).

    Language detection is batched: a first pass defers every detection a checker asks for
    (:func:`checkers.text.deferred_languages`), all of them run together, then the interrupted items
    run again (checkers are pure, so the verdicts are those of a plain pass). If the batch detection fails,
    the re-runs detect text by text, so a text that cannot be detected makes only its own items undecided."""
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    modes = tuple(dict.fromkeys(modes))
    rows = list(rows)
    variants: list[list[tuple[str, ...]]] = [[] for _ in rows]
    want_strict, want_loose = "strict" in modes, "loose" in modes

    def judge(r: int, c: Constraint) -> tuple[Verdict | None, Verdict | None]:
        _, response, prompt = rows[r]
        strict = _strict(c, response, prompt) if want_strict else None
        loose = _loose(c, response, variants[r], prompt, strict if response.strip() else None) if want_loose else None
        return strict, loose

    out: list[list[tuple[Verdict | None, Verdict | None] | None]] = [[None] * len(cs) for cs, _, _ in rows]
    redo: list[tuple[int, int]] = []
    with text.deferred_languages() as pending:
        for r, (constraints, _, _) in enumerate(rows):
            for j, c in enumerate(constraints):
                asked = pending.requests
                try:
                    verdicts = judge(r, c)
                except text.LanguagePending:
                    redo.append((r, j))
                    continue
                if pending.requests != asked:  # the checker caught the signal itself: judge it again
                    redo.append((r, j))
                else:
                    out[r][j] = verdicts
    if pending.texts:
        # on failure the re-runs below detect each text alone, inside the per-item error handling
        with contextlib.suppress(Exception):
            text.detect_languages(pending.texts)
    for r, j in redo:
        out[r][j] = judge(r, rows[r][0][j])
    result: dict[Mode, list[list[Verdict]]] = {}
    for k, mode in enumerate(("strict", "loose")):
        if mode in modes:
            result[mode] = [[v[k] for v in row] for row in out]  # type: ignore[index,misc]
    return result


def evaluate_one(constraint: Constraint, response: str, prompt: str = "", mode: Mode = "strict") -> Verdict:
    """Single-item helper over the batch path."""
    return evaluate([constraint], response, prompt, mode)[0]
