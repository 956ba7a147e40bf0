"""The VerIF reward (and its variants) from per-constraint verdicts: one function for RL and benchmarks.

``rl/`` wraps :func:`reward_batch` for verl and TRL; a benchmark (VerInstruct held-out) reports the same
numbers, so the formula lives here, below both.

Per (instance, response):

1. **Reasoning** is removed first (:mod:`verifier.reasoning`, one rule for the reward, ``verif eval`` and the judge
   parser): only the text after the last ``</think>`` is judged. An **unfinished** response is a format failure,
   handled by ``RewardConfig.unfinished_think``: ``fail`` (score 0, nothing judged, ``format_ok`` 0), ``mask``
   (no reward) or ``keep`` (judge the whole text). Unfinished: a ``<think>`` never closed; no ``</think>`` at
   all when the prompt prefilled ``<think>`` (R1-Distill's and Qwen3's templates end the generation prompt with
   ``<think>\n``: per sample from the rendered prompt, or ``RewardConfig.think_prefilled``); or a response cut
   at the length limit without its end-of-sequence token (``truncated``, told by the adapter; part
   ``truncated`` 1).
2. **Formula** (``RewardConfig.formula``):

   * ``verif`` — VerIF's: hard pass rate x the soft factor, where the soft factor is ONE item-level
     judgement of all soft constraints together (1/0; x 1 when there are none);
   * ``prob``  — as ``verif`` with the soft factor P(yes) of that judgement instead of 1/0;
   * ``mean``  — mean over all constraints, each judged on its own;
   * ``all``   — 1 only if every constraint passes.

   For ``verif``/``prob`` soft constraints whose dataset code calls ``llm_*`` are, like in the paper, judged
   by their text in the joint judgement (``soft_code="judge"``); ``soft_code="run"`` runs their code instead
   and multiplies each of their verdicts into the soft factor. ``mean``/``all`` always run the code.

   Three options reproduce the authors' reward where this one differs by choice (``rl/README.md``,
   "Departures"): ``soft_when_none="judge"`` (a row without soft constraints still gets the joint judgement,
   of an empty list), ``rule_llm_code="rule"`` (``[rule]`` code calling ``llm_*`` is a hard check run in the
   sandbox) and ``judge_sees="name"`` (the joint judgement lists the checker names, ``str(list)``); see
   :func:`judged_instance`.
3. **Undecided verdicts** (``passed=None``: a sandbox timeout, an unparsable judge answer, ...) follow
   ``RewardConfig.undecided``: ``fail`` (counted as failed), ``drop`` (left out of the rate/factor; a sample
   with a factor whose constraints are all undecided is masked) or ``mask`` (any undecided verdict masks the
   sample). A masked sample has ``score=None``; adapters say how they pass that on (TRL: ``None``; verl has no
   per-sample mask: ``mask_value`` plus ``masked=1`` in the logged parts). Never a silent 0 or -1.

Every result has the same parts (:data:`PARTS`), because verl takes the keys of its first sample.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checkers.base import Verdict
from verifier.reasoning import split_reasoning
from verinstruct.schema import CodeCheck, Constraint, Instance, LLMCheck

if TYPE_CHECKING:
    from verinstruct.scorer import Scorer
    from verinstruct.scoring import ScoredResponse

FORMULAS = ("verif", "prob", "mean", "all")
UNDECIDED_POLICIES = ("fail", "drop", "mask")
THINK_POLICIES = ("fail", "mask", "keep")
SOFT_CODE = ("judge", "run")
#: a row with no soft constraint: soft factor 1 (``one``), or the authors' joint judgement of an empty list
SOFT_WHEN_NONE = ("one", "judge")
#: ``[rule]`` code that calls ``llm_*``: soft (judged, or run into the soft factor) or, as the authors, a rule
RULE_LLM_CODE = ("soft", "rule")
#: what the joint judgement lists: each soft constraint's text, or (the authors') the checker names
JUDGE_SEES = ("text", "name")
#: the name of the stand-in constraint that carries ``soft_when_none="judge"``'s judgement of an empty list
EMPTY_JUDGEMENT = "(no soft constraints)"
#: the parts of every result, in order (``score`` first)
PARTS = ("score", "hard_pass_rate", "soft_score", "hard_total", "soft_total", "undecided", "masked", "format_ok",
         "truncated", "timeout")



@dataclass(frozen=True, slots=True)
class RewardConfig:
    formula: str = "verif"
    undecided: str = "fail"
    unfinished_think: str = "fail"
    soft_code: str = "judge"
    #: registry checkers' mode ('strict' / 'loose'; the Scorer's ``mode``); None: the Scorer's. The verifier's own
    #: decision mode ('score' / 'generate') is a different option, ``verifier_mode`` (the Scorer's name too).
    mode: str | None = None
    #: whether the prompt prefilled ``<think>``: None detects it per sample from the rendered prompt where the
    #: adapter has one (verl's prompt ids), else assumes not; True/False overrides the detection
    think_prefilled: bool | None = None
    #: the authors' reward, where it differs by choice (``rl/README.md``, "Departures"): ``judge`` calls the judge
    #: with an empty list for a row without soft constraints; ``rule`` runs ``[rule]`` code that calls ``llm_*``
    #: as a rule (hard); ``name`` shows the judge the checker names (``['[llm] Desired_Writing_Style']``)
    soft_when_none: str = "one"
    rule_llm_code: str = "soft"
    judge_sees: str = "text"

    def __post_init__(self) -> None:
        for name, allowed in (("formula", FORMULAS), ("undecided", UNDECIDED_POLICIES),
                              ("unfinished_think", THINK_POLICIES), ("soft_code", SOFT_CODE),
                              ("soft_when_none", SOFT_WHEN_NONE), ("rule_llm_code", RULE_LLM_CODE),
                              ("judge_sees", JUDGE_SEES)):
            v = getattr(self, name)
            if v not in allowed:
                raise ValueError(f"reward {name} must be one of {', '.join(allowed)}, got {v!r}")
        for name, default in (("soft_when_none", "one"), ("judge_sees", "text")):
            if getattr(self, name) != default and self.formula not in ("verif", "prob"):
                raise ValueError(f"reward {name}={getattr(self, name)} changes the joint judgement of formula "
                                 f"verif/prob; formula {self.formula} has none (use {name}={default})")
        if self.mode not in (None, "strict", "loose"):
            hint = (f" ({self.mode!r} is a verifier decision mode: use the option verifier_mode={self.mode!r})"
                    if self.mode in ("score", "generate") else "")
            raise ValueError(f"reward mode (registry checkers) must be 'strict', 'loose' or None, got {self.mode!r}{hint}")
        if self.think_prefilled not in (None, True, False):
            raise ValueError(f"reward think_prefilled must be true, false or None (detect), got {self.think_prefilled!r}")

    @property
    def granularity(self) -> str:
        """How llm constraints are judged: jointly per response for verif/prob, one by one otherwise."""
        return "item" if self.formula in ("verif", "prob") else "constraint"


@dataclass(frozen=True, slots=True)
class RewardResult:
    """``score`` is None when the sample is masked; the parts are always there."""

    score: float | None
    hard_pass_rate: float
    soft_score: float
    hard_total: int
    soft_total: int
    undecided: int
    format_ok: bool
    #: the response hit the length limit without its end-of-sequence token
    truncated: bool = False
    #: the sample's time budget ran out before it was scored (its verdicts count as undecided)
    timeout: bool = False

    @property
    def masked(self) -> bool:
        return self.score is None

    def to_dict(self, mask_value: float | None = None) -> dict[str, Any]:
        """The parts as plain numbers (``PARTS`` order); a masked score becomes ``mask_value``."""
        return {"score": self.score if self.score is not None else mask_value,
                "hard_pass_rate": self.hard_pass_rate, "soft_score": self.soft_score,
                "hard_total": self.hard_total, "soft_total": self.soft_total, "undecided": self.undecided,
                "masked": int(self.masked), "format_ok": int(self.format_ok), "truncated": int(self.truncated),
                "timeout": int(self.timeout)}


def strip_reasoning(text: str, *, prefilled: bool = False) -> tuple[str, bool]:
    """(answer, finished) by :func:`verifier.reasoning.split_reasoning`; the answer without surrounding blanks
    (the whole text when unfinished, for ``unfinished_think="keep"``)."""
    r = split_reasoning(text, prefilled=prefilled)
    return (r.answer.strip(), True) if r.finished else (text, False)


def _judged_by_code(c: Constraint) -> bool:
    """A soft constraint whose dataset code decides it (run in the sandbox, or a recognised llm_* forwarder)."""
    return c.kind == "soft" and (isinstance(c.check, CodeCheck)
                                 or (isinstance(c.check, LLMCheck) and c.check.call is not None))


def judged_instance(inst: Instance, config: RewardConfig) -> Instance:
    """The instance as the formula judges it (the row itself when nothing changes):

    * ``rule_llm_code='rule'``: ``[rule]`` constraints decided by ``llm_*`` code become hard code checks (run in
      the sandbox, their LLM calls answered by the verifier), as the authors' reward runs every ``[rule]``;
    * verif/prob with ``soft_code='judge'``: soft constraints decided by dataset code become plain llm checks on
      their text, so that ALL soft constraints go into the one joint item-level judgement (the code is kept in
      ``LLMCheck.source``);
    * ``judge_sees='name'``: the plain llm checks become ONE whose text is the list of their checker names as
      the authors' ``llm_score`` prints it (``str(list)``);
    * ``soft_when_none='judge'``: a row without a joint judgement gets one over an empty list
      (:data:`EMPTY_JUDGEMENT`; ``[]`` with ``judge_sees='name'``)."""
    cons = list(inst.constraints)
    if config.rule_llm_code == "rule":
        cons = [Constraint(c.name, "hard", c.text, CodeCheck(_source(c.check)), c.tag, c.text_source)
                if c.tag == "rule" and _judged_by_code(c) and _source(c.check).strip() else c for c in cons]
    if config.granularity == "item":
        if config.soft_code == "judge":
            cons = [Constraint(c.name, c.kind, c.text, LLMCheck(source=_source(c.check)), c.tag, c.text_source)
                    if _judged_by_code(c) else c for c in cons]
        if config.judge_sees == "name":
            cons = _judged_by_name(cons)
        if config.soft_when_none == "judge" and not any(_joint(c) for c in cons):
            text = "[]" if config.judge_sees == "name" else ""
            cons.append(Constraint(EMPTY_JUDGEMENT, "soft", text, LLMCheck(), None, "name"))
    if tuple(cons) == inst.constraints:
        return inst
    return Instance(inst.id, inst.prompt, tuple(cons), inst.messages, inst.source)


def _joint(c: Constraint) -> bool:
    """A plain llm check: judged in the joint judgement (verif/prob)."""
    return c.kind == "soft" and isinstance(c.check, LLMCheck) and c.check.call is None


def checker_name(c: Constraint) -> str:
    """The dataset's checker name as written (``[llm] Desired_Writing_Style``): tag and name."""
    return f"[{c.tag}] {c.name}" if c.tag else c.name


