"""Outputs of a run: ``summary.json`` (what produced it and every metric), ``summary.md`` (the table) and
``per_type.png`` (pass rate per constraint type, one panel per benchmark).

The summary is rebuilt from the per-sample records each time a run finishes, so a resumed run writes the
same summary as an uninterrupted one (nothing in it depends on timing).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.runner import BenchResult


def versions() -> dict[str, Any]:
    """Package versions that can change verdicts or generations, and the checker set."""
    import importlib.metadata as md

    import checkers
    from verinstruct import __version__

    out: dict[str, Any] = {"verinstruct": __version__, "python": platform.python_version()}
    for dist in ("torch", "transformers", "vllm", "openai", "datasets"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    out["checkers"] = sorted(i for i in checkers.ids() if ":" in i)
    return out


def build_summary(results: Sequence[BenchResult], *, model: str, generation: Mapping[str, Any],
                  judge: Any, data_sha256: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run's ``summary.json``. Each metric dict is ``{"passed", "total", "rate", "undecided", "stderr",
    "ci95"}`` (``stderr`` and ``ci95`` = [low, high] in the rate's own unit, or null); each benchmark carries its
    ``version``, ``data_sha256`` (:func:`benchmarks.base.samples_sha256` of the samples evaluated, passed in by
    ``verif eval``; else a hash of the records' ids and user messages) and ``metric_info`` (aggregation, unit,
    higher_is_better per metric)."""
    benches = {}
    for r in results:
        b = r.benchmark
        metrics = b.metrics(r.records)
        unc = b.uncertainty(r.records, metrics)
        metrics = {m: {**v, **unc[m]} for m, v in metrics.items()}
        digest = (data_sha256 or {}).get(b.name) or _records_sha256(r.records)
        benches[b.name] = {
            "version": b.version,
            "data_sha256": digest,
            "metrics": metrics,
            "metric_info": {m: b.metric_info(m).to_dict() for m in metrics},
            "per_type": b.per_type(r.records),
            "samples": len(r.records),
            "modes": list(b.modes),
            "headline": list(b.headline),
            "means": sorted(m for m in metrics if m.rsplit("/", 1)[-1] in b.mean_metrics),
            "file": f"samples/{b.name}.jsonl",
        }
    return {"model": model, "benchmarks": benches, "generation": dict(generation), "judge": judge,
            "versions": versions()}


def _records_sha256(records: Sequence[Mapping[str, Any]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for r in records:
        users = [[m for m in (t.get("messages") or []) if m.get("role") != "assistant"] for t in r["turns"]]
        h.update(json.dumps([r["id"], users], sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def fmt(m: Mapping[str, Any], mean: bool = False) -> str:
    """``rate %`` (passed/total), or for a mean metric its value (sum/total)."""
    p = m["passed"]
    ps = f"{p}" if isinstance(p, int) else f"{p:.2f}"
    und = f", {m['undecided']} undecided" if m.get("undecided") else ""
    value = f"{m['rate']:.2f}" if mean else f"{100 * m['rate']:.1f}"
    return f"{value} ({ps}/{m['total']}{und})"


def markdown(summary: Mapping[str, Any]) -> str:
    """One table per benchmark: its headline metrics (all metrics when it declares none)."""
    lines = [f"# verif eval: {summary['model']}", ""]
    for name, b in summary["benchmarks"].items():
        shown = [m for m in b.get("headline") or b["metrics"] if m in b["metrics"]]
        means = set(b.get("means") or ())
        lines += [f"## {name} ({b['samples']} samples)", "", "| metric | rate % (passed/total) |", "| --- | --- |"]
        lines += [f"| {m}{' (mean, not %)' if m in means else ''} | {fmt(b['metrics'][m], m in means)} |"
                  for m in shown]
        lines.append("")
    return "\n".join(lines)


def plot_per_type(summary: Mapping[str, Any], path: Path) -> bool:
    """Horizontal bars of pass rate per constraint type; False when there is nothing to draw."""
    panels = [(n, b["per_type"]) for n, b in summary["benchmarks"].items() if b.get("per_type")]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [max(1.5, 0.22 * len(pt) + 0.8) for _, pt in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, pt) in zip(axes[:, 0], panels, strict=True):
        types = sorted(pt, key=lambda k: (pt[k]["rate"], k))
        ax.barh(range(len(types)), [100 * pt[t]["rate"] for t in types], color="#4c72b0")
        ax.set_yticks(range(len(types)), [f"{t} (n={pt[t]['total']})" for t in types], fontsize=7)
        ax.set_xlim(0, 100)
        ax.set_xlabel("pass rate %")
        mode = (summary["benchmarks"][name].get("modes") or ["strict"])[0]
        ax.set_title(f"{name}: pass rate per constraint type, {mode} ({summary['model']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return True


def write_outputs(out_dir: Path, summary: Mapping[str, Any]) -> str:
    """Write summary.json, summary.md and per_type.png; return the markdown table."""
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = markdown(summary)
    (out_dir / "summary.md").write_text(md + "\n", encoding="utf-8")
    plot_per_type(summary, out_dir / "per_type.png")
    return md
