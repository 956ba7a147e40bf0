"""Reports show mean metrics (FollowBench's CSL, a count of levels 0-5) as values, not percentages."""

from __future__ import annotations

from benchmarks.compare import compare, render
from benchmarks.report import markdown


def _summary(csl: float, hsr: float) -> dict:
    return {"model": "m", "benchmarks": {"followbench": {
        "samples": 2, "headline": ["hsr", "csl"], "means": ["content/csl", "csl"],
        "metrics": {"hsr": {"passed": hsr * 2, "total": 2, "rate": hsr, "undecided": 0},
                    "csl": {"passed": csl * 2, "total": 2, "rate": csl, "undecided": 0}}}}}


def test_markdown_shows_csl_as_a_mean_and_rates_as_percent() -> None:
    md = markdown(_summary(2.5, 0.5))
    assert "| csl (mean, not %) | 2.50 (5.00/2) |" in md
    assert "| hsr | 50.0 (1.00/2) |" in md


def test_compare_gives_a_mean_metric_its_own_unit() -> None:
    runs = [("base", _summary(2.0, 0.5)), ("rl", _summary(3.0, 0.75))]
    rows = {r["metric"]: r for r in compare(runs)}
    assert rows["csl"]["delta_points"] == [0.0, 1.0] and rows["hsr"]["delta_points"] == [0.0, 25.0]
    text = render(runs, list(rows.values()))
    assert "3.00 (6.00/2) [+1.00]" in text and "75.0 (1.50/2) [+25.0]" in text
