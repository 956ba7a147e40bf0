"""`verif compare DIR...`: runs side by side, each metric's difference from the first run (in points), whether the
runs measured the same thing, and whether a difference is larger than noise.

* **Same thing?** Per benchmark, each run is checked against the first: benchmark ``version``, ``data_sha256``
  (the samples evaluated), the number of samples, each metric's total and, for benchmarks with soft constraints,
  the judge (verifier, mode, template). Every mismatch is a warning printed above the table (and in ``--json``);
  ``--strict`` refuses (exit 2) instead.
* **Larger than noise?** When both runs hold the same samples (their ``samples/<benchmark>.jsonl`` beside
  ``summary.json``), each metric gets a paired test on the per-sample values: the exact McNemar test
  (:func:`benchmarks.stats.mcnemar_exact`) for a pass/fail-per-sample metric (IFEval's prompt level, ...), else a
  seeded paired bootstrap (:func:`benchmarks.stats.paired_bootstrap`) of the pooled difference (instruction
  level, DRFR, means). Benchmarks whose values span samples (FollowBench's CSL) get none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.base import BenchmarkError
from benchmarks.report import fmt


def load_summary(d: Path) -> dict[str, Any]:
    path = d / "summary.json" if d.is_dir() else d
    if not path.is_file():
        raise BenchmarkError(f"{d}: no summary.json (run `verif eval --out {d}` first)")
    try:
        s = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BenchmarkError(f"{path}: invalid JSON: {e.msg}") from None
    if not isinstance(s, dict) or not isinstance(s.get("benchmarks"), dict):
        raise BenchmarkError(f"{path}: not a verif eval summary (no 'benchmarks' object)")
    return s


def compare(runs: Sequence[tuple[str, Mapping[str, Any]]], *, all_metrics: bool = False,
            dirs: Sequence[Path] | None = None) -> list[dict[str, Any]]:
    """One row per (benchmark, metric) present in any run: each run's metric (or None), delta vs the first,
    ``warnings`` (why the runs may not be comparable) and ``paired`` (per run, the paired test against the first,
    or None). ``dirs``: the runs' directories, to read per-sample records for the paired tests."""
    keys: list[tuple[str, str]] = []
    for _, s in runs:
        for bname, b in s["benchmarks"].items():
            names = list(b["metrics"]) if all_metrics or not b.get("headline") else list(b["headline"])
            for m in names:
                if m in b["metrics"] and (bname, m) not in keys:
                    keys.append((bname, m))
    bench_warnings = {bname: mismatches(runs, bname) for bname in dict.fromkeys(b for b, _ in keys)}
    per_sample = _per_sample_values(runs, dirs) if dirs is not None else {}
    rows = []
    for bname, m in keys:
        vals = [s["benchmarks"].get(bname, {}).get("metrics", {}).get(m) for _, s in runs]
        mean = any(m in s["benchmarks"].get(bname, {}).get("means", ()) for _, s in runs)
        base = vals[0]
        scale = 1 if mean else 100  # a mean metric's difference in its own unit, a rate's in points
        deltas = [None if v is None or base is None else round(scale * (v["rate"] - base["rate"]), 2) for v in vals]
        warnings = list(bench_warnings[bname])
        for (name, _), v in zip(runs[1:], vals[1:], strict=True):
            if v is not None and base is not None and v["total"] != base["total"]:
                warnings.append(f"{bname} {m}: total {base['total']} in {runs[0][0]} but {v['total']} in {name}")
        values = per_sample.get(bname)
        paired = [None] + [paired_test(values[0].get(m), vk.get(m)) if values and values[0] is not None
                           and vk is not None else None for vk in (values or [None] * len(runs))[1:]]
        rows.append({"benchmark": bname, "metric": m, "values": vals, "delta_points": deltas, "mean": mean,
                     "warnings": warnings, "paired": paired})
    return rows


def mismatches(runs: Sequence[tuple[str, Mapping[str, Any]]], bname: str) -> list[str]:
    """Why run k's ``bname`` may not be comparable with the first run's (one line each; empty: comparable)."""
    import benchmarks as registry

    out: list[str] = []
    name0, s0 = runs[0]
    b0 = s0["benchmarks"].get(bname)
    try:
        soft = registry.get(bname).needs_verifier
    except (KeyError, ValueError, BenchmarkError):
        soft = True
    for name, s in runs[1:]:
        b = s["benchmarks"].get(bname)
        if b is None or b0 is None:
            continue
        for key, what in (("version", "benchmark version"), ("data_sha256", "data (samples evaluated)"),
                          ("samples", "number of samples")):
            if b0.get(key) != b.get(key) and (b0.get(key) is not None or b.get(key) is not None):
                out.append(f"{bname}: {what} differs: {_short(b0.get(key))} in {name0}, {_short(b.get(key))} in {name}")
        if soft and _judge(s0) != _judge(s):
            out.append(f"{bname}: judge differs: {_judge(s0)} in {name0}, {_judge(s)} in {name}")
    return out


