"""Verdicts per second of the embedded verifier: ``score`` (one forward pass) vs ``generate`` (decoding).

Three rows, same model and backend, cache off, after a warm-up, on the hand-labelled items in
perf/data/verifier_items.jsonl (balanced yes/no soft constraints, read in a fixed yes/no-interleaved
order so every prefix of it is balanced):

* ``score``: answer-only template (``--template``, default ``en``), P(Yes) vs P(No) after the prompt,
  on all items (median of ``--repeats``).
* ``gen-reason``: generate mode as meant, with the reasoning template (``--gen-template``, default
  ``en-reason``: brief reasoning, then ``Final answer: [[1]]/[[0]]``), ``--max-tokens`` (default 256).
  Decoding is ~30x slower on this CPU, so it runs on the first ``--gen-items`` items (default 40).
* ``gen-answer``: generate mode with the answer-only template and the same max_tokens, same subset.

Timing uses ``--threads`` torch threads (default 1; see the option's help). Each row prints verdicts/s, mean generated tokens per verdict, accuracy against the gold labels
(undecided counts as wrong), undecided count and the majority-class baseline of the items it ran on.
The last line is ``ratio: X`` = score verdicts/s / gen-reason verdicts/s.

    python perf/bench_verifier.py [--limit N] [--gen-items K] [--max-tokens T] [--batch-size B]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checkers.base import Verdict
from verifier import JudgeRequest, Verifier, build_verifier, load_template
from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult

DATA = Path(__file__).resolve().parent / "data" / "verifier_items.jsonl"


def load_items(limit: int | None = None) -> tuple[list[JudgeRequest], list[bool]]:
    """All items (or the first ``limit``) in yes/no-interleaved file order: every prefix is balanced."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    yes = [r for r in rows if r["label"]]
    no = [r for r in rows if not r["label"]]
    rows = [r for pair in zip(yes, no, strict=False) for r in pair]
    rows += yes[len(no) :] + no[len(yes) :]
    rows = rows[:limit] if limit else rows
    reqs = [JudgeRequest(r["instruction"], r["response"], (r["constraint"],)) for r in rows]
    return reqs, [bool(r["label"]) for r in rows]


