"""Shutdown always ends, and forked children start afresh (issue 16, item 3; issue 18's README exit noise).

The servers here are plain sockets on loopback: one that accepts a connection and never answers (the
issue's smallest form of a hung judge), one that answers every chat completion with "Yes". Waiting is on
events the server sets (a connection accepted), never on sleeps; the only bounds are generous liveness
limits (a thread that has not ended after a minute is hung), not timings.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from verifier.backends.openai_backend import BackendClosedError, OpenAIBackend
from verinstruct.schema import Constraint, Instance, LLMCheck

LIVENESS = 60.0  # seconds: a thread still running after this is hung, not slow


@contextmanager
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """Accepts connections and never answers; the event is set once a request has arrived."""
    srv = socket.create_server(("127.0.0.1", 0))
    got = threading.Event()
    conns: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            conns.append(c)
            c.settimeout(5)
            try:
                if c.recv(65536):
                    got.set()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/v1", got
    finally:
        stop.set()
        t.join(5)
        for c in conns:
            c.close()
        srv.close()


@contextmanager
def yes_server() -> Iterator[str]:
    """Answers every POST with a chat completion saying "Final answer: Yes" (HTTP/1.1, keep-alive)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Final answer: Yes"},
                                    "finish_reason": "stop", "logprobs": None}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


def _soft_instance() -> Instance:
    return Instance("s1", "Write a poem.", (Constraint("Tone", "soft", "Use a sad tone.", LLMCheck()),))


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_backend_close_releases_a_waiting_caller() -> None:
    with silent_server() as (url, got):
        backend = OpenAIBackend("m", url, timeout=600, max_retries=0)
        t, box = _in_thread(lambda: backend.generate([[{"role": "user", "content": "hi"}]],
                                                     __import__("verifier.backends.base", fromlist=["x"])
                                                     .GenerationConfig(max_tokens=4)))
        assert got.wait(LIVENESS), "the request never reached the server"
        backend.close()
        t.join(LIVENESS)
        assert not t.is_alive(), "generate() still waiting after close()"
        assert isinstance(box.get("error"), BackendClosedError), box
        with pytest.raises(BackendClosedError, match="closed"):
            backend.score([[{"role": "user", "content": "hi"}]], ["Yes", "No"])


def test_scorer_close_from_another_thread_gives_undecided_closed_verdicts() -> None:
    """The issue's form: a server that never answers, score_batch in thread A, Scorer.close() in the main
    thread. Before the fix thread A waited forever; the docs promise undecided verdicts."""
    from verinstruct.scorer import Scorer

    with silent_server() as (url, got):
        scorer = Scorer("openai:judge", base_url=url, timeout=600, max_retries=0)
        t, box = _in_thread(lambda: scorer.score_batch([_soft_instance()], ["a sad poem"]))
        assert got.wait(LIVENESS), "the request never reached the server"
        scorer.close()
        t.join(LIVENESS)
        assert not t.is_alive(), "score_batch() still waiting after Scorer.close()"
        assert "error" not in box, box.get("error")
        (scored,) = box["result"]
        (r,) = scored.constraints
        assert r.verdict.passed is None and "closed" in (r.verdict.error or ""), r.verdict
        with pytest.raises(RuntimeError, match="after close"):
            scorer.score_batch([_soft_instance()], ["x"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_forked_child_uses_its_own_backend_loop_and_sandbox() -> None:
    """A child forked after the parent used the Scorer (TRL/accelerate and user code fork) inherits a dead
    loop thread and the parent's sandbox pipes; before the fix its first call hung. The child reports
    through a pipe; the parent checks the child ended and what it scored."""
    from verinstruct.schema import CodeCheck
    from verinstruct.scorer import Scorer

    code = "def check_following(instruction, response):\n    return 'sad' in response\n"
    inst = Instance("f1", "Write a sad poem.", (Constraint("Tone", "soft", "Use a sad tone.", LLMCheck()),
                                                  Constraint("Word", "hard", "Say sad.", CodeCheck(code))))
    with yes_server() as url:
        scorer = Scorer("openai:judge", base_url=url, timeout=60, max_retries=0, sandbox_workers=1,
                        verifier_mode="generate")
        before = scorer.score_batch([inst], ["a sad poem"])[0]
        assert [c.verdict.passed for c in before.constraints] == [True, True], before.constraints[0].verdict
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            try:
                got = scorer.score_batch([inst], ["a sad poem"])[0]
                msg = json.dumps([c.verdict.passed for c in got.constraints])
            except BaseException as e:  # noqa: BLE001
                msg = json.dumps(f"{type(e).__name__}: {e}")
            os.write(w, msg.encode())
            os._exit(0)
        os.close(w)
        done = threading.Event()
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: (out.append(os.read(r, 65536)), done.set()), daemon=True)
        reader.start()
        if not done.wait(LIVENESS):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on its first score_batch")
        os.waitpid(pid, 0)
        os.close(r)
        assert json.loads(out[0]) == [True, True], out
        # the parent's own sandbox and loop still work after the child is gone
        again = scorer.score_batch([inst], ["a happy poem"])[0]
        assert [c.verdict.passed for c in again.constraints] == [True, False], again.constraints[1].verdict
        scorer.close()


def test_half_built_scorer_and_interpreter_exit_are_silent() -> None:
    """issue 18: the README's Python section ended with 'Exception ignored in: Scorer.__del__ ...
    AttributeError' at interpreter exit (module globals are gone when the finaliser runs)."""
    import subprocess

    code = ("import verinstruct\n"
            "keep = verinstruct.Scorer(verifier=None)\n"  # alive until interpreter teardown
            "try:\n    verinstruct.Scorer(mode='nope')\nexcept ValueError:\n    pass\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
