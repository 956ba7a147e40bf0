"""`verif` discovers eval/compare through the entry-point group; compare shows differences; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from verinstruct.cli import _register, app

_register()


def _summary(d: Path, model: str, strict: tuple[int, int]) -> Path:
    d.mkdir()
    m = {"prompt_strict": {"passed": strict[0], "total": strict[1], "rate": strict[0] / strict[1], "undecided": 0}}
    (d / "summary.json").write_text(json.dumps({"model": model, "benchmarks": {"ifeval": {
        "metrics": m, "headline": ["prompt_strict"]}}}))
    return d


def test_verif_lists_eval_and_compare_from_the_entry_point() -> None:
    from importlib.metadata import entry_points

    assert any(ep.value == "benchmarks.cli:register" for ep in entry_points(group="verinstruct.cli"))
    out = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and " eval " in out.stdout and " compare " in out.stdout


def test_compare_prints_runs_side_by_side_with_deltas(tmp_path: Path) -> None:
    a = _summary(tmp_path / "base", "base-model", (40, 100))
    b = _summary(tmp_path / "rl", "rl-model", (55, 100))
    res = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert "prompt_strict" in res.output and "40.0 (40/100)" in res.output and "55.0 (55/100) [+15.0]" in res.output
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    assert json.loads(res.output)[0]["delta_points"] == [0.0, 15.0]
    res = CliRunner().invoke(app, ["compare", str(a), str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no summary.json" in res.output


def test_offline_hub_without_data_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "-b", "ifbench",
                          "--responses", os.devnull, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "allenai/IFBench_test" in lines[0] and "--data PATH" in lines[0], out.stderr


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "-b", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown benchmark 'nope'" in res.output
    res = CliRunner().invoke(app, ["eval", "--thinking", "maybe", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--thinking" in res.output


def test_an_unreachable_hub_is_one_line_without_retry_noise(tmp_path: Path, unused_port: int) -> None:
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{unused_port}", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_DATASETS_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "-b", "ifbench",
                          "--responses", os.devnull, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "allenai/IFBench_test" in lines[0] and "verif benchmarks" in lines[0], out.stderr
    assert not (tmp_path / "o").exists()
