"""IFEval (Zhou et al. 2023): prompt- and instruction-level accuracy, strict and loose.

Google's ``input_data.jsonl`` (541 rows, Apache-2.0) ships as ``benchmarks/data/ifeval_input_data.jsonl``, so
IFEval runs offline; ``--data`` takes another copy and the Hub id ``google/IFEval`` has the same rows
(its ``kwargs`` carry every parameter name with None for unused ones: those are dropped, as the reference
evaluator does). IFBench reuses this class with its own checker ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from benchmarks.base import Benchmark, BenchmarkError, Record, Sample, Value, all_passed, verdicts
from verinstruct.schema import SchemaError


class IFEvalStyle(Benchmark):
    """Rows ``key, prompt, instruction_id_list, kwargs``; every instruction is a registry checker."""

    modes: ClassVar[tuple[str, ...]] = ("strict", "loose")
    headline: ClassVar[tuple[str, ...]] = ("prompt_strict", "prompt_loose", "inst_strict", "inst_loose")
    aggregations: ClassVar[Mapping[str, str]] = {
        f"{level}_{mode}": (f"prompts whose every instruction passes ({mode}) / prompts" if level == "prompt" else
                            f"instructions that pass ({mode}) / instructions, pooled over prompts")
        + "; undecided counts in the total, not as passed"
        for level in ("prompt", "inst") for mode in ("strict", "loose")}

    def to_sample(self, row: Mapping[str, Any], where: str) -> Sample:
        from verinstruct.convert import from_ifeval

        kwargs = row.get("kwargs")
        if isinstance(kwargs, list):
            kwargs = [{k: v for k, v in kw.items() if v is not None} if isinstance(kw, Mapping) else kw
                      for kw in kwargs]
            row = {**row, "kwargs": kwargs}
        try:
            inst = from_ifeval(row, where)
        except SchemaError as e:
            raise BenchmarkError(str(e)) from None
        return Sample.single(inst.id, inst.prompt, inst)

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        for mode in self.modes:
            vs = verdicts(record, 0, mode)
            yield f"prompt_{mode}", all_passed(vs)
            for v in vs:
                yield f"inst_{mode}", v


class IFEval(IFEvalStyle):
    name = "ifeval"
    hub_id = "google/IFEval"
    hub_split = "train"
    bundled = "data/ifeval_input_data.jsonl"


BENCHMARK = IFEval()
