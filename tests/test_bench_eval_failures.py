"""`verif eval` with the mistakes users make about the model server, run as the user runs it (the CLI in a
subprocess) against a loopback fake OpenAI-compatible server: a server that is down or a model name it does
not serve gives exit 1 and one line, nothing is scored, and once the server is right the SAME command
generates those samples again and ends with the same files as a run that never failed. Settings, the judge
included, are compared on resume. Also what the user sees while it runs: plain progress lines in a log,
none with VERINSTRUCT_PROGRESS=0, and Ctrl-C saying how to resume.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SERVED = "good-model"


AUTH: list[str | None] = []


class _Handler(BaseHTTPRequestHandler):
    """Serves only SERVED, answering with the prompt in upper case (deterministic); 404 for other names,
    as vLLM's server does ("The model `x` does not exist.")."""

    delay = 0.0

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        AUTH.append(self.headers.get("Authorization"))
        time.sleep(self.delay)
        if body["model"] != SERVED:
            self._send(404, {"error": {"message": f"The model `{body['model']}` does not exist.",
                                       "type": "NotFoundError", "code": 404}})
            return
        text = body["messages"][-1]["content"].upper()
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split())}})

    def _send(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a: object) -> None:
        pass


class _Server:
    def __init__(self, port: int = 0) -> None:
        self.srv = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/v1"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    _Handler.delay = 0.0
    s = _Server()
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmd(out: Path, url: str, *extra: str, model: str = SERVED, progress: bool = False) -> list[str]:
    return [sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--model", f"openai:{model}",
            "--base-url", url, "-b", "ifeval", "--limit", "3", "--no-llm", *([] if progress else ["--no-progress"]),
            "--out", str(out), *extra]


def _eval(out: Path, url: str, *extra: str, model: str = SERVED, env: dict[str, str] | None = None,
          progress: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(out, url, *extra, model=model, progress=progress), capture_output=True, text=True,
                          timeout=300, env=env)


def _error_lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]


