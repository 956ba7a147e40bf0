"""Generate -> score -> append, for any registered benchmark; resumable after a kill at any point.

Samples are processed in fixed chunks (chunk k = samples[k*C:(k+1)*C] of the full, ordered sample list):
every turn of a chunk is generated as one batch per turn (turn t+1 carries the model's own answers to
turns 1..t), every scored turn goes through ``Scorer.score_batch`` once per mode, and the chunk's records
are appended to ``samples/<benchmark>.jsonl`` in ONE ``write`` (then fsync). A SIGKILL therefore leaves
whole chunks or a torn last line, which resume cuts off; completed samples are skipped by id. Chunks never
change composition between runs, so a resumed run batches exactly as an uninterrupted one and, with
deterministic generation, ends with byte-identical sample files and the same numbers.
Records hold no timings (they would differ between runs); throughput goes to the progress bar only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchmarks.base import Benchmark, BenchmarkError, Sample
from verifier.backends.base import GenerationConfig, GenResult, Messages

THINKING = ("strip", "keep")


@dataclass(frozen=True, slots=True)
class GenRequest:
    sample_id: str
    turn: int
    messages: Messages


class Generator(Protocol):
    """Anything that answers a batch of conversations (a model backend, or stored responses)."""

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]: ...


@dataclass
class BackendGenerator:
    """A ``verifier.backends`` backend (transformers / vLLM / OpenAI-compatible) with fixed sampling settings."""

    backend: Any
    config: GenerationConfig

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        return self.backend.generate([r.messages for r in requests], self.config)


@dataclass
class RunOptions:
    system_prompt: str | None = None
    thinking: str = "strip"
    chunk_size: int = 16
    progress: bool = True


@dataclass
class BenchResult:
    benchmark: Benchmark
    records: list[dict[str, Any]]
    path: Path
    resumed: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------- thinking


def remove_thinking(text: str, mode: str) -> tuple[str, str]:
    """(text to score, what happened: none/removed/unfinished/kept). Uses the verifier's own reasoning rule."""
    if mode == "keep":
        return text, "kept"
    from verifier.reasoning import split_reasoning

    r = split_reasoning(text)
    if not r.finished:  # <think> never closed: the model gave no answer; the empty answer is what is scored
        return "", "unfinished"
    return (r.answer.strip(), "removed") if r.removed else (text, "none")


# --------------------------------------------------------------------------------------- file I/O


def read_done(path: Path) -> list[dict[str, Any]]:
    """Complete records already in ``path``; a torn tail (killed mid-write) is truncated away."""
    from verinstruct.jsonl import complete_records

    return complete_records(path)


