"""`verif score` as a user runs it (whole process, sandbox start-up included): this tree vs a base commit.

Issue 15 moved dataset code into fresh processes (one per dataset row); this times the command a user runs
on a GRPO-shaped file, on both trees, as whole processes:

* input: ``--responses`` rows made from the VerInstruct fixture rows (tests/fixtures/verinstruct): groups of
  ``--rollouts`` responses share one row (a GRPO group: the same id, prompt and code); each group has an id
  and a prompt of its own (the fixture prompt plus " (group k)"), so no two groups share a row process;
  responses vary per rollout;
* command: ``verif score --input FILE --output OUT --overwrite --no-llm`` (code checks in the sandbox; LLM
  checks, and code that calls ``llm_*``, are undecided on both sides);
* baseline: the code of ``--baseline git:REF`` (default 5023509, the last commit with one persistent child
  per worker) extracted with ``git archive``, run by the same interpreter with ``PYTHONPATH`` set to it.

Runs alternate between the trees (``--repeats`` each, after one untimed run each), and the verdicts of both
must be identical (checked). Prints the median wall and CPU (children) per tree; last line ``ratio: X`` =
the base commit's median wall / this tree's.
"""

from __future__ import annotations

import argparse
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

from git_tree import old_tree

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
_RUN = "import sys; sys.argv[0] = 'verif'; from verinstruct.cli import main; main()"


def write_input(path: Path, n: int, rollouts: int) -> int:
    """``n`` rows, ``rollouts`` per group; returns the number of groups (distinct rows)."""
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]
    groups = -(-n // rollouts)
    with path.open("w", encoding="utf-8") as f:
        for k in range(n):
            g = k // rollouts
            r = dict(rows[g % len(rows)])
            for key in ("expected", "expected_error"):
                r.pop(key, None)
            r["id"] = f"{r['id']}-g{g}"  # a GRPO dump: the group's rollouts are the same row (id, prompt, code)
            r["prompt"] = f"{r['prompt']} (group {g})"
            r["response"] = f"{r['response']}\n(rollout {k})" + ("\n\nExtra paragraph." if k % 3 == 0 else "")
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return groups


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(tree: Path, data: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the whole process tree, sandbox workers included) of one `verif score`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, "-c", _RUN, "score", "--input", str(data), "--output", str(out), "--overwrite",
           "--no-llm"]
    t, c = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t, _children_cpu() - c
    if proc.returncode != 0:
        raise SystemExit(f"verif score failed in {tree} (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return wall, cpu


def verdicts(path: Path) -> list:
    """What both trees must agree on: each row's id and its constraints' passed values."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        cons = rec.get("constraints") or rec.get("verdicts") or []
        out.append((rec.get("id"), [c.get("passed") for c in cons if isinstance(c, dict)]))
    return sorted(out, key=lambda x: str(x[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responses", type=int, default=512, help="rows in the file")
    ap.add_argument("--rollouts", type=int, default=8, help="responses per prompt (GRPO group)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", default="git:5023509", help="git:REF whose code is the baseline")
    args = ap.parse_args()
    for name in ("responses", "rollouts", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not args.baseline.startswith("git:"):
        raise SystemExit(f"--baseline must be git:REF, got {args.baseline!r}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-whole-"))
    try:
        data = tmp / "rows.jsonl"
        groups = write_input(data, args.responses, args.rollouts)
        trees = {"base": old_tree(args.baseline[4:], tmp), "this": ROOT}
        outs = {side: tmp / f"{side}.jsonl" for side in trees}
        for side, tree in trees.items():
            timed(tree, data, outs[side])  # untimed: bytecode caches, page cache
        if verdicts(outs["base"]) != verdicts(outs["this"]):
            raise SystemExit(f"verdicts differ between {args.baseline} and this tree")
        n_verdicts = sum(len(v) for _, v in verdicts(outs["this"]))
        times: dict[str, list[tuple[float, float]]] = {"base": [], "this": []}
        load_before = os.getloadavg()[0]
        for rep in range(args.repeats):
            for side in ("base", "this") if rep % 2 == 0 else ("this", "base"):
                times[side].append(timed(trees[side], data, outs[side]))
        load_after = os.getloadavg()[0]
        print(f"file: {args.responses} rows ({groups} prompts x {args.rollouts} rollouts), {n_verdicts} verdicts; "
              f"verif score --no-llm; verdicts identical on both trees")
        med = {}
        for side, label in (("base", f"{args.baseline} (persistent child)"), ("this", "this tree (process per row)")):
            walls = [w for w, _ in times[side]]
            med[side] = statistics.median(walls)
            print(f"{label:<40} wall median {med[side]:.2f}s runs {[round(w, 2) for w in walls]}  "
                  f"CPU median {statistics.median(c for _, c in times[side]):.2f}s")
        print(f"machine noise: 1-min load average {load_before:.2f} before, {load_after:.2f} after, "
              f"on {os.cpu_count()} CPUs")
        print(f"ratio: {med['base'] / med['this']:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
