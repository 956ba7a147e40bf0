"""VerInstruct held-out: hard pass rate, soft pass rate and the mean VerIF reward, i.e. what RL optimised.

Rows are any VerInstruct form (raw VerIF ``checkers``/``functions``, typed, flattened, or IFEval), read with
``verinstruct``'s own converter; a held-out file is usually local (``--data PATH``, e.g. rows kept out of
training by ``verif data convert``). Hard constraints run as registry checks or sandboxed dataset code,
soft ones through the LLM verifier (``--verifier``), exactly as the reward scores them.

Metrics: ``hard_pass_rate`` / ``soft_pass_rate`` are constraint-level (passed / total hard or soft
constraints over all samples; undecided counts as not passed and is reported); ``verif_reward`` is the mean
per-sample VerIF reward computed by ``verinstruct.reward.reward_batch`` (the function the RL reward calls:
hard pass rate x ONE item-level judgement of all soft constraints, x 1 without soft constraints), stored per
sample as ``turn["extra"]["reward"]``; a masked reward (undecided, see ``verinstruct.reward``) counts as
undecided. The joint judgement behind it is stored too, ``turn["extra"]["joint_soft"]`` = ``{"passed", "p_yes"}``
(None without soft constraints): the reward multiplies by ONE verdict on all soft constraints together, while
``soft_pass_rate`` judges each constraint on its own, so the two can differ (88.9 vs 44.4 on the sample file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from benchmarks.base import Benchmark, BenchmarkError, Record, Sample, Turn, Value, turn_scores
from verinstruct.schema import Instance, SchemaError


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

    def extra_scores(self, get_scorer: Callable[[bool], Any], instances: Sequence[Instance],
                     texts: Sequence[str]) -> list[dict[str, Any]] | None:
        """The RL reward's parts per sample (one scoring pass over the chunk through the function verl calls), with
        the joint soft judgement they came from."""
        from verinstruct.reward import joint_judgement, reward_batch_scored

        needs_llm = any(c.kind == "soft" for inst in instances for c in inst.constraints)
        out = []
        for r, scored, judged in reward_batch_scored(get_scorer(needs_llm), instances, texts):
            joint = joint_judgement(scored, judged) if scored is not None else None
            out.append({"reward": r.to_dict(), "joint_soft": None if joint is None else
                        {"passed": joint.passed, "p_yes": joint.prob, "error": joint.error}})
        return out

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        s = turn_scores(record, 0, "strict")
        if s is None:
            return
        for c in s["constraints"]:
            yield f"{c['kind']}_pass_rate", c["passed"]
        extra = (record.get("turns") or [{}])[0].get("extra") or {}
        reward = (extra.get("reward") or {}).get("score")
        yield "verif_reward", float(reward) if reward is not None else None


BENCHMARK = VerInstructHeldout()
