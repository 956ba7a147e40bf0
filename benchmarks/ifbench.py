"""IFBench (Pyatkin et al. 2025): IFEval's metrics over 58 out-of-distribution constraint types.

Some of its checkers need NLTK data that may be missing (``ratio:stop_words``, ``words:start_verb``): their
verdicts are undecided and count as failures in the four headline rates, as the authors' numbers would if their
run could not check them; ``*_decided`` gives the same rates over decided verdicts only (prompt level: prompts
whose verdict is decided: a failed instruction decides a prompt even beside an undecided one), so a reader sees
both.

Rows have IFEval's shape (``key, prompt, instruction_id_list, kwargs``) with ids such as ``count:word_count_range``;
they score once the IFBench checkers are registered in ``checkers`` (until then loading names the unknown id).
Hub ``allenai/IFBench_test`` (split ``train``); a local copy is ``../shared/data/ifbench/IFBench_test.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from benchmarks.base import Record, Value
from benchmarks.ifeval import IFEvalStyle


class IFBench(IFEvalStyle):
    name = "ifbench"
    version = "2"  # 2: decided-only rates
    hub_id = "allenai/IFBench_test"
    hub_split = "train"
    headline: ClassVar[tuple[str, ...]] = (*IFEvalStyle.headline, *(f"{m}_decided" for m in IFEvalStyle.headline))
    aggregations: ClassVar[Mapping[str, str]] = {
        **IFEvalStyle.aggregations,
        **{f"{k}_decided": v.split(";")[0] + ", over decided verdicts only (undecided left out of the total)"
           for k, v in IFEvalStyle.aggregations.items()}}

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        for name, v in super().record_contributions(record):
            yield name, v
            if v is not None:
                yield f"{name}_decided", v


BENCHMARK = IFBench()
