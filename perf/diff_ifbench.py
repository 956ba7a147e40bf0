"""Differential check: our IFBench verdicts vs AllenAI's reference on thousands of perturbed sample outputs.

Run: ``python perf/diff_ifbench.py --reference /path/to/IFBench [--rows 3809]``. Each row of the sample outputs
gets every perturbation of ``perf/ifbench_perturb.py`` once (293 x 13 = 3809 rows), then random ones. Every
instruction is judged by both sides in strict and loose mode. Where the reference raises, ours must be
undecided or False (``docs/ifbench.md``). Prints mismatches (first few per checker) and the totals; exits 1
on any mismatch. Not a test: CI has no reference checkout.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ifbench_perturb  # noqa: E402
import ifbench_reference  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=Path, required=True, help="allenai/IFBench checkout")
    ap.add_argument("--rows", type=int, default=3809)
    ap.add_argument("--show", type=int, default=3, help="mismatches shown per checker")
    args = ap.parse_args()
    lib = ifbench_reference.load(args.reference)
    from checkers import build
    from checkers.modes import evaluate_rows

    rows = ifbench_perturb.perturbed_rows(args.rows)
    batch = [
        (
            [build(i, k) for i, k in zip(r["instruction_id_list"], r["kwargs"], strict=True)],
            r["response"],
            r["prompt"],
        )
        for r in rows
    ]
    ours = {m: evaluate_rows(batch, m) for m in ("strict", "loose")}
    total: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    raised: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    for k, r in enumerate(rows):
        ref = dict(zip(("strict", "loose"), ifbench_reference.verdicts(lib, r), strict=True))
        for j, iid in enumerate(r["instruction_id_list"]):
            for mode in ("strict", "loose"):
                total[iid] += 1
                want, got = ref[mode][j], ours[mode][k][j]
                if isinstance(want, str):  # the reference raised
                    raised[iid] += 1
                    ok = got.passed is not True
                else:
                    ok = got.passed is want
                if not ok:
                    bad[iid] += 1
                    if shown[iid] < args.show:
                        shown[iid] += 1
                        print(
                            f"MISMATCH {iid} {mode} row {r['key']} ({r['perturbation']}): reference {want}, ours "
                            f"{got.passed} ({got.reason or got.error}); response {r['response'][:120]!r}"
                        )
    n = sum(total.values())
    print(f"rows: {len(rows)}  verdicts compared: {n} ({len(total)} checkers, strict + loose)")
    for iid, c in sorted(raised.items()):
        print(f"reference raised: {iid} x{c}")
    print(f"mismatches: {sum(bad.values())}" + (f"  by checker: {dict(sorted(bad.items()))}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
