"""IFBench (Pyatkin et al. 2025): IFEval's metrics over 58 out-of-distribution constraint types.

Rows have IFEval's shape (``key, prompt, instruction_id_list, kwargs``) with ids such as ``count:word_count_range``;
they score once the IFBench checkers are registered in ``checkers`` (until then loading names the unknown id).
Hub ``allenai/IFBench_test`` (split ``train``); a local copy is ``../shared/data/ifbench/IFBench_test.jsonl``.
"""

from __future__ import annotations

from benchmarks.ifeval import IFEvalStyle


class IFBench(IFEvalStyle):
    name = "ifbench"
    hub_id = "allenai/IFBench_test"
    hub_split = "train"


BENCHMARK = IFBench()