def _judged_by_name(cons: list[Constraint]) -> list[Constraint]:
    """The plain llm checks as one, whose text is ``str([names])``: the authors' ``llm_score`` puts the list
    itself into its prompt (``llm_call.py``: ``[约束]\n{checkers}``)."""
    joint = [c for c in cons if _joint(c)]
    if not joint:
        return cons
    names = [checker_name(c) for c in joint]
    one = Constraint(" + ".join(names), "soft", str(names), LLMCheck(), None, "name")
    first = cons.index(joint[0])
    return [one if k == first else c for k, c in enumerate(cons) if k == first or not _joint(c)]


def _source(check: Any) -> str:
    return str(getattr(check, "source", "") or "")


class _Masked(Exception):
    pass


def _rate(verdicts: Sequence[Verdict], policy: str, value: Any = None) -> float:
    """Mean of ``value(v)`` (default: passed as 1/0) under the undecided policy; 1.0 when there are none."""
    if not verdicts:
        return 1.0
    vals = []
    for v in verdicts:
        if v.passed is None:
            if policy == "mask":
                raise _Masked
            if policy == "drop":
                continue
            vals.append(0.0)
        else:
            vals.append(value(v) if value is not None else float(v.passed))
    if not vals:  # drop, and nothing decided: no honest number
        raise _Masked
    return sum(vals) / len(vals)


