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

``--whole-process``: the user's view on both sides, as ``perf/bench_ifeval.py --whole-process`` measures
IFEval. The file has exactly ``--rows`` rows (default 7,911: 27 per sample row, as IFEval's 14,607 are 27
per response); each side is a fresh process per repeat, alternating: ``verif check --mode both --output``
vs a fresh interpreter importing AllenAI's ``evaluation_lib`` and writing its strict and loose verdicts
per row. Its import asks NLTK to download data it already has or does not use (punkt, stopwords, a tagger):
with no network each try waits for a failure that a user with the data never sees, so ``nltk.download`` is
replaced by a no-op in that process (everything else it does at import is timed). The Punkt data is
written before any timing. Both sides run with bytecode cached, as installed code does: no
``PYTHONDONTWRITEBYTECODE`` in their environment, the checkout byte-compiled and one untimed run of ours
first. Every verdict must be identical. Last line: ``ratio: median reference / median
ours``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
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
    ap.add_argument("--rows", type=int, default=None, help="default: 6000 generation steps; whole-process: "
                    "7911 rows")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--whole-process", action="store_true", help="time `verif check` vs the reference as processes")
    args = ap.parse_args()
    if args.whole_process:
        whole_process(args.reference, args.rows or 7911, args.repeats)
        return
    args.rows = args.rows or 6000

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


# ------------------------------------------------------------------------------------ whole process

# AllenAI's evaluation as a user runs it over a file, in a fresh interpreter: argv = data, out, NLTK dir, checkout.
_REFERENCE = r"""
import contextlib, io, json, random, sys
import nltk
nltk.data.path.insert(0, sys.argv[3])
nltk.download = lambda *a, **k: False  # no network: see the module docstring
import langdetect
langdetect.DetectorFactory.seed = 0
random.seed(0)
sys.path.insert(0, sys.argv[4])
import evaluation_lib as lib
with open(sys.argv[1], encoding="utf-8") as fh, open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in fh:
        r = json.loads(line)
        resp = {r["prompt"]: r["response"]}
        res = {}
        for mode, fn in (("strict", lib.test_instruction_following_strict),
                         ("loose", lib.test_instruction_following_loose)):
            inp = lib.InputExample(key=0, instruction_id_list=r["instruction_id_list"], prompt=r["prompt"],
                                   kwargs=[dict(k) for k in r["kwargs"]])
            res[mode] = fn(inp, resp).follow_instruction_list
        out.write(json.dumps({"key": r["key"], **res}) + "\n")
"""


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (children) seconds of one process."""
    t, c = time.perf_counter(), _children_cpu()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    return time.perf_counter() - t, _children_cpu() - c


def whole_process(reference: Path, n_rows: int, repeats: int) -> None:
    if not (reference / "evaluation_lib.py").exists():
        raise SystemExit(f"--reference {reference}: not an allenai/IFBench checkout (no evaluation_lib.py)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ifbench-"))
    try:
        sys.path.insert(0, str(ROOT))
        from checkers.text import write_nltk_punkt_tab

        write_nltk_punkt_tab(tmp)  # NLTK data for the reference, written before any timing
        rows = ifbench_perturb.perturbed_file(n_rows)
        data = tmp / "ifbench_perturbed.jsonl"
        ifbench_perturb.write_jsonl(rows, data)
        verif = shutil.which("verif", path=str(Path(sys.executable).parent)) or "verif"
        ours_cmd = [verif, "check", "--input", str(data), "--output", str(tmp / "ours.jsonl"), "--mode", "both"]
        ref_cmd = [sys.executable, "-c", _REFERENCE, str(data), str(tmp / "ref.jsonl"), str(tmp), str(reference)]
        # both as installed code runs: with bytecode cached (some sandboxes set PYTHONDONTWRITEBYTECODE)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        times: dict[str, list[tuple[float, float]]] = {"ref": [], "ours": []}
        import compileall

        compileall.compile_dir(str(reference), quiet=1)  # a checkout's own __pycache__ may be stale
        _timed(ours_cmd, env)  # untimed: writes our bytecode cache
        load_before = os.getloadavg()[0]
        for rep in range(repeats):
            for side in ("ref", "ours") if rep % 2 == 0 else ("ours", "ref"):
                times[side].append(_timed(ref_cmd if side == "ref" else ours_cmd, env))
        load_after = os.getloadavg()[0]
        ours = [json.loads(x) for x in (tmp / "ours.jsonl").read_text(encoding="utf-8").splitlines()]
        ref = [json.loads(x) for x in (tmp / "ref.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [o["key"] for o in ours] == [r["key"] for r in ref] == [r["key"] for r in rows]
        differ = [
            (row["key"], iid)
            for row, o, r in zip(rows, ours, ref, strict=True)
            for j, iid in enumerate(row["instruction_id_list"])
            if (o["strict"][j], o["loose"][j]) != (r["strict"][j], r["loose"][j])
        ]
        assert not differ, f"{len(differ)} verdicts differ from the reference, e.g. {differ[:5]}"
        n_inst = sum(len(r["instruction_id_list"]) for r in rows)
        ref_w, our_w = [w for w, _ in times["ref"]], [w for w, _ in times["ours"]]
        rt, ot = statistics.median(ref_w), statistics.median(our_w)
        print(f"file: {len(rows)} rows, {n_inst} instructions compared strict+loose, repeats: {repeats}")
        print(f"verdicts: identical to the reference on all {n_inst} instructions, both modes")
        print(f"reference (fresh python, allenai/IFBench evaluation_lib): median {rt:.2f}s  "
              f"runs {[round(x, 2) for x in ref_w]}  CPU {[round(c, 2) for _, c in times['ref']]}")
        print(f"ours (verif check --mode both --output):                 median {ot:.2f}s  "
              f"runs {[round(x, 2) for x in our_w]}  CPU {[round(c, 2) for _, c in times['ours']]}")
        rc = statistics.median(c for _, c in times["ref"]) / statistics.median(c for _, c in times["ours"])
        print(f"CPU-time ratio: {rc:.1f}")
        print(f"machine noise: 1-min load average {load_before:.2f} before, {load_after:.2f} after, "
              f"on {os.cpu_count()} CPUs")
        print(f"ratio: {rt / ot:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
