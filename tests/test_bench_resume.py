"""Interrupt-and-resume of `verif eval` with real SIGKILLs: after 0 samples, mid-benchmark, after a whole
benchmark. The resumed run must end with the same sample files and summary as an uninterrupted one.

Generation is a deterministic fake OpenAI-compatible server (a loopback thread in this process), so both
runs see identical answers; the CLI runs in real subprocesses, killed while they work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
N_IFEVAL = 12


def answer(messages: list[dict]) -> str:
    """Deterministic 'model': lowercases the prompt and repeats it (some IFEval checks pass, some fail)."""
    user = messages[-1]["content"]
    return f"{user.lower()}\n\n{user[: len(user) // 2]}"


class _Handler(BaseHTTPRequestHandler):
    delay = 0.0

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay)
        text = answer(body["messages"])
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split())}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def fake_model():  # type: ignore[no-untyped-def]
    _Handler.delay = 0.15
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _cmd(url: str, out: Path) -> list[str]:
    return [sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--model", "openai:fake",
            "--base-url", url, "--benchmarks", "ifeval,verinstruct", "--data", f"verinstruct={FIXTURE}",
            "--limit", str(N_IFEVAL), "--chunk-size", "2", "--no-llm", "--no-progress", "--out", str(out)]


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _run_until(cmd: list[str], ready, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    """Start the command and SIGKILL it as soon as ``ready()`` holds (it must still be running then)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while not ready():
            if p.poll() is not None:
                pytest.fail(f"finished before the kill point: {p.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.monotonic() - t0 > timeout:
                pytest.fail("kill point never reached")
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
        p.stderr.close()  # type: ignore[union-attr]
    assert p.returncode == -signal.SIGKILL


def test_killed_runs_resume_to_the_uninterrupted_result(fake_model: str, tmp_path: Path) -> None:
    if not FIXTURE.is_file():
        pytest.fail(f"fixture missing: {FIXTURE}")
    ref, out = tmp_path / "ref", tmp_path / "killed"
    done = subprocess.run(_cmd(fake_model, ref), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    n_vi = _lines(ref / "samples" / "verinstruct.jsonl")
    assert _lines(ref / "samples" / "ifeval.jsonl") == N_IFEVAL and n_vi > 2

    ifeval, vi = out / "samples" / "ifeval.jsonl", out / "samples" / "verinstruct.jsonl"
    _run_until(_cmd(fake_model, out), lambda: (out / "run.json").exists())          # after 0 samples
    assert _lines(ifeval) == 0
    _run_until(_cmd(fake_model, out), lambda: _lines(ifeval) >= 4)                   # mid-benchmark
    assert 4 <= _lines(ifeval) < N_IFEVAL
    _run_until(_cmd(fake_model, out), lambda: _lines(ifeval) == N_IFEVAL)            # a whole benchmark done
    assert _lines(vi) < n_vi
    # a torn last line (killed mid-write on another filesystem) is cut off, not trusted
    with ifeval.open("ab") as f:
        f.write(b'{"id": "torn", "tur')
    final = subprocess.run(_cmd(fake_model, out), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]

    for name in ("ifeval.jsonl", "verinstruct.jsonl"):
        assert (out / "samples" / name).read_bytes() == (ref / "samples" / name).read_bytes(), name
    assert json.loads((out / "summary.json").read_text()) == json.loads((ref / "summary.json").read_text())
    assert (out / "summary.md").read_text() == (ref / "summary.md").read_text()


def test_resume_refuses_other_settings(fake_model: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = _cmd(fake_model, out)
    cmd[cmd.index("--limit") + 1] = "2"
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    other = cmd + ["--system-prompt", "Be brief."]
    res = subprocess.run(other, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "different settings (generation)" in res.stderr
    assert subprocess.run(other + ["--overwrite"], capture_output=True, timeout=300).returncode == 0
    shutil.rmtree(out)