def _prob(v: Verdict) -> float:
    return float(v.prob) if v.prob is not None and math.isfinite(v.prob) else float(bool(v.passed))


def formula_score(scored: ScoredResponse, config: RewardConfig, instance: Instance | None = None) -> RewardResult:
    """The reward of one scored response (already judged with ``config.granularity``).

    ``instance`` (the one scored) tells which llm verdicts are the joint judgement (plain llm checks) and
    which belong to recognised ``llm_*`` code (one unit each); without it every llm verdict is taken as joint.
    """
    hard = [r.verdict for r in scored.constraints if r.kind == "hard"]
    soft = [r for r in scored.constraints if r.kind == "soft"]
    undecided = sum(r.verdict.passed is None for r in scored.constraints)
    policy = config.undecided
    soft_v = [r.verdict for r in soft]
    hard_rate = soft_score = 0.0
    try:
        hard_rate = _rate(hard, policy)
        if config.formula in ("verif", "prob"):
            # one unit for the joint judgement (repeated per plain llm constraint), one per code-decided check
            if instance is not None:
                plain = {k for k, c in enumerate(instance.constraints) if _joint(c)}
                soft_idx = [k for k, r in enumerate(scored.constraints) if r.kind == "soft"]
                units = [scored.constraints[k].verdict for k in soft_idx if k not in plain]
                joint = [scored.constraints[k].verdict for k in soft_idx if k in plain]
            else:
                units = [r.verdict for r in soft if r.check_type != "llm"]
                joint = [r.verdict for r in soft if r.check_type == "llm"]
            if joint:
                units.insert(0, joint[0])
            value = _prob if config.formula == "prob" else (lambda v: float(bool(v.passed)))
            if any(u.passed is None for u in units):
                if policy == "mask":
                    raise _Masked
                if policy == "drop":
                    units = [u for u in units if u.passed is not None]
                    if not units:
                        raise _Masked
            soft_score = math.prod(value(u) if u.passed is not None else 0.0 for u in units)
            score: float | None = hard_rate * soft_score
        else:
            soft_score = _rate(soft_v, policy)
            allv = hard + soft_v
            if config.formula == "mean":
                score = _rate(allv, policy)
            else:
                score = float(all(v.passed is True for v in allv if v.passed is not None or policy == "fail"))
                if policy == "drop" and allv and all(v.passed is None for v in allv):
                    raise _Masked
    except _Masked:
        score = None
    return RewardResult(score, hard_rate, soft_score, len(hard), len(soft), undecided, True)


