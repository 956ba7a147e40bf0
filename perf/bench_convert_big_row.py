"""Convert one 160 KB raw VerIF row (600 checkers, 600 constraint lines) and print time and peak memory.

Issue 16: text recovery compared every checker with every prompt line, re-deriving each checker's evidence
per line, and parsed each function three times: a 162 KB row took 79 s and 962 MB. Each measurement runs in
a fresh interpreter: the time of a first conversion, then the ``tracemalloc`` peak of a second one
(caches cleared; tracemalloc slows it down, so it is not timed). The same row is measured with the code of
git revision ``--base`` (default 5023509, before the fix; a temporary ``git worktree``, removed afterwards)
and ``ratio: X`` is printed last (base time / this tree's time). The base takes about a minute.

    python perf/bench_convert_big_row.py [--shape lines|fstrings] [--base REV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, sys, time, tracemalloc
row = json.loads(sys.stdin.read())
from verinstruct import schema
from verinstruct.convert import from_verif
t = time.perf_counter()
inst = from_verif(row, "row")
dt = time.perf_counter() - t
for name in ("analyse_code", "code_uses_llm", "forwarded_llm_call"):  # cold caches for the memory run
    getattr(getattr(schema, name, None), "cache_clear", lambda: None)()
tracemalloc.start()
from_verif(row, "row")
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"seconds": dt, "peak_mb": peak / 2**20, "constraints": len(inst.constraints),
                  "from_prompt": sum(c.text_source == "prompt" for c in inst.constraints)}))
"""

TOPICS = ["paragraph", "keyword", "bullet", "sentence", "title", "ending", "language", "tone"]


def big_row(n: int = 600) -> dict[str, object]:
    """Constraint line k names its topic, a number and a quoted word; checker k tests exactly those."""
    lines, names, funcs = ["Write a long report about the history of tea."], [], []
    for k in range(n):
        topic = TOPICS[k % len(TOPICS)]
        lines.append(f"Constraint {k}: the {topic} part must mention 'word{k}' at least {k + 2} times, please.")
        names.append(f"[rule] {topic.title()}_Count_{k}")
        funcs.append(f"def check_following(instruction, response):\n    return response.count('word{k}') >= {k + 2}"
                     f"  # {topic} rule number {k}, counted in the whole response text\n")
    return {"id": "big", "prompt": "\n".join(lines), "checkers": names, "functions": funcs}


def fstring_row(n: int = 10) -> dict[str, object]:
    """The parser's worst case: ``n`` functions, each one 16 KB f-string (CPython parses those in quadratic time)."""
    lines = ["Write a long report about the history of tea."] + [f"Constraint {k}: mention tea." for k in range(n)]
    funcs = [f"def check_following(instruction, response):\n    x = {k}\n    return f\"" + "{x}a" * 3975 + "\" in response\n"
             for k in range(n)]
    return {"id": "fstrings", "prompt": "\n".join(lines), "checkers": [f"[rule] Tea_{k}" for k in range(n)],
            "functions": funcs}


def measure(tree: Path, row_json: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", MEASURE], input=row_json, capture_output=True, text=True,
                         env=env, cwd=tree, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="5023509",
                    help="git revision to compare with (default: 5023509, before issue 16; '' for none)")
    ap.add_argument("--checkers", type=int, default=600)
    ap.add_argument("--shape", choices=("lines", "fstrings"), default="lines",
                    help="lines: many checkers and prompt lines (text recovery); fstrings: 10 x 16 KB f-string functions")
    args = ap.parse_args()
    row = big_row(args.checkers) if args.shape == "lines" else fstring_row()
    row_json = json.dumps(row)
    print(f"row: {len(row_json.encode()) / 1000:.0f} KB, {len(row['checkers'])} checkers ({args.shape})")
    now = measure(ROOT, row_json)
    print(f"this tree: {now['seconds']:.3f} s, peak {now['peak_mb']:.1f} MB, "
          f"{now['from_prompt']}/{now['constraints']} texts from the prompt")
    if not args.base:
        return
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(wt), args.base], check=True)
        try:
            base = measure(wt, row_json)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=True)
    print(f"base {args.base}: {base['seconds']:.3f} s, peak {base['peak_mb']:.1f} MB, "
          f"{base['from_prompt']}/{base['constraints']} texts from the prompt")
    print(f"ratio: {base['seconds'] / now['seconds']:.1f}")


if __name__ == "__main__":
    main()
