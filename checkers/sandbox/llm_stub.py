"""The ``llm_call`` module dataset code imports inside the sandbox (stdlib only).

Each function forwards (name, args) to the parent over the call's socket and returns the parent's
answer. The parent may instead say:

* ``needs``: this run has no LLM callback: raise NeedsLLM;
* ``defer``: the answer is being gathered into a batch with other calls' requests: raise Deferred; the
  call's result is discarded and the parent runs the call again once the answer is in (then it is
  answered at once).

The stub remembers either outcome, so code that swallows the exception still ends as "needs LLM
verifier" or deferred, never as a silent pass or fail.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

try:
    from . import protocol
except ImportError:  # loaded flat inside the worker process
    import protocol  # type: ignore[no-redef]


class NeedsLLM(BaseException):
    """Raised when dataset code calls an LLM function and no LLM callback is configured."""


class LLMFailed(BaseException):
    """Raised when the parent's LLM callback failed for this request."""


class Deferred(BaseException):
    """Raised when the parent gathers this request's answer into a batch; the call is run again later."""


class State:
    """The relay's state in the call's own process: it exists once per call (the process is forked for
    that call alone), so whatever dataset code does to it ends with the call."""

    def __init__(self) -> None:
        self.fd: int = -1
        self.reader = protocol.FrameReader()
        #: sends the results the runner holds back (see ``runner.Results``) before a request goes out, so the
        #: scheduler charges the request to the call that sends it
        self.before_request: Any = None
        self.reset()

    def reset(self) -> None:
        self.needed: str | None = None
        self.failed: str | None = None
        self.deferred = False


STATE = State()


def _request(name: str, args: tuple, kwargs: dict) -> Any:
    params = protocol.LLM_PARAMS[name]
    values = list(args)
    for p in params[len(values):]:
        if p in kwargs:
            values.append(kwargs.pop(p))
    if kwargs or len(values) != len(params):
        raise TypeError(f"{name}() takes ({', '.join(params)}), got {len(args)} positional and {sorted(kwargs)}")
    try:
        nonce = os.urandom(8).hex()  # unknown to earlier calls: a stale or injected reply cannot match
        frame = protocol.encode({"t": "llm", "f": name, "a": values, "n": nonce})
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}() arguments must be JSON values: {e}") from None
    if STATE.before_request is not None:
        STATE.before_request()
    protocol.write_all(STATE.fd, frame)
    reply = STATE.reader.read_frame(STATE.fd)
    while not isinstance(reply, dict) or reply.get("n") != nonce:
        reply = STATE.reader.read_frame(STATE.fd)
    if reply.get("defer"):
        STATE.deferred = True
        raise Deferred(name)
    if reply.get("needs"):
        STATE.needed = STATE.needed or f"{name}() called"
        raise NeedsLLM(name)
    if not reply.get("ok"):
        STATE.failed = STATE.failed or f"{name}(): {reply.get('e')}"
        raise LLMFailed(STATE.failed)
    return reply.get("v")


def _make(name: str) -> Any:
    def fn(*args: Any, **kwargs: Any) -> Any:
        return _request(name, args, kwargs)

    fn.__name__ = fn.__qualname__ = name
    return fn


def install() -> types.ModuleType:
    """Put the ``llm_call`` module into sys.modules (done once, in the zygote)."""
    mod = types.ModuleType("llm_call", "LLM functions for dataset code, answered by the sandbox's parent.")
    for name in protocol.LLM_FUNCTIONS:
        setattr(mod, name, _make(name))
    sys.modules["llm_call"] = mod
    return mod
