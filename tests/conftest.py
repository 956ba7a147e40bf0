"""Fixtures shared by several test files (tests are not a package: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on right now (for a server to start on, or to be refused by)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants() -> set[int]:
    """Every live descendant of this test process (scanning /proc: psutil is not a dependency)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parent[int(d)] = int(fields[1])
    out: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        nxt = {p for p, pp in parent.items() if pp in frontier and p not in out}
        out |= nxt
        frontier = nxt
    return out


@pytest.fixture(scope="session")
def descendants() -> Callable[[], set[int]]:
    """A function listing the live descendant processes of this test process (to prove none is left)."""
    return _descendants


class _ScriptedBackend:
    """A verifier backend whose answer to each prompt is ``decide(prompt text)``; records the prompts."""

    kind = "fake"
    model = "scripted-judge"

    def __init__(self, decide):  # type: ignore[no-untyped-def]
        self.decide = decide
        self.seen: list[str] = []

    def generate(self, batch, config):  # type: ignore[no-untyped-def]
        from verifier.backends.base import GenResult

        out = []
        for msgs in batch:
            text = "\n".join(m["content"] for m in msgs)
            self.seen.append(text)
            out.append(GenResult(self.decide(text)))
        return out

    def score(self, batch, candidates):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def close(self) -> None:
        pass


@pytest.fixture
def scripted_verifier():  # type: ignore[no-untyped-def]
    """``scripted_verifier(decide)``: a real :class:`verifier.Verifier` (answer-only template, generate mode)
    over a fake backend answering ``decide(prompt)`` ("Yes" / "No" / anything unparseable)."""
    from verifier import Verifier
    from verifier.prompts import load_template

    def make(decide):  # type: ignore[no-untyped-def]
        return Verifier(backend=_ScriptedBackend(decide), mode="generate", template=load_template("en"))

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (env ``CI`` set) a test that cannot run fails instead of skipping, unless it needs a GPU
    (``@pytest.mark.gpu``): a missing dependency, model or data file must not pass CI unnoticed."""
    outcome = yield
    rep = outcome.get_result()
    if (
        rep.skipped
        and os.environ.get("CI")
        and not hasattr(rep, "wasxfail")
        and item.get_closest_marker("gpu") is None
    ):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped in CI, where a test that cannot run fails (CI is set): {reason}"
