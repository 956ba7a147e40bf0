"""In CI a skipped test fails (GPU-only tests aside): the hook in conftest.py, run on a scratch suite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = '''
import pytest

def test_needs_a_missing_thing():
    pytest.importorskip("no_such_module_here")

@pytest.mark.gpu
def test_needs_a_gpu():
    pytest.skip("no CUDA GPU")

@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False

def test_runs():
    assert True
'''


def _outcome(tmp_path: Path, ci: bool) -> str:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_scratch.py").write_text(SUITE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return res.stdout.strip().splitlines()[-1]


def test_skips_fail_in_ci_except_gpu_tests(tmp_path: Path) -> None:
    last = _outcome(tmp_path, ci=True)
    assert "1 failed" in last and "1 passed" in last and "1 skipped" in last and "1 xfailed" in last, last


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    last = _outcome(tmp_path, ci=False)
    assert not re.search(r"\d+ failed", last) and "2 skipped" in last, last