def _judge(s: Mapping[str, Any]) -> tuple[Any, ...] | None:
    j = s.get("judge")
    return None if not isinstance(j, Mapping) else (j.get("verifier"), j.get("mode"), j.get("template"))


def _short(v: Any) -> str:
    return "none" if v is None else (str(v)[:12] if isinstance(v, str) and len(v) == 64 else str(v))


def _per_sample_values(runs: Sequence[tuple[str, Mapping[str, Any]]], dirs: Sequence[Path]
                       ) -> dict[str, list[dict[str, dict[str, tuple[float, int]]] | None]]:
    """Per benchmark and run, the per-sample metric values read back from the run's records (None if absent)."""
    import benchmarks as registry
    from verinstruct.jsonl import iter_lines

    out: dict[str, list[Any]] = {}
    names = {b for _, s in runs for b in s["benchmarks"]}
    for bname in sorted(names):
        try:
            bench = registry.get(bname)
        except (KeyError, ValueError, BenchmarkError):
            continue
        per_run: list[Any] = []
        for (_, s), d in zip(runs, dirs, strict=True):
            b = s["benchmarks"].get(bname)
            path = (d if d.is_dir() else d.parent) / (b or {}).get("file", f"samples/{bname}.jsonl")
            if b is None or not path.is_file():
                per_run.append(None)
                continue
            # read only (compare never truncates a run's file); a torn or foreign line is left out
            records = [row for _, row in iter_lines(path) if isinstance(row, dict) and "id" in row]
            per_run.append(bench.sample_values(records))
        out[bname] = per_run
    return out


def paired_test(a: Mapping[str, tuple[float, int]] | None, b: Mapping[str, tuple[float, int]] | None
                ) -> dict[str, Any] | None:
    """McNemar for one pass/fail per sample, else a paired bootstrap of the pooled difference; None unless both
    runs have the metric on exactly the same samples with the same number of values each."""
    from benchmarks import stats

    if not a or not b or set(a) != set(b) or any(a[k][1] != b[k][1] for k in a):
        return None
    ids = sorted(a)
    if all(a[k][1] == 1 and a[k][0] in (0.0, 1.0) and b[k][0] in (0.0, 1.0) for k in ids):
        only_a = sum(1 for k in ids if a[k][0] == 1.0 and b[k][0] == 0.0)
        only_b = sum(1 for k in ids if a[k][0] == 0.0 and b[k][0] == 1.0)
        return {"test": "mcnemar", "p_value": stats.mcnemar_exact(only_a, only_b), "only_base": only_a,
                "only_this": only_b, "n": len(ids)}
    total = sum(a[k][1] for k in ids)
    scale = len(ids) / total  # mean of scaled per-sample sums = pooled ratio
    res = stats.paired_bootstrap([a[k][0] * scale for k in ids], [b[k][0] * scale for k in ids])
    return None if res is None else {"test": "paired_bootstrap", "n": len(ids), **res}


def render(runs: Sequence[tuple[str, Mapping[str, Any]]], rows: Sequence[Mapping[str, Any]]) -> str:
    heads = ["benchmark", "metric"] + [f"{name} ({s.get('model', '?')})" for name, s in runs]
    table = []
    for r in rows:
        cells = [r["benchmark"], r["metric"]]
        paired = r.get("paired") or [None] * len(runs)
        for k, (v, d, p) in enumerate(zip(r["values"], r["delta_points"], paired, strict=True)):
            if v is None:
                cells.append("-")
                continue
            cell = fmt(v, r.get("mean", False))
            if k and d is not None:
                pv = "" if p is None else f" p={p['p_value']:.3g}"
                cell += f" [{d:+.2f}{pv}]" if r.get("mean") else f" [{d:+.1f}{pv}]"
            cells.append(cell)
        table.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(heads, *table, strict=True)]
    line = lambda cs: "  ".join(str(c).ljust(w) for c, w in zip(cs, widths, strict=True)).rstrip()  # noqa: E731
    warnings = list(dict.fromkeys(w for r in rows for w in r.get("warnings") or ()))
    notes = [f"warning: {w}" for w in warnings]
    if any(p for r in rows for p in r.get("paired") or ()):
        notes.append("p: paired test against the first run on the same samples (McNemar for pass/fail per sample, "
                     "else paired bootstrap)")
    return "\n".join([*notes, line(heads), line(["-" * w for w in widths])] + [line(c) for c in table])
