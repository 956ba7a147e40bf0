"""IFBench strict+loose over a large IFBench-format file: the whole `verif check` process vs AllenAI's reference.

Run: ``python perf/bench_ifbench.py --reference /path/to/IFBench [--rows 6000] [--repeats 3]``.

The input is ``--rows`` deterministic perturbations of IFBench's sample outputs (``perf/ifbench_perturb.py``:
every sample row under every perturbation once, then random ones), without the two instruction ids whose
reference checkers need NLTK data that is not installable. Our side is a fresh ``verif check --input F
--output O`` process each repeat (interpreter start, imports, parsing, both modes, the report, writing O).
It runs after one warm-up run of the same command (which also writes the bytecode cache).
The reference side is only its in-process evaluation (``test_instruction_following_strict`` then ``_loose``
per row, as its ``run_eval.py`` does), after a warm-up: its imports and NLTK loading are not counted. The
sides alternate per repeat; the verdicts of both are compared (they must be equal). Prints wall and CPU
times (CPU is the steadier one on a shared machine). Last line: ``ratio: median reference wall / median
ours wall``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import ifbench_perturb  # noqa: E402
import ifbench_reference  # noqa: E402


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=Path, required=True, help="allenai/IFBench checkout")
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-ifbench-"))
    rows = ifbench_perturb.perturbed_rows(args.rows)
    data = tmp / "ifbench_perturbed.jsonl"
    ifbench_perturb.write_jsonl(rows, data)
    out = tmp / "out.jsonl"
    cmd = [sys.executable, "-c", "from verinstruct.cli import main; main()", "check", "--input", str(data)]
    cmd += ["--output", str(out)]

    # Our process as installed code runs: with its bytecode cached. (Some sandboxes set
    # PYTHONDONTWRITEBYTECODE, which makes every start recompile the project's own sources.)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)  # warm-up: writes .pyc

    lib = ifbench_reference.load(args.reference)
    ifbench_reference.evaluate_file_rows(lib, rows[:300])  # warm-up: lazy loads, caches
    gc.collect()
    gc.freeze()

    ref_wall: list[float] = []
    ref_cpu: list[float] = []
    our_wall: list[float] = []
    our_cpu: list[float] = []
    ref_out = None
    load_before = os.getloadavg()[0]
    for rep in range(args.repeats):
        for side in ("ref", "ours") if rep % 2 == 0 else ("ours", "ref"):
            gc.collect()
            if side == "ref":
                t, c = time.perf_counter(), time.process_time()
                ref_out = ifbench_reference.evaluate_file_rows(lib, rows)
                ref_wall.append(time.perf_counter() - t)
                ref_cpu.append(time.process_time() - c)
            else:
                t, c = time.perf_counter(), _children_cpu()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
                our_wall.append(time.perf_counter() - t)
                our_cpu.append(_children_cpu() - c)
    load_after = os.getloadavg()[0]
    assert ref_out is not None

    ours = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(ours) == len(rows), (len(ours), len(rows))
    differ = [
        (r["key"], i)
        for r, o, (rs, rl) in zip(rows, ours, ref_out, strict=True)
        for i, a, b, c, d in zip(r["instruction_id_list"], o["strict"], rs, o["loose"], rl, strict=True)
        if (a, c) != (b, d)
    ]
    n_inst = sum(len(r["instruction_id_list"]) for r in rows)
    print(f"rows: {len(rows)}  instructions: {n_inst}  repeats: {args.repeats}  (strict + loose each)")
    print(f"verdicts differing from the reference: {len(differ)} {differ[:5]}")
    rw, ow = statistics.median(ref_wall), statistics.median(our_wall)
    rc, oc = statistics.median(ref_cpu), statistics.median(our_cpu)
    print(
        f"reference (allenai/IFBench, evaluation only): wall median {rw:.2f}s {[round(x, 2) for x in ref_wall]}"
        f"  CPU median {rc:.2f}s"
    )
    print(
        f"ours (whole `verif check` process):           wall median {ow:.2f}s {[round(x, 2) for x in our_wall]}"
        f"  CPU median {oc:.2f}s"
    )
    print(f"CPU-time ratio: {rc / oc:.1f}")
    print(
        f"machine noise: 1-min load average {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs"
    )
    assert not differ, "verdicts differ from the reference"
    print(f"ratio: {rw / ow:.1f}")


if __name__ == "__main__":
    main()
