"""The shared progress helper: a bar on a terminal, plain periodic lines elsewhere, nothing when turned off;
and `verif score` / `verif data lint` use it (stderr, never stdout)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verinstruct.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
RAW = Path(__file__).resolve().parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_interval_with_rate_and_eta() -> None:
    err = io.StringIO()
    with Progress(4, "score", stream=err, interval=0.0, enabled=True) as p:
        p.update(2)
        p.update(2)
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("score: 2/4 rows (50%), ") and "rows/s" in lines[0] and "ETA " in lines[0]
    assert lines[1].startswith("score: 4/4 rows (100%), ") and "ETA 0:00" in lines[1]


def test_heartbeat_between_updates() -> None:
    err = io.StringIO()
    with Progress(4, "score", stream=err, interval=0.2, enabled=True):
        time.sleep(0.7)  # one long batch: no update, yet the log hears from it
    lines = err.getvalue().splitlines()
    assert lines and all(ln.startswith("score: 0/4 rows (0%), 0.0 rows/s, elapsed 0:0") for ln in lines), lines


def test_no_line_before_the_interval_and_none_when_disabled() -> None:
    err = io.StringIO()
    with Progress(4, "check", stream=err, interval=3600.0, enabled=True) as p:
        p.update(4)
    assert err.getvalue() == ""
    with Progress(4, "check", stream=err, interval=0.0, enabled=False) as p:
        p.update(4)
    assert err.getvalue() == ""


def test_bar_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    tty = FakeTTY()
    with Progress(10, "lint", stream=tty, enabled=True) as p:
        time.sleep(0.2)  # tqdm redraws at most every 0.1 s
        p.update(5)
        p.echo("a row line")  # goes to stdout without tearing the bar
        p.update(5)
    drawn = tty.getvalue()
    assert "lint:" in drawn and "5/10" in drawn and "rows/s" in drawn and "\r" in drawn
    assert capsys.readouterr().out == "a row line\n"


@pytest.mark.parametrize("cmd", [["score", "--input", str(RAW), "--no-llm", "-q"], ["data", "lint", str(RAW)]])
def test_commands_report_progress_on_stderr(cmd: list[str]) -> None:
    env = {**os.environ, "VERINSTRUCT_PROGRESS": "1", "VERINSTRUCT_PROGRESS_INTERVAL": "0"}
    proc = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", *cmd], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    name = cmd[0] if cmd[0] == "score" else "lint"
    assert proc.stderr.strip().splitlines()[-1].startswith(f"{name}: 34/34 rows (100%)"), proc.stderr
    assert f"{name}: " not in proc.stdout