def _format_failure(inst: Instance, config: RewardConfig, truncated: bool) -> RewardResult:
    n = inst.counts()
    score = None if config.unfinished_think == "mask" else 0.0
    return RewardResult(score, 0.0, 0.0, n["hard"], n["soft"], 0, False, truncated)


def undecided_result(inst: Instance, config: RewardConfig, *, timeout: bool = False) -> RewardResult:
    """The reward of a sample that could not be judged at all (its time budget ran out, the reward was closed):
    every constraint undecided, under ``config.undecided`` (fail: 0; drop/mask: masked)."""
    n = inst.counts()
    total = n["hard"] + n["soft"]
    score = 1.0 if not total else (0.0 if config.undecided == "fail" else None)
    return RewardResult(score, 0.0, 0.0, n["hard"], n["soft"], total, True, False, timeout)


def reward_batch(scorer: Scorer, instances: Sequence[Instance], responses: Sequence[str],
                 config: RewardConfig | None = None, *, prefilled: Sequence[bool | None] | None = None,
                 truncated: Sequence[bool] | None = None) -> list[RewardResult]:
    """Rewards of ``responses[i]`` for ``instances[i]`` (see :func:`reward_batch_scored`)."""
    return [r for r, _, _ in reward_batch_scored(scorer, instances, responses, config, prefilled=prefilled,
                                              truncated=truncated)]


