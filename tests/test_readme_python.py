"""The README's Python section runs as written (offline, no LLM), so its snippets cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_section_code() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Python\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README has no '## Python' section"
    blocks = re.findall(r"^```python\n(.*?)^```", m.group(1), re.S | re.M)
    assert len(blocks) >= 4, "expected snippets for load, row_to_instance, Scorer and verdicts"
    return "\n".join(blocks)


def test_readme_python_section_runs() -> None:
    code = python_section_code()
    for needle in ("verinstruct.load(", "row_to_instance(", "verinstruct.Scorer(", ".score_batch(", ".verdict"):
        assert needle in code, needle
    env = dict(os.environ, HF_HUB_OFFLINE="1", VERINSTRUCT_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # issue 18: it used to end with "Exception ignored in: Scorer.__del__ ... AttributeError" at exit
    assert proc.stderr == "", proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert out[0].split()[0] == str(len((ROOT / "examples" / "verinstruct_sample.jsonl").read_text().splitlines()))
    # one summary line per scored pair, and every constraint printed with its verdict
    assert any(line.startswith("vi-001 hard ") for line in out)
    assert any(line.startswith("1 hard 2/2 soft 0/0") for line in out)
    assert any("needs LLM verifier" in line for line in out)
