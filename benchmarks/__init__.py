"""Instruction-following benchmarks scored with the same checkers and verifier as the RL reward.

``REGISTRY`` maps a benchmark name to the module that defines it; each module has a module-level
``BENCHMARK`` (an instance of a :class:`benchmarks.base.Benchmark` subclass). Modules load lazily, so
``verif eval --benchmarks ifeval`` never imports the others. The contract is in ``benchmarks/base.py``.
"""

from __future__ import annotations

import importlib

from benchmarks.base import Benchmark, BenchmarkError, Sample, Turn, aggregate

REGISTRY: dict[str, str] = {
    "ifeval": "benchmarks.ifeval",
    "ifbench": "benchmarks.ifbench",
    "verinstruct": "benchmarks.verinstruct_heldout",
    "followbench": "benchmarks.followbench",
    "followbench_authors_judge": "benchmarks.followbench_authors_judge",
    "infobench": "benchmarks.infobench",
    "infobench_conversation": "benchmarks.infobench_conversation",
    "multi_if": "benchmarks.multi_if",
}

__all__ = ["REGISTRY", "Benchmark", "BenchmarkError", "Sample", "Turn", "aggregate", "get", "names"]


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> Benchmark:
    """The registered benchmark ``name``; an unknown or not-yet-available one is a one-line error."""
    key = name.strip().lower().replace("-", "_")
    if key not in REGISTRY:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(REGISTRY)}")
    try:
        mod = importlib.import_module(REGISTRY[key])
    except ModuleNotFoundError as e:
        if e.name == REGISTRY[key]:
            raise BenchmarkError(f"benchmark {name!r} is registered but its module {e.name} is not installed") from None
        raise
    bench = mod.BENCHMARK
    if not isinstance(bench, Benchmark):
        raise TypeError(f"{REGISTRY[key]}.BENCHMARK must be a Benchmark instance, got {type(bench).__name__}")
    return bench