def test_a_server_that_is_down_fails_the_run_and_the_same_command_retries(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    out, ref = tmp_path / "run", tmp_path / "ref"
    res = _eval(out, url)
    assert res.returncode == 1, res.stderr[-2000:]
    [line] = _error_lines(res)
    assert "3 of 3 generations by openai:good-model" in line and url in line and "run the same command" in line
    s = json.loads((out / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert s["samples"] == 0 and s["failed_generation"] == 3 and s["metrics"] == {}  # nothing scored as an answer
    assert "(0 samples; 3 more failed generation, not scored)" in (out / "summary.md").read_text()

    srv = _Server(port)  # the server is up now: the same command generates the three samples
    try:
        res = _eval(out, url)
        assert res.returncode == 0, res.stderr[-2000:]
        assert _eval(ref, url).returncode == 0
    finally:
        srv.close()
    s = json.loads((out / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert s["samples"] == 3 and s["failed_generation"] == 0
    assert s["metrics"]["prompt_strict"]["total"] == 3 and s["metrics"]["prompt_strict"]["undecided"] == 0
    assert (out / "samples" / "ifeval.jsonl").read_bytes() == (ref / "samples" / "ifeval.jsonl").read_bytes()
    assert (out / "summary.md").read_text() == (ref / "summary.md").read_text()


def test_a_wrong_model_name_is_exit_1_with_the_servers_reason_then_the_right_one_runs(server: _Server,
                                                                                       tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _eval(out, server.url, "--chunk-size", "1", model="gpt-typo")
    assert res.returncode == 1
    [line] = _error_lines(res)
    assert "1 of 3 generations" in line and "does not exist" in line and "gpt-typo" in line
    assert "stopped after a first chunk that failed entirely, 2 samples not tried" in line  # not 3 x the same 404
    s = json.loads((out / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert (s["samples"], s["failed_generation"], s["not_generated"]) == (0, 1, 2)
    # nothing was generated, so the corrected name is no "different settings": it generates all three
    res = _eval(out, server.url)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["benchmarks"]["ifeval"]["samples"] == 3
    records = [json.loads(x) for x in (out / "samples" / "ifeval.jsonl").read_text().splitlines()]
    assert len(records) == 3 and not any("failed" in r for r in records)


def test_resume_refuses_another_judge_unless_forced(server: _Server, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _eval(out, server.url).returncode == 0
    judged = [sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--model", f"openai:{SERVED}",
              "--base-url", server.url, "-b", "ifeval", "--limit", "3", "--no-progress", "--out", str(out),
              "--verifier", "openai:judge", "--verifier-base-url", server.url]
    res = subprocess.run(judged, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    [line] = _error_lines(res)
    assert "different settings (judge)" in line and "--force-resume" in line
    for other in (["--judge-template", "en"], ["--judge-mode", "generate"]):
        res = subprocess.run([*judged[:-4], "--verifier", "transformers:default", *other], capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 2 and "different settings (judge)" in res.stderr, other
    res = subprocess.run([*judged, "--force-resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["force_resumed"] is True and run["judge"]["verifier"] == "openai:judge"
    assert subprocess.run(judged, capture_output=True, timeout=300).returncode == 0  # same settings as now recorded


def test_a_smaller_limit_on_a_finished_run_keeps_the_summary_whole(server: _Server, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _eval(out, server.url).returncode == 0
    res = _eval(out, server.url, "--limit", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert s["samples"] == 3 and s["metrics"]["prompt_strict"]["total"] == 3


def test_progress_in_a_log_is_plain_lines_and_can_be_turned_off(server: _Server, tmp_path: Path) -> None:
    env = {**os.environ, "VERINSTRUCT_PROGRESS_INTERVAL": "0"}
    res = _eval(tmp_path / "a", server.url, "--chunk-size", "1", env=env, progress=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "\r" not in res.stderr
    assert any(ln.startswith("ifeval: 3/3 samples (100%)") for ln in res.stderr.splitlines()), res.stderr
    res = _eval(tmp_path / "b", server.url, env={**env, "VERINSTRUCT_PROGRESS": "0"}, progress=True)
    assert res.returncode == 0 and "samples (" not in res.stderr, res.stderr


def test_ctrl_c_says_the_run_can_be_resumed(server: _Server, tmp_path: Path) -> None:
    _Handler.delay = 0.3
    out = tmp_path / "run"
    cmd = _cmd(out, server.url, "--chunk-size", "1")
    cmd[cmd.index("--limit") + 1] = "40"
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = out / "samples" / "ifeval.jsonl"
    t0 = time.monotonic()
    while not (samples.exists() and samples.read_bytes().count(b"\n") >= 2):
        assert p.poll() is None and time.monotonic() - t0 < 120, "never reached two samples"
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "interrupted" in line and "run the same command again to resume" in line and "Traceback" not in err
    _Handler.delay = 0.0
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["benchmarks"]["ifeval"]["samples"] == 40


def test_the_api_key_reaches_the_server_and_is_not_recorded(server: _Server, tmp_path: Path) -> None:
    AUTH.clear()
    out = tmp_path / "run"
    res = _eval(out, server.url, "--api-key", "sk-test-123")
    assert res.returncode == 0, res.stderr[-2000:]
    assert AUTH and set(AUTH) == {"Bearer sk-test-123"}
    assert not any("sk-test-123" in p.read_text() for p in out.rglob("*") if p.is_file() and p.suffix != ".png")
    assert _eval(out, server.url, "--api-key", "sk-other").returncode == 0  # a new key is no new setting


def test_a_judge_that_never_answers_is_exit_1(server: _Server, tmp_path: Path, unused_port: int) -> None:
    fixture = Path(__file__).parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
    dead = f"http://127.0.0.1:{unused_port}/v1"
    res = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--model",
                          f"openai:{SERVED}", "--base-url", server.url, "-b", "verinstruct", "--data", str(fixture),
                          "--limit", "2", "--no-progress", "--verifier", "openai:judge", "--verifier-base-url", dead,
                          "--judge-mode", "generate", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr[-2000:]
    [line] = _error_lines(res)
    assert "the judge openai:judge at " + dead + " never answered" in line and "--overwrite" in line
    soft = json.loads((tmp_path / "run" / "summary.json").read_text())["benchmarks"]["verinstruct"]["metrics"][
        "soft_pass_rate"]
    assert soft["total"] > 0 and soft["undecided"] == soft["total"]