class CountingBackend:
    """Passes calls through and counts generated tokens (the Verifier does not report them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.model = inner.model
        self.generated = 0

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        out = self.inner.generate(batch, config)
        self.generated += sum(r.completion_tokens for r in out)
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        return self.inner.score(batch, candidates)

    def close(self) -> None:
        self.inner.close()


def timed(
    v: Verifier, counter: CountingBackend, reqs: list[JudgeRequest], repeats: int
) -> tuple[float, list[Verdict], float]:
    """(median seconds, verdicts, generated tokens per verdict) after a small warm-up."""
    v.judge_batch(reqs[: min(4, len(reqs))])
    times: list[float] = []
    out: list[list[Verdict]] = []
    tokens = 0
    for _ in range(repeats):
        counter.generated = 0
        t = time.perf_counter()
        out = v.judge_batch(reqs)
        times.append(time.perf_counter() - t)
        tokens = counter.generated
    return statistics.median(times), [row[0] for row in out], tokens / max(1, len(reqs))


def report(name: str, seconds: float, verdicts: list[Verdict], labels: list[bool], tokens: float) -> float:
    n = len(labels)
    correct = sum(v.passed is not None and v.passed == g for v, g in zip(verdicts, labels, strict=True))
    undecided = sum(v.passed is None for v in verdicts)
    said_yes = sum(v.passed is True for v in verdicts)
    majority = max(sum(labels), n - sum(labels)) / n
    rate = n / seconds
    probs = [(v.prob, g) for v, g in zip(verdicts, labels, strict=True) if v.prob is not None]
    auc = f"  P(yes) ROC-AUC {roc_auc(probs):.3f}" if probs else ""
    print(
        f"{name:10s} {rate:7.3f} verdicts/s ({seconds:6.1f} s for {n:3d})  gen tokens/verdict {tokens:6.1f}  "
        f"accuracy {correct / n:.3f} (majority baseline {majority:.3f})  undecided {undecided}  "
        f"said yes {said_yes}{auc}",
        flush=True,
    )
    return rate


def roc_auc(scored: list[tuple[float, bool]]) -> float:
    """Probability that a random positive item gets a higher P(yes) than a random negative (ties 1/2)."""
    pos = [p for p, g in scored if g]
    neg = [p for p, g in scored if not g]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="use only the first N items (balanced)")
    ap.add_argument("--gen-items", type=int, default=40, help="items for the generate rows (default 40)")
    ap.add_argument("--template", default="en", help="answer-only template: en, zh or a path (default en)")
    ap.add_argument("--gen-template", default="en-reason", help="reasoning template (default en-reason)")
    ap.add_argument("--model", default="transformers:default", help="verifier spec")
    ap.add_argument("--max-tokens", type=int, default=256, help="generate max_tokens (default 256)")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats for score (median; default 2)")
    ap.add_argument("--gen-repeats", type=int, default=1, help="timed repeats for generate (default 1)")
    ap.add_argument("--batch-size", type=int, default=8, help="score batch size (default 8)")
    ap.add_argument("--gen-batch-size", type=int, default=8, help="generate batch size (default 8)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on this shared 2-core machine 2 threads were 5-10x slower)",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    reqs, labels = load_items(args.limit)
    k = min(args.gen_items, len(reqs))
    t = time.perf_counter()
    base = build_verifier(args.model, mode="score", template=args.template, batch_size=args.batch_size)
    backend = base.backend
    counter = CountingBackend(backend)
    score_v = Verifier(counter, mode="score", template=base.template)  # type: ignore[arg-type]
    reason_v = Verifier(  # type: ignore[arg-type]
        counter, mode="generate", template=load_template(args.gen_template), max_tokens=args.max_tokens
    )
    answer_v = Verifier(counter, mode="generate", template=base.template, max_tokens=args.max_tokens)  # type: ignore[arg-type]
    load = os.getloadavg()
    print(
        f"model {backend.model} loaded in {time.perf_counter() - t:.1f} s; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; torch threads {args.threads}; "
        "cache off\n"
        f"score: template {score_v.template.name}, {len(reqs)} items, batch {args.batch_size}, "
        f"median of {args.repeats}\n"
        f"generate: templates {reason_v.template.name} (reasoning) and {answer_v.template.name} "
        f"(answer-only), greedy, max_tokens {args.max_tokens}, batch {args.gen_batch_size}, "
        f"on the first {k} items (a fixed balanced subset; decoding is too slow for all {len(reqs)})",
        flush=True,
    )
    backend.batch_size = args.batch_size
    s_time, s_verdicts, s_tokens = timed(score_v, counter, reqs, args.repeats)
    s_rate = report("score", s_time, s_verdicts, labels, s_tokens)
    backend.batch_size = args.gen_batch_size
    sub, sub_labels = reqs[:k], labels[:k]
    r_time, r_verdicts, r_tokens = timed(reason_v, counter, sub, args.gen_repeats)
    r_rate = report("gen-reason", r_time, r_verdicts, sub_labels, r_tokens)
    a_time, a_verdicts, a_tokens = timed(answer_v, counter, sub, args.gen_repeats)
    a_rate = report("gen-answer", a_time, a_verdicts, sub_labels, a_tokens)
    for name, verdicts in (("gen-reason", r_verdicts), ("gen-answer", a_verdicts)):
        errs = [v.error for v in verdicts if v.error]
        if errs:
            print(f"{name} undecided example: {errs[0][:160]}", file=sys.stderr)
    print(f"score / gen-answer: {s_rate / a_rate:.2f}")
    print(f"ratio: {s_rate / r_rate:.2f}")


if __name__ == "__main__":
    main()