def append_records(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """All of a chunk's records in one write() + fsync: a kill leaves all of them or a torn tail."""
    if not records:
        return
    buf = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(buf)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------- the run


def _undecided_scores(inst: Any, why: str) -> dict[str, Any]:
    cons = [{"name": c.name, "kind": c.kind, "check": c.check_type, "passed": None, "reason": "",
             "error": why} for c in inst.constraints]
    hard = sum(c.kind == "hard" for c in inst.constraints)
    soft = len(cons) - hard
    return {"id": inst.id, "constraints": cons, "hard_pass_rate": 0.0 if hard else 1.0,
            "soft_pass_rate": 0.0 if soft else 1.0, "hard": {"passed": 0, "total": hard, "undecided": hard},
            "soft": {"passed": 0, "total": soft, "undecided": soft}}


def run_chunk(bench: Benchmark, chunk: Sequence[Sample], generator: Generator,
              get_scorer: Callable[[bool], Any], opts: RunOptions) -> tuple[list[dict[str, Any]], int]:
    """Records for ``chunk`` (in order) and the number of completion tokens generated."""
    convs: list[list[dict[str, str]]] = []
    for s in chunk:
        conv: list[dict[str, str]] = []
        system = "\n\n".join(p for p in (opts.system_prompt, s.system) if p)
        if system:
            conv.append({"role": "system", "content": system})
        convs.append(conv)
    turns_out: list[list[dict[str, Any]]] = [[] for _ in chunk]
    failed: list[str | None] = [None] * len(chunk)
    tokens = 0
    for t in range(max(len(s.turns) for s in chunk)):
        active = [i for i, s in enumerate(chunk) if t < len(s.turns)]
        ready = [i for i in active if failed[i] is None]
        reqs = []
        for i in ready:
            convs[i].extend(dict(m) for m in chunk[i].turns[t].messages)
            reqs.append(GenRequest(chunk[i].id, t, [dict(m) for m in convs[i]]))
        results = generator.generate(reqs) if reqs else []
        if len(results) != len(reqs):
            raise RuntimeError(f"generator returned {len(results)} results for {len(reqs)} requests")
        by_i = dict(zip(ready, results, strict=True))
        for i in active:
            res = by_i.get(i)
            entry: dict[str, Any] = {"messages": [dict(m) for m in convs[i]] if res else None}
            if res is None:
                entry.update(response=None, scored_text=None, thinking=None,
                             error=f"not generated: turn {failed[i]} failed", finish_reason=None,
                             prompt_tokens=0, completion_tokens=0)
            else:
                tokens += res.completion_tokens
                if res.text is None:
                    failed[i] = str(t + 1)
                    entry.update(response=None, scored_text=None, thinking=None,
                                 error=res.error or "no text returned")
                else:
                    scored, how = remove_thinking(res.text, opts.thinking)
                    entry.update(response=res.text, scored_text=scored, thinking=how, error=None)
                    convs[i].append({"role": "assistant", "content": res.text})
                entry.update(finish_reason=res.finish_reason, prompt_tokens=res.prompt_tokens,
                             completion_tokens=res.completion_tokens)
            turns_out[i].append(entry)
    # score every turn that has an instance, once per mode, in one batch per mode
    todo = [(i, t) for i, s in enumerate(chunk) for t, turn in enumerate(s.turns)
            if turn.instance is not None and turns_out[i][t]["error"] is None]
    insts = [chunk[i].turns[t].instance for i, t in todo]
    needs_llm = any(c.needs_llm for inst in insts for c in inst.constraints)  # type: ignore[union-attr]
    for mode in bench.modes:
        scored = get_scorer(needs_llm).score_batch(insts, [turns_out[i][t]["scored_text"] for i, t in todo],
                                                   mode=mode) if todo else []
        for (i, t), sr in zip(todo, scored, strict=True):
            turns_out[i][t].setdefault("scores", {})[mode] = sr.to_dict()
    extra = bench.extra_scores(get_scorer, insts, [turns_out[i][t]["scored_text"] for i, t in todo]) \
        if todo else None
    if extra is not None:
        for (i, t), e in zip(todo, extra, strict=True):
            turns_out[i][t]["extra"] = e
    for i, s in enumerate(chunk):
        for t, turn in enumerate(s.turns):
            entry = turns_out[i][t]
            if turn.instance is None:
                entry["scores"] = None
            elif entry["error"] is not None:
                entry["scores"] = {m: _undecided_scores(turn.instance, f"generation failed: {entry['error']}")
                                   for m in bench.modes}
    records = [{"id": s.id, "benchmark": bench.name, "meta": dict(s.meta), "turns": turns_out[i]}
               for i, s in enumerate(chunk)]
    return records, tokens


def run_benchmark(bench: Benchmark, samples: Sequence[Sample], generator: Generator,
                  get_scorer: Callable[[bool], Any], out_dir: Path, opts: RunOptions) -> BenchResult:
    """Resume ``samples/<name>.jsonl`` under ``out_dir`` and finish it; records returned in sample order."""
    path = out_dir / "samples" / f"{bench.name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    by_id = {r["id"]: r for r in read_done(path)}
    wanted = {s.id for s in samples}
    resumed = sum(1 for i in by_id if i in wanted)
    size = max(1, opts.chunk_size)
    chunks = [samples[k:k + size] for k in range(0, len(samples), size)]
    bar = _bar(bench.name, len(samples), resumed, opts.progress)
    tokens, t0 = 0, time.perf_counter()
    try:
        for chunk in chunks:
            pending = [s for s in chunk if s.id not in by_id]
            if not pending:
                continue
            records, n_tok = run_chunk(bench, pending, generator, get_scorer, opts)
            append_records(path, records)
            for r in records:
                by_id[r["id"]] = r
            tokens += n_tok
            if bar is not None:
                bar.update(len(records))
                dt = time.perf_counter() - t0
                bar.set_postfix_str(f"{tokens / dt:.1f} tok/s" if dt > 0 and tokens else "", refresh=True)
    finally:
        if bar is not None:
            bar.close()
    missing = [s.id for s in samples if s.id not in by_id]
    if missing:
        raise BenchmarkError(f"benchmark {bench.name!r}: {len(missing)} samples have no record (first {missing[0]!r})")
    return BenchResult(bench, [by_id[s.id] for s in samples], path, resumed,
                       {"completion_tokens": tokens, "seconds": round(time.perf_counter() - t0, 3)})


def _bar(name: str, total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="sample", file=sys.stderr, dynamic_ncols=True)
