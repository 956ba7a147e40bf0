"""A commit's code as a folder, for the perf scripts that time this tree against a base commit."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def old_tree(ref: str, out: Path) -> Path:
    """The code of ``ref`` extracted under ``out`` (git archive: no worktree bookkeeping to clean up)."""
    proc = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True)
    if proc.returncode != 0:
        print(f"error: --baseline git:{ref}: git archive failed: {proc.stderr.decode(errors='replace').strip()}",
              file=sys.stderr)
        raise SystemExit(2)
    data = proc.stdout
    tar_path = out / "src.tar"
    tar_path.write_bytes(data)
    with tarfile.open(tar_path) as tf:
        tf.extractall(out / "src", filter="data")
    return out / "src"
