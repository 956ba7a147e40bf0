"""Generate -> score -> append, for any registered benchmark; resumable after a kill at any point.

Samples are processed in fixed chunks (chunk k = samples[k*C:(k+1)*C] of the full, ordered sample list):
every turn of a chunk is generated as one batch per turn (turn t+1 carries the model's own answers to
turns 1..t), every scored turn goes through ``Scorer.score_batch`` once per mode, and the chunk's records
are appended to ``samples/<benchmark>.jsonl`` in ONE ``write`` (then fsync). A SIGKILL therefore leaves
whole chunks or a torn last line, which resume cuts off; completed samples are skipped by id. Chunks never
change composition between runs, so a resumed run batches exactly as an uninterrupted one and, with
deterministic generation, ends with byte-identical sample files and the same numbers.
Records hold no timings (they would differ between runs); throughput goes to the progress bar only.
A sample whose generation failed is stored with ``"failed": "turn N: error"`` and no scores; it counts in no
metric and the next run on the folder generates it again (the file is then rewritten in sample order).
A stored-response turn with no response under ``--missing-responses fail`` is not checked: its record says
``"missing_response": true`` and every constraint of the turn is False (see ``benchmarks.responses``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchmarks.base import Benchmark, Sample
from verifier.backends.base import GenerationConfig, GenResult, Messages

THINKING = ("strip", "keep")

#: finish reason of a stored-response turn that has no response, under ``--missing-responses fail``: the turn
#: is not checked; every constraint is False (the authors' ``empty_output``) and the record says
#: ``"missing_response": true``, so it is counted, never taken for an answer
MISSING_RESPONSE = "missing_response"
FAILED_AS_MISSING = "no response (--missing-responses fail: scored as failing, as the authors' run_eval.py does)"


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
    #: after the first chunk, say how long the rest will take (a CPU run of a real model is slow)
    estimate: bool = False


@dataclass
class BenchResult:
    benchmark: Benchmark
    records: list[dict[str, Any]]
    path: Path
    resumed: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    #: records whose generation failed: not scored, not in ``records``, generated again by the next run
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: loaded samples with no record (the run stopped before them)
    missing: int = 0
    #: the run stopped after a first chunk in which every generation failed
    stopped: bool = False


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


def generation_failure(record: Mapping[str, Any]) -> str | None:
    """Why ``record``'s generation failed (``"turn N: error"``), or None when every turn was generated.

    A failed sample is not an answer: it is stored unscored, left out of every metric, counted apart, and
    generated again by the next run on the same folder.
    """
    failed = record.get("failed")
    return failed if isinstance(failed, str) else None


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
                             error=f"not generated: {str(failed[i]).split(':')[0]} failed", finish_reason=None,
                             prompt_tokens=0, completion_tokens=0)
            else:
                tokens += res.completion_tokens
                if res.text is None:
                    error = " ".join((res.error or "no text returned").split())
                    failed[i] = f"turn {t + 1}: {error}"
                    entry.update(response=None, scored_text=None, thinking=None, error=error)
                elif res.finish_reason == MISSING_RESPONSE:
                    entry.update(response=None, scored_text=None, thinking=None, error=None, missing_response=True)
                    convs[i].append({"role": "assistant", "content": ""})
                else:
                    scored, how = remove_thinking(res.text, opts.thinking)
                    entry.update(response=res.text, scored_text=scored, thinking=how, error=None)
                    convs[i].append({"role": "assistant", "content": res.text})
                entry.update(finish_reason=res.finish_reason, prompt_tokens=res.prompt_tokens,
                             completion_tokens=res.completion_tokens)
            turns_out[i].append(entry)
    # score every turn of the generated samples that has an instance, once per mode, in one batch per mode
    todo = [(i, t) for i, s in enumerate(chunk) if failed[i] is None
            for t, turn in enumerate(s.turns) if turn.instance is not None and not turns_out[i][t].get("missing_response")]
    for i, s in enumerate(chunk):
        for t, turn in enumerate(s.turns):
            if failed[i] is None and turn.instance is not None and turns_out[i][t].get("missing_response"):
                turns_out[i][t]["scores"] = {mode: _failing(turn.instance) for mode in bench.modes}
    insts = [chunk[i].turns[t].instance for i, t in todo]
    needs_llm = any(c.needs_llm for inst in insts for c in inst.constraints)  # type: ignore[union-attr]
    for mode in bench.modes:
        scored = get_scorer(needs_llm).score_batch(insts, [turns_out[i][t]["scored_text"] for i, t in todo],
                                                   mode=mode) if todo else []
        for (i, t), sr in zip(todo, scored, strict=True):
            turns_out[i][t].setdefault("scores", {})[mode] = sr.to_dict()
    # extra scores see the raw response, as the RL reward does (it applies the reasoning rule itself: an
    # unclosed <think> is a format failure there, not an empty answer)
    extra = bench.extra_scores(get_scorer, insts, [turns_out[i][t]["response"] for i, t in todo]) \
        if todo else None
    if extra is not None:
        for (i, t), e in zip(todo, extra, strict=True):
            turns_out[i][t]["extra"] = e
    records = []
    for i, s in enumerate(chunk):
        for entry in turns_out[i]:
            entry.setdefault("scores", None)
        rec: dict[str, Any] = {"id": s.id, "benchmark": bench.name, "meta": dict(s.meta), "turns": turns_out[i]}
        if failed[i] is not None:
            rec["failed"] = failed[i]
        elif any(e.get("missing_response") for e in turns_out[i]):
            rec["missing_response"] = True
        records.append(rec)
    return records, tokens


def _failing(inst: Any) -> dict[str, Any]:
    """The scores of a turn with no response under ``--missing-responses fail``: every constraint False."""
    from checkers.base import Verdict
    from verinstruct.scoring import ConstraintResult, ScoredResponse

    return ScoredResponse(inst.id, tuple(ConstraintResult(c.name, c.kind, c.check_type,
                                                          Verdict(False, FAILED_AS_MISSING), c.text)
                                         for c in inst.constraints)).to_dict()


def run_benchmark(bench: Benchmark, samples: Sequence[Sample], generator: Generator | None,
                  get_scorer: Callable[[bool], Any], out_dir: Path, opts: RunOptions) -> BenchResult:
    """Resume ``samples/<name>.jsonl`` under ``out_dir`` and finish it (``generator`` None: only read it).

    Samples without a record, or whose generation failed, are generated; the result holds every record in
    the file (also those beyond this run's ``--limit``), loaded samples first in sample order. When a
    failed record was replaced, the file is rewritten in that order (atomically), so a run that needed a
    retry ends with the same file as one that did not. If the first chunk this run generates fails
    entirely, the run stops there (``stopped``): an unreachable server would fail every other chunk too.
    """
    path = out_dir / "samples" / f"{bench.name}.jsonl"
    done = read_done(path)
    by_id: dict[str, dict[str, Any]] = {}
    for r in done:
        by_id[str(r["id"])] = r
    superseded = len(done) != len(by_id)
    is_done = lambda i: i in by_id and generation_failure(by_id[i]) is None  # noqa: E731
    resumed = sum(1 for s in samples if is_done(s.id))
    size = max(1, opts.chunk_size)
    chunks = [samples[k:k + size] for k in range(0, len(samples), size)]
    tokens, t0, generated, stopped = 0, time.perf_counter(), 0, False
    if generator is not None and resumed < len(samples):
        from verinstruct.progress import Progress

        path.parent.mkdir(parents=True, exist_ok=True)
        with Progress(len(samples) - resumed, f"{bench.name}", unit="samples",
                      enabled=None if opts.progress else False) as bar:
            for chunk in chunks:
                pending = [s for s in chunk if not is_done(s.id)]
                if not pending:
                    continue
                records, n_tok = run_chunk(bench, pending, generator, get_scorer, opts)
                append_records(path, records)
                ok = 0
                for r in records:
                    superseded |= r["id"] in by_id
                    by_id[r["id"]] = r
                    ok += generation_failure(r) is None
                tokens += n_tok
                bar.update(len(records))
                if generated == 0 and ok == 0:
                    stopped = True
                    break
                if generated == 0 and opts.estimate:
                    _estimate(bench.name, len(records), len(samples) - resumed - len(records), tokens,
                              time.perf_counter() - t0, bar)
                generated += ok
    order = [s.id for s in samples if s.id in by_id]
    loaded = set(order)
    order += [i for i in by_id if i not in loaded]
    records = [by_id[i] for i in order]
    if superseded:
        _rewrite(path, records)
    return BenchResult(bench, [r for r in records if generation_failure(r) is None], path, resumed,
                       {"completion_tokens": tokens, "seconds": round(time.perf_counter() - t0, 3)},
                       failed=[r for r in records if generation_failure(r) is not None],
                       missing=sum(1 for s in samples if s.id not in by_id), stopped=stopped)


def _estimate(name: str, n: int, left: int, tokens: int, seconds: float, bar: Any) -> None:
    """After the first chunk of a slow (CPU) run: how long the rest will take at that speed."""
    if left <= 0 or seconds <= 0:
        return
    from verinstruct.progress import _fmt_seconds

    bar.echo(f"verif eval: {name}: the first {n} samples took {_fmt_seconds(seconds)} ({tokens / seconds:.1f} "
             f"tokens/s); the other {left} need about {_fmt_seconds(seconds / n * left)} more", err=True)


def _rewrite(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Replace ``path`` by ``records`` atomically (temp file, fsync, rename): a kill keeps old or new."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    append_records(tmp, records)
    os.replace(tmp, path)