def reward_batch_scored(scorer: Scorer, instances: Sequence[Instance], responses: Sequence[str],
                        config: RewardConfig | None = None, *, prefilled: Sequence[bool | None] | None = None,
                        truncated: Sequence[bool] | None = None,
                        ) -> list[tuple[RewardResult, ScoredResponse | None, Instance]]:
    """Rewards of ``responses[i]`` for ``instances[i]``: one pass through ``scorer`` for the whole batch.

    Each distinct (instance, answer) is judged once, however often it occurs (GRPO groups repeat prompts and
    often responses too). ``prefilled[i]``: sample i's rendered prompt left ``<think>`` open (None: unknown;
    ``config.think_prefilled`` overrides); ``truncated[i]``: it hit the length limit without EOS.
    """
    config = config or RewardConfig()
    # (the reward, the scored response it came from (None: not judged, a format failure), the instance as judged)
    if len(instances) != len(responses):
        raise ValueError(f"reward_batch: got {len(instances)} instances but {len(responses)} responses")
    out: list[tuple[RewardResult, ScoredResponse | None, Instance] | None] = [None] * len(responses)
    keys: dict[tuple[str, str, str, str], int] = {}
    todo_inst: list[Instance] = []
    todo_resp: list[str] = []
    todo_rows: list[Instance] = []  # the rows as given (todo_inst: as judged)
    where: list[tuple[int, int]] = []  # (sample, unique index)
    for name, seq in (("prefilled", prefilled), ("truncated", truncated)):
        if seq is not None and len(seq) != len(responses):
            raise ValueError(f"reward_batch: got {len(seq)} {name} flags for {len(responses)} responses")
    for k, (inst, resp) in enumerate(zip(instances, responses, strict=True)):
        if not isinstance(resp, str):
            raise TypeError(f"reward_batch: responses[{k}] must be a string, got {type(resp).__name__}")
        pre = config.think_prefilled
        if pre is None:
            pre = bool(prefilled[k]) if prefilled is not None and prefilled[k] is not None else False
        cut = bool(truncated[k]) if truncated is not None else False
        answer, finished = strip_reasoning(resp, prefilled=pre)
        if not finished or cut:
            if config.unfinished_think != "keep":
                out[k] = (_format_failure(inst, config, cut), None, inst)
                continue
            answer = resp
        key = (inst.id, inst.prompt, repr(inst.constraints), answer)
        if key not in keys:
            keys[key] = len(todo_inst)
            todo_rows.append(inst)
            todo_inst.append(judged_instance(inst, config))
            todo_resp.append(answer)
        where.append((k, keys[key]))
    if todo_inst:
        scored = scorer.score_batch(todo_inst, todo_resp, mode=config.mode, granularity=config.granularity)
        results = [formula_score(s, config, i) for s, i in zip(scored, todo_inst, strict=True)]
        results = [_row_counts(r, o, i) for r, o, i in zip(results, todo_rows, todo_inst, strict=True)]
        for k, u in where:
            out[k] = (results[u], scored[u], todo_inst[u])
    assert all(r is not None for r in out)
    return out  # type: ignore[return-value]


def _row_counts(r: RewardResult, row: Instance, judged: Instance) -> RewardResult:
    """``soft_total`` counts the row's soft constraints (less those ``rule_llm_code='rule'`` made hard), not the
    stand-ins of ``judge_sees='name'`` (several judged as one) or ``soft_when_none='judge'`` (none judged as one)."""
    if judged is row:
        return r
    n = row.counts()["soft"] - (judged.counts()["hard"] - row.counts()["hard"])
    return r if n == r.soft_total else dataclasses.replace(r, soft_total=n)


def joint_judgement(scored: ScoredResponse, instance: Instance) -> Verdict | None:
    """The item-level joint judgement of a response's soft constraints (verif/prob), or None when it has none:
    the verdict repeated on each plain llm constraint (its ``prob`` is P(yes) where the verifier reports it)."""
    for c, r in zip(instance.constraints, scored.constraints, strict=True):
        if _joint(c):
            return r.verdict
    return None
