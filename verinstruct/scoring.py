"""The one scoring path: a batch of (instance, response) pairs -> per-constraint verdicts and pass rates.

Benchmarks, ``verif score`` and the RL reward all call it, usually through a long-lived
:class:`verinstruct.Scorer`; :func:`score_batch` is the functional form. Per batch it makes at most three
calls, whatever the batch size, and the sandbox and the verifier work at the same time:

* registry constraints -> ``checkers.modes.evaluate_rows`` (in-process, pure functions);
* code constraints     -> ONE ``Sandbox.run`` (dataset code never runs in this process) on a thread of its
  own; its ``llm_*`` requests go, batched, to ``LLMBridge(verifier)`` (the sandbox is wired to the same
  verifier for the run, whatever callback it was built with);
* llm constraints      -> ONE ``Verifier.judge_batch`` over all soft constraints of all items.

Without a verifier, constraints that need one (llm checks, code calling ``llm_*``) are not run at all
and get an undecided verdict (``passed=None``) with ``no_llm_error``.

Pass rates (explicit): ``hard_pass_rate = hard passed / hard total``: an undecided hard constraint is NOT
credited (it counts against the rate) and is reported in ``hard_undecided``; 1.0 when there are no hard
constraints. ``soft_pass_rate`` likewise. Callers wanting passed/decided have the counts.

One convention everywhere (API, ``--output`` rows, CLI summaries): a row with no constraints of a kind has
rate 1.0 for that kind (nothing failed), so the reward ``hard x soft`` does not zero a row for having no soft
constraints; ``soft_total == 0`` tells such rows apart.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checkers.base import Verdict
from verinstruct.schema import CodeCheck, Instance, LLMCheck, RegistryCheck

if TYPE_CHECKING:
    from checkers.sandbox import Sandbox
    from verifier import Verifier

NO_LLM_ERROR = "needs LLM verifier (no verifier given)"


@dataclass(frozen=True, slots=True)
class ConstraintResult:
    name: str
    kind: str
    check_type: str
    verdict: Verdict
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "check": self.check_type,
                               "passed": self.verdict.passed, "reason": self.verdict.reason}
        if self.verdict.error is not None:
            out["error"] = self.verdict.error
        if self.verdict.prob is not None:
            out["prob"] = self.verdict.prob
        return out


@dataclass(frozen=True, slots=True)
class ScoredResponse:
    id: str
    constraints: tuple[ConstraintResult, ...]

    def _count(self, kind: str) -> tuple[int, int, int]:
        rs = [r for r in self.constraints if r.kind == kind]
        return (sum(r.verdict.passed is True for r in rs), len(rs), sum(r.verdict.passed is None for r in rs))

    @property
    def hard_passed(self) -> int:
        return self._count("hard")[0]

    @property
    def hard_total(self) -> int:
        return self._count("hard")[1]

    @property
    def hard_undecided(self) -> int:
        return self._count("hard")[2]

    @property
    def soft_passed(self) -> int:
        return self._count("soft")[0]

    @property
    def soft_total(self) -> int:
        return self._count("soft")[1]

    @property
    def soft_undecided(self) -> int:
        return self._count("soft")[2]

    @property
    def hard_pass_rate(self) -> float:
        """Hard passed / hard total (undecided counts as not passed); 1.0 for a row with no hard constraints."""
        passed, total, _ = self._count("hard")
        return passed / total if total else 1.0

    @property
    def soft_pass_rate(self) -> float:
        """Soft passed / soft total; 1.0 for a row with no soft constraints (see module docs)."""
        passed, total, _ = self._count("soft")
        return passed / total if total else 1.0

    @property
    def undecided(self) -> int:
        return sum(r.verdict.passed is None for r in self.constraints)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "constraints": [r.to_dict() for r in self.constraints],
            "hard_pass_rate": self.hard_pass_rate,
            "soft_pass_rate": self.soft_pass_rate,
            "hard": {"passed": self.hard_passed, "total": self.hard_total, "undecided": self.hard_undecided},
            "soft": {"passed": self.soft_passed, "total": self.soft_total, "undecided": self.soft_undecided},
        }


def score_batch(
    instances: Sequence[Instance],
    responses: Sequence[str],
    *,
    sandbox: Sandbox | None = None,
    verifier: Verifier | None = None,
    mode: str = "strict",
    no_llm_error: str = NO_LLM_ERROR,
    granularity: str | None = None,
    concurrent: bool = True,
) -> list[ScoredResponse]:
    """Score ``responses[i]`` against ``instances[i]``; results in input order, one per constraint in order.

    ``mode`` ('strict' / 'loose') applies to registry checkers. A sandbox is created for this call when
    none is given (pass one to reuse its workers across batches). ``granularity`` ('constraint' / 'item',
    None: the verifier's own) is how llm constraints are judged. ``concurrent=False`` runs code checks and
    LLM judging one after the other (for comparisons; the verdicts are the same).
    """
    if len(instances) != len(responses):
        raise ValueError(f"got {len(instances)} instances but {len(responses)} responses")
    bad = [k for k, r in enumerate(responses) if not isinstance(r, str)]
    if bad:
        raise TypeError(f"responses[{bad[0]}] must be a string, got {type(responses[bad[0]]).__name__}")
    verdicts: list[list[Verdict | None]] = [[None] * len(inst.constraints) for inst in instances]

    failure: list[BaseException] = []

    def code() -> None:
        try:
            _run_code(instances, responses, verdicts, sandbox, verifier, no_llm_error)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(e)

    has_code = any(isinstance(c.check, CodeCheck) for inst in instances for c in inst.constraints)
    worker = threading.Thread(target=code, name="score-batch-code", daemon=True) if has_code and concurrent else None
    if worker is not None:
        worker.start()
    elif has_code:
        code()
    try:
        _run_registry(instances, responses, verdicts, mode)
        _run_llm(instances, responses, verdicts, verifier, no_llm_error, granularity)
    finally:
        if worker is not None:
            worker.join()
    if failure:
        raise failure[0]

    out = []
    for inst, vs in zip(instances, verdicts, strict=True):
        results = []
        for c, v in zip(inst.constraints, vs, strict=True):
            assert v is not None
            results.append(ConstraintResult(c.name, c.kind, c.check_type, v, c.text))
        out.append(ScoredResponse(inst.id, tuple(results)))
    return out


def _run_registry(instances: Sequence[Instance], responses: Sequence[str],
                  verdicts: list[list[Verdict | None]], mode: str) -> None:
    import checkers
    from checkers.modes import evaluate_rows

    rows, where = [], []
    for i, inst in enumerate(instances):
        built, idx = [], []
        for j, c in enumerate(inst.constraints):
            if isinstance(c.check, RegistryCheck):
                try:
                    built.append(checkers.build(c.check.checker, c.check.params))
                    idx.append(j)
                except checkers.CheckerError as e:
                    verdicts[i][j] = Verdict.undecided(f"bad constraint: {e}")
        if built:
            rows.append((built, responses[i], inst.instruction))
            where.append((i, idx))
    if not rows:
        return
    results = evaluate_rows(rows, mode)  # type: ignore[arg-type]
    for (i, idx), vs in zip(where, results, strict=True):
        for j, v in zip(idx, vs, strict=True):
            verdicts[i][j] = v


def row_key(row_id: str, instruction: str, sources: Sequence[str]) -> str:
    """The sandbox's process-sharing key of a dataset row: a hash of its id, its instruction and every code
    source it holds. The calls of one row (all its responses in a batch, e.g. a GRPO group) share one
    process. Two rows share a key only when they have the same id *and* the same instruction and code: ids
    alone are data (a hostile dataset can repeat an honest row's id), and content alone would let two
    distinct rows of the same text share a process."""
    h = hashlib.sha256()
    parts = [str(row_id), instruction, *sorted(set(sources))]
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _run_code(instances: Sequence[Instance], responses: Sequence[str], verdicts: list[list[Verdict | None]],
              sandbox: Sandbox | None, verifier: Verifier | None, no_llm_error: str) -> None:
    calls, where = [], []
    from checkers.sandbox import CodeCall

    needs_llm = False
    for i, inst in enumerate(instances):
        row = None
        for j, c in enumerate(inst.constraints):
            if not isinstance(c.check, CodeCheck):
                continue
            if verifier is None and c.check.uses_llm:
                verdicts[i][j] = Verdict.undecided(no_llm_error)
                continue
            needs_llm = needs_llm or c.check.uses_llm
            row = row or row_key(inst.id, inst.instruction, [k.check.source for k in inst.constraints
                                                    if isinstance(k.check, CodeCheck)])
            calls.append(CodeCall(c.check.source, inst.instruction, responses[i], row=row))
            where.append((i, j))
    if not calls:
        return
    try:
        with ExitStack() as stack:
            llm = None
            if verifier is not None and needs_llm:
                from verifier.bridge import LLMBridge

                llm = LLMBridge(verifier)
            box = sandbox
            if box is None:
                from checkers.sandbox import Sandbox

                box = stack.enter_context(Sandbox(llm=llm))
                results = box.run(calls)
            elif llm is None or getattr(getattr(box, "llm", None), "verifier", None) is verifier:
                results = box.run(calls)  # nothing to wire, or already wired to this verifier
            else:
                results = box.run(calls, llm=llm)  # code calling llm_* is judged by this batch's verifier
    except Exception as e:  # the sandbox itself failed: every code verdict says so, nothing is invented
        results = [Verdict.undecided(f"sandbox failed: {type(e).__name__}: {e}")] * len(calls)
    if len(results) != len(calls):
        results = [Verdict.undecided(f"sandbox failed: returned {len(results)} results for {len(calls)} calls")] \
            * len(calls)
    for (i, j), v in zip(where, results, strict=True):
        verdicts[i][j] = v


def _run_llm(instances: Sequence[Instance], responses: Sequence[str], verdicts: list[list[Verdict | None]],
             verifier: Verifier | None, no_llm_error: str, granularity: str | None = None) -> None:
    """At most one ``judge_batch`` per granularity: plain llm checks at the batch's granularity (one request
    per item), recognised ``llm_judge`` code per constraint, recognised ``llm_score`` code as one item-level
    judgement over its own texts (exactly what running the code asks)."""
    from verifier import JudgeRequest

    gran = granularity or getattr(verifier, "granularity", "constraint")
    groups: dict[str, tuple[list[Any], list[list[tuple[int, int]]]]] = {}

    def ask(g: str, req: Any, places: list[tuple[int, int]]) -> None:
        reqs, where = groups.setdefault(g, ([], []))
        reqs.append(req)
        where.append(places)

    for i, inst in enumerate(instances):
        idx = [j for j, c in enumerate(inst.constraints) if isinstance(c.check, LLMCheck)]
        if not idx:
            continue
        if verifier is None:
            for j in idx:
                verdicts[i][j] = Verdict.undecided(no_llm_error)
            continue
        plain = [j for j in idx if inst.constraints[j].check.call is None]  # type: ignore[union-attr]
        if plain:
            texts = tuple(inst.constraints[j].text for j in plain)
            ask(gran, JudgeRequest(inst.instruction, responses[i], texts), [(i, j) for j in plain])
        for j in idx:
            check = inst.constraints[j].check
            if check.call is not None:  # type: ignore[union-attr]
                g = "constraint" if check.call == "llm_judge" else "item"  # type: ignore[union-attr]
                ask(g, JudgeRequest(inst.instruction, responses[i], check.asks), [(i, j)])  # type: ignore[union-attr]
    assert verifier is not None or not groups
    for g, (requests, where) in groups.items():
        try:
            results = list(verifier.judge_batch(requests, g))  # type: ignore[union-attr]
            if len(results) != len(requests):
                raise RuntimeError(f"{len(results)} results for {len(requests)} requests")
        except Exception as e:  # the backend failed as a whole: visible undecided verdicts, not zeros
            results = [[Verdict.undecided(f"verifier failed: {type(e).__name__}: {e}")] * len(r.constraints)
                       for r in requests]
        for req, places, vs in zip(requests, where, results, strict=True):
            if len(vs) != len(req.constraints) or not vs:
                vs = [Verdict.undecided(f"verifier failed: {len(vs)} verdicts for {len(req.constraints)} constraints")]
            vs = list(vs) if len(places) == len(vs) else [vs[0]] * len(places)
            for (i, j), v in zip(places, vs, strict=True):
                verdicts[i][j] = v


def score(instance: Instance, response: str, **kwargs: Any) -> ScoredResponse:
    """Single-item helper over :func:`score_batch`."""
    return score_batch([instance], [response], **kwargs)[0]
