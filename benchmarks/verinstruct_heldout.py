"""VerInstruct held-out: hard pass rate, soft pass rate and the mean VerIF reward, i.e. what RL optimised.

Rows are any VerInstruct form (raw VerIF ``checkers``/``functions``, typed, flattened, or IFEval), read with
``verinstruct``'s own converter; a held-out file is usually local (``--data PATH``, e.g. rows kept out of
training by ``verif data convert``). Hard constraints run as registry checks or sandboxed dataset code,
soft ones through the LLM verifier (``--verifier``), exactly as the reward scores them.

Metrics: ``hard_pass_rate`` / ``soft_pass_rate`` are constraint-level (passed / total hard or soft
constraints over all samples; undecided counts as not passed and is reported); ``verif_reward`` is the mean
per-sample VerIF reward (hard pass rate x [every soft constraint passed], x 1 without soft constraints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from benchmarks.base import Benchmark, BenchmarkError, Record, Sample, Turn, Value, turn_scores
from verinstruct.schema import SchemaError


def verif_reward(scored: Mapping[str, Any]) -> float:
    """VerIF's reward from one ScoredResponse dict (undecided = failed).

    TODO(merge): the formula's home is ``verinstruct/reward.py`` (rl branch). At merge, implement
    ``VerInstructHeldout.extra_scores`` as ``[r.to_dict() for r in reward_batch(get_scorer(True), instances,
    texts)]`` and read ``turn["extra"]["score"]`` here, so the benchmark and the reward share one formula
    (including its item-level joint judgement of soft constraints, which this stand-in approximates by
    requiring every per-constraint soft verdict to pass).
    """
    hard, soft = scored["hard"], scored["soft"]
    hard_rate = hard["passed"] / hard["total"] if hard["total"] else 1.0
    soft_ok = 1.0 if soft["passed"] == soft["total"] else 0.0
    return hard_rate * soft_ok


class VerInstructHeldout(Benchmark):
    name = "verinstruct"
    hub_id = "THU-KEG/VerInstruct"
    hub_split = "test"
    modes = ("strict",)
    headline = ("hard_pass_rate", "soft_pass_rate", "verif_reward")
    needs_verifier = True

    def to_sample(self, row: Mapping[str, Any], where: str) -> Sample:
        from verinstruct.dataset import _row_to_instance

        try:
            inst = _row_to_instance(dict(row), where, None)
        except SchemaError as e:
            raise BenchmarkError(str(e)) from None
        if inst.messages:
            msgs = tuple(dict(m) for m in inst.messages)
            system = "\n\n".join(m["content"] for m in msgs if m["role"] == "system") or None
            turn_msgs = tuple(m for m in msgs if m["role"] != "system")
            return Sample(inst.id, (Turn(turn_msgs, inst),), system, {})
        return Sample.single(inst.id, inst.prompt, inst)

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        s = turn_scores(record, 0, "strict")
        if s is None:
            return
        for c in s["constraints"]:
            yield f"{c['kind']}_pass_rate", c["passed"]
        yield "verif_reward", verif_reward(s)


BENCHMARK = VerInstructHeldout()
