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


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def fmt_ci(m: Mapping[str, Any], mean: bool = False) -> str:
    """The metric's 95% interval in the table's unit (points for a rate, the value for a mean); a dash when the
    run has none (a single sample, or a summary written before intervals were recorded)."""
    ci = m.get("ci95")
    if not ci or ci[0] is None or ci[1] is None:
        return "-"
    scale, digits = (1, 2) if mean else (100, 1)
    return f"{scale * ci[0]:.{digits}f}-{scale * ci[1]:.{digits}f}"


def markdown(summary: Mapping[str, Any]) -> str:
    """One table per benchmark: its headline metrics (all metrics when it declares none), and how many
    samples are not in them because their generation failed."""
    lines = [f"# verif eval: {summary['model']}", ""]
    for name, b in summary["benchmarks"].items():
        shown = [m for m in b.get("headline") or b["metrics"] if m in b["metrics"]]
        means = set(b.get("means") or ())
        head = _n(b["samples"], "sample")
        if b.get("failed_generation"):
            head += f"; {b['failed_generation']} more failed generation, not scored"
        if b.get("not_generated"):
            head += f"; {b['not_generated']} not generated"
        gap = b.get("missing_responses") or {}
        if gap.get("count"):
            head += (f"; {gap['count']} with no response, " + ("scored as failing" if gap.get("policy") == "fail"
                                                                else "left out") + f" (--missing-responses {gap['policy']})")
        lines += [f"## {name} ({head})", "", "| metric | rate % (passed/total) | 95% CI |", "| --- | --- | --- |"]
        lines += [f"| {m}{' (mean, not %)' if m in means else ''} | {fmt(b['metrics'][m], m in means)} | "
                  f"{fmt_ci(b['metrics'][m], m in means)} |" for m in shown]
        lines.append("")
    return "\n".join(lines)


#: at most this many constraint types per panel (those with the most samples): 3,000 types made a 72,688 px
#: tall image; every type stays in summary.json
MAX_TYPES = 60
#: fonts with CJK glyphs, tried after the default when installed (Chinese and Japanese type names)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Hiragino Sans GB")


def _fonts() -> tuple[list[str], Any]:
    """(font family list, a function: can some font in it draw this character)."""
    from matplotlib import font_manager as fm

    installed = {f.name for f in fm.fontManager.ttflist}
    family = ["DejaVu Sans", *[f for f in CJK_FONTS if f in installed]]
    charmaps = []
    for name in family:
        try:
            charmaps.append(set(fm.get_font(fm.findfont(fm.FontProperties(family=name),
                                                        fallback_to_default=False)).get_charmap()))
        except (ValueError, RuntimeError, OSError):
            continue
    return family, lambda ch: any(ord(ch) in cm for cm in charmaps)


def _label(text: str, drawable: Any) -> str:
    """``text`` with the characters no installed font can draw written as ``\\uXXXX`` (not as empty boxes)."""
    return "".join(ch if ch.isascii() or drawable(ch) else ascii(ch)[1:-1] for ch in text)


def plot_per_type(summary: Mapping[str, Any], path: Path) -> bool:
    """Write :func:`per_type_figure` to ``path`` (PNG); False when there is nothing to draw."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig = per_type_figure(summary)
        if fig is None:
            return False
        fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return True


def per_type_figure(summary: Mapping[str, Any]) -> Any:
    """Horizontal bars of pass rate per constraint type, each labelled with its value (None: nothing to draw).

    Every row has a light track to 100 % so a 0 % type is still a visible row; at most :data:`MAX_TYPES`
    types per panel (the most frequent); titles wrap; names use a CJK font when one is installed, else the
    characters no font can draw are written as escapes rather than empty boxes.
    """
    import textwrap
    import warnings

    panels = [(n, b["per_type"]) for n, b in summary["benchmarks"].items() if b.get("per_type")]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family, drawable = _fonts()
    shown = []
    for name, pt in panels:
        keep = sorted(pt, key=lambda k: (-pt[k]["total"], k))[:MAX_TYPES]
        mode = (summary["benchmarks"][name].get("modes") or ["strict"])[0]
        cut = f" ({len(keep)} of {len(pt)} types, the most frequent; all in summary.json)" if len(keep) < len(pt) \
            else ""
        title = textwrap.wrap(f"{name}: pass rate per constraint type, {mode}{cut} ({summary['model']})", 95)
        shown.append((pt, sorted(keep, key=lambda k: (pt[k]["rate"], k)), _label("\n".join(title), drawable)))
    heights = [max(1.6, 0.22 * len(types) + 0.8 + 0.2 * title.count("\n")) for _, types, title in shown]
    with warnings.catch_warnings(), matplotlib.rc_context({"font.family": family}):
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig, axes = plt.subplots(len(shown), 1, figsize=(9, sum(heights)), squeeze=False,
                                 gridspec_kw={"height_ratios": heights})
        for ax, (pt, types, title) in zip(axes[:, 0], shown, strict=True):
            ys = list(range(len(types)))
            ax.barh(ys, [100] * len(types), color="#e8e8ee")
            ax.barh(ys, [100 * pt[t]["rate"] for t in types], color="#4c72b0")
            for y, t in zip(ys, types, strict=True):
                m = pt[t]
                ax.text(101, y, f"{100 * m['rate']:.0f}% ({m['passed']}/{m['total']})", va="center", fontsize=6)
            ax.set_yticks(ys, [_label(f"{t} (n={pt[t]['total']})", drawable) for t in types], fontsize=7)
            ax.set_xlim(0, 118)
            ax.set_xticks([0, 20, 40, 60, 80, 100])
            ax.set_xlabel("pass rate %")
            ax.set_title(title, fontsize=9)
        fig.tight_layout()
    return fig


def write_outputs(out_dir: Path, summary: Mapping[str, Any]) -> str:
    """Write summary.json, summary.md and per_type.png; return the markdown table."""
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = markdown(summary)
    (out_dir / "summary.md").write_text(md + "\n", encoding="utf-8")
    plot_per_type(summary, out_dir / "per_type.png")
    return md
