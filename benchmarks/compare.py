"""`verif compare DIR...`: runs side by side, each metric's difference from the first run (in points)."""

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


def compare(runs: Sequence[tuple[str, Mapping[str, Any]]], *, all_metrics: bool = False) -> list[dict[str, Any]]:
    """One row per (benchmark, metric) present in any run: each run's metric (or None) and delta vs the first."""
    keys: list[tuple[str, str]] = []
    for _, s in runs:
        for bname, b in s["benchmarks"].items():
            names = list(b["metrics"]) if all_metrics or not b.get("headline") else list(b["headline"])
            for m in names:
                if m in b["metrics"] and (bname, m) not in keys:
                    keys.append((bname, m))
    rows = []
    for bname, m in keys:
        vals = [s["benchmarks"].get(bname, {}).get("metrics", {}).get(m) for _, s in runs]
        mean = any(m in s["benchmarks"].get(bname, {}).get("means", ()) for _, s in runs)
        base = vals[0]
        scale = 1 if mean else 100  # a mean metric's difference in its own unit, a rate's in points
        deltas = [None if v is None or base is None else round(scale * (v["rate"] - base["rate"]), 2) for v in vals]
        rows.append({"benchmark": bname, "metric": m, "values": vals, "delta_points": deltas, "mean": mean})
    return rows


def render(runs: Sequence[tuple[str, Mapping[str, Any]]], rows: Sequence[Mapping[str, Any]]) -> str:
    heads = ["benchmark", "metric"] + [f"{name} ({s.get('model', '?')})" for name, s in runs]
    table = []
    for r in rows:
        cells = [r["benchmark"], r["metric"]]
        for k, (v, d) in enumerate(zip(r["values"], r["delta_points"], strict=True)):
            if v is None:
                cells.append("-")
            else:
                cells.append(fmt(v, r.get("mean", False))
                             + ("" if k == 0 or d is None else f" [{d:+.2f}]" if r.get("mean") else f" [{d:+.1f}]"))
        table.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(heads, *table, strict=True)]
    line = lambda cs: "  ".join(str(c).ljust(w) for c, w in zip(cs, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths])] + [line(c) for c in table])
