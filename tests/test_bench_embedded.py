"""The README's first command, small: `verif eval` with the embedded model on bundled IFEval prompts, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quick_start_prints_the_table_offline(tmp_path: Path) -> None:
    from verifier.embedded import EmbeddedModelMissing, locate_default_gguf

    try:
        locate_default_gguf()
    except EmbeddedModelMissing as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "VERINSTRUCT_PROGRESS_INTERVAL": "0"}
    out = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--limit", "2",
                          "--max-tokens", "16", "--batch-size", "2", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=1200, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| prompt_strict |" in out.stdout and "| inst_loose |" in out.stdout
    assert "samples/s" in out.stderr and "\r" not in out.stderr  # plain progress lines in a log, with throughput
    rec = [json.loads(line) for line in (tmp_path / "samples" / "ifeval.jsonl").read_text().splitlines()]
    assert len(rec) == 2 and all(r["turns"][0]["error"] is None and r["turns"][0]["completion_tokens"] > 0 for r in rec)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "transformers:default" and summary["generation"]["max_tokens"] == 16
    assert "report.html" in out.stderr and (tmp_path / "report.html").stat().st_size > 1000
