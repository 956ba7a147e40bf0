"""summary.md and per_type.png read right for any run: counts with their plural, failed generations said,
every type's value printed, 0 % types visible, long titles wrapped, many types capped, CJK names drawn or
escaped without glyph warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.report import MAX_TYPES, markdown, per_type_figure, plot_per_type


def _summary(per_type: dict, model: str = "m", samples: int = 1, failed: int = 0) -> dict:
    m = {"prompt_strict": {"passed": 0, "total": samples, "rate": 0.0, "undecided": 0}}
    return {"model": model, "benchmarks": {"ifeval": {"metrics": m, "headline": ["prompt_strict"], "modes": ["strict"],
                                                      "samples": samples, "per_type": per_type,
                                                      "failed_generation": failed}}}


def _pt(passed: int, total: int) -> dict:
    return {"passed": passed, "total": total, "rate": passed / total, "undecided": 0}


def test_markdown_counts_and_failed_generations() -> None:
    assert "## ifeval (1 sample)" in markdown(_summary({}, samples=1))
    assert "## ifeval (2 samples; 3 more failed generation, not scored)" in markdown(_summary({}, samples=2, failed=3))


def test_every_type_has_a_visible_row_and_its_value() -> None:
    fig = per_type_figure(_summary({"punctuation:no_comma": _pt(0, 5), "length:words": _pt(3, 4)}))
    [ax] = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["punctuation:no_comma (n=5)", "length:words (n=4)"]  # lowest rate first
    values = sorted(t.get_text() for t in ax.texts)
    assert values == ["0% (0/5)", "75% (3/4)"]
    widths = sorted(round(p.get_width(), 6) for p in ax.patches)
    assert widths == [0.0, 75.0, 100.0, 100.0]  # a 100 % track behind each bar: the 0 % row shows


def test_long_titles_wrap_and_many_types_are_capped(tmp_path: Path) -> None:
    pt = {f"type_{i:04d}": _pt(i % 3, 3 + (i < 10)) for i in range(3000)}
    fig = per_type_figure(_summary(pt, model="org/" + "a-very-long-model-name-" * 6))
    [ax] = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == MAX_TYPES
    assert {f"type_{i:04d} (n=4)" for i in range(10)} <= set(labels)  # the most frequent types are kept
    title = ax.get_title()
    assert f"{MAX_TYPES} of 3000 types" in title and all(len(line) <= 95 for line in title.splitlines())
    assert plot_per_type(_summary(pt), tmp_path / "p.png")
    from PIL import Image

    w, h = Image.open(tmp_path / "p.png").size
    assert h < 2500 and w < 1500, (w, h)


def test_cjk_type_names_are_drawn_or_escaped_without_warnings(tmp_path: Path) -> None:
    code = ("from pathlib import Path; from benchmarks.report import plot_per_type, per_type_figure;"
            "s = {'model': 'm', 'benchmarks': {'zh': {'per_type': {'中文:字数': {'passed': 1, 'total': 2, "
            "'rate': 0.5, 'undecided': 0}}}}};"
            f"plot_per_type(s, Path({str(tmp_path / 'p.png')!r}));"
            "print(per_type_figure(s).axes[0].get_yticklabels()[0].get_text())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    from benchmarks.report import _fonts

    _, drawable = _fonts()
    label = out.stdout.strip()
    if drawable("中"):
        assert label == "中文:字数 (n=2)"
    else:
        assert label == "\\u4e2d\\u6587:\\u5b57\\u6570 (n=2)"
