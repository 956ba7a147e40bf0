"""Verdicts per second of the embedded verifier: ``score`` (one forward pass) vs ``generate`` (decode).

Runs both modes with the same model on the hand-labelled items in perf/data/verifier_items.jsonl
(balanced yes/no soft constraints), cache disabled, after a warm-up. Reports accuracy of each mode
against the gold labels next to the majority-class baseline (undecided verdicts count as wrong).
Generation uses ``--max-tokens`` (default 64) so the small model can answer but not ramble.
The last line is ``ratio: X`` = score verdicts/s / generate verdicts/s.

    python perf/bench_verifier.py [--limit N] [--template en|zh|PATH] [--model transformers:default]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from verifier import JudgeRequest, Verifier, build_verifier

DATA = Path(__file__).resolve().parent / "data" / "verifier_items.jsonl"


def load_items(limit: int | None) -> tuple[list[JudgeRequest], list[bool]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit:
        # keep the subset balanced: interleave yes and no items
        yes = [r for r in rows if r["label"]]
        no = [r for r in rows if not r["label"]]
        rows = [r for pair in zip(yes, no, strict=False) for r in pair][:limit]
    reqs = [JudgeRequest(r["instruction"], r["response"], (r["constraint"],)) for r in rows]
    return reqs, [bool(r["label"]) for r in rows]


def run(v: Verifier, reqs: list[JudgeRequest], repeats: int) -> tuple[float, list]:
    v.judge_batch(reqs[: min(8, len(reqs))])  # warm-up
    times, out = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out = v.judge_batch(reqs)
        times.append(time.perf_counter() - t)
    return statistics.median(times), [row[0] for row in out]


def report(name: str, seconds: float, verdicts: list, labels: list[bool]) -> float:
    n = len(labels)
    correct = sum(v.passed is not None and v.passed == g for v, g in zip(verdicts, labels, strict=True))
    undecided = sum(v.passed is None for v in verdicts)
    said_yes = sum(v.passed is True for v in verdicts)
    rate = n / seconds
    probs = [(v.prob, g) for v, g in zip(verdicts, labels, strict=True) if v.prob is not None]
    auc = f"  P(yes) ROC-AUC {roc_auc(probs):.3f}" if probs else ""
    print(
        f"{name:9s} {rate:8.2f} verdicts/s ({seconds:.2f} s for {n})  accuracy {correct / n:.3f}  "
        f"undecided {undecided}  said yes {said_yes}{auc}"
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="use only the first N items (balanced)")
    ap.add_argument("--template", default="en", help="judge template: en, zh or a file path (default en)")
    ap.add_argument(
        "--model", default="transformers:default", help="verifier spec (default transformers:default)"
    )
    ap.add_argument("--max-tokens", type=int, default=64, help="generate-mode max_tokens (default 64)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats for score mode (median)")
    ap.add_argument("--gen-repeats", type=int, default=1, help="timed repeats for generate mode (median)")
    ap.add_argument("--batch-size", type=int, default=8, help="backend batch size")
    args = ap.parse_args()

    reqs, labels = load_items(args.limit)
    t = time.perf_counter()
    score_v = build_verifier(args.model, mode="score", template=args.template, batch_size=args.batch_size)
    print(
        f"model load {time.perf_counter() - t:.1f} s ({score_v.backend.model}); items {len(reqs)}; "
        f"template {score_v.template.name}; generate max_tokens {args.max_tokens}; cache off"
    )
    gen_v = Verifier(score_v.backend, mode="generate", template=score_v.template, max_tokens=args.max_tokens)
    majority = max(sum(labels), len(labels) - sum(labels)) / len(labels)
    print(f"majority-class baseline accuracy {majority:.3f}")
    s_time, s_verdicts = run(score_v, reqs, args.repeats)
    s_rate = report("score", s_time, s_verdicts, labels)
    g_time, g_verdicts = run(gen_v, reqs, args.gen_repeats)
    g_rate = report("generate", g_time, g_verdicts, labels)
    errs = [v.error for v in g_verdicts if v.error]
    if errs:
        print(f"generate undecided example: {errs[0][:120]}", file=sys.stderr)
    print(f"ratio: {s_rate / g_rate:.2f}")


if __name__ == "__main__":
    main()
