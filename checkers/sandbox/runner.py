"""What runs in the call's own process (stdlib only): one call, its result to its own socket, exit.

The process was forked from the clean zygote for this call alone and is locked down already. It holds
no other call and no secret: whatever the code changes (modules, builtins, frames, the LLM stub's state,
signal handlers) is its own copy and dies with it. The only way out is the call's socket, whose frames
the scheduler attributes to this call and no other."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import signal
import sys
import time
from typing import Any

if __package__:
    from . import codeship, llm_stub, protocol
else:  # loaded flat by BOOT, without importing the checkers package
    import codeship  # type: ignore[no-redef]
    import llm_stub  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]


def seed_for(source_hash: str, prompt: str, response: str) -> int:
    """Every run of a call starts from the same state: random generators seeded from (code, prompt,
    response), so a re-run takes the same path and asks the same questions."""
    h = hashlib.sha256()
    for part in (source_hash, prompt, response):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return int.from_bytes(h.digest()[:8], "little")


def run_unit(fd: int, body: bytes, clean_builtins: dict, state: Any) -> int:
    """Run the calls in ``body`` one after another (JSON: ``c``: marshalled code by source hash, ``k``:
    [hash, prompt, response] per call, all of one dataset row, ``cpu``: seconds per call); send one result
    frame per call, in order; exit status.

    Each call starts from the same state whatever ran before it in this process: fresh globals and
    builtins, ``random``/``numpy.random`` seeded from (code, prompt, response), the LLM stub reset, the
    process-wide state ``state`` (a ``callstate.CallState`` the zygote captured) restores, and
    its own CPU allowance (RLIMIT_CPU's soft limit moved to its start plus ``cpu_seconds``). When calls
    were deferred (their LLM answers are being gathered into a batch), the process sends ``park`` and
    waits, stopped by the scheduler, for ``go`` with the positions to run again (or ``spent`` when the
    row's CPU allowance would not cover them: the scheduler runs them in a fresh process)."""
    try:
        req = protocol.decode(body)
        calls = req["k"]
        shipped = req["c"]
        cpu_s = int(float(req["cpu"]) + 0.999) + 1
        results = Results(fd, bool(req.get("b")))
        keep = bool(req.get("p"))
    except Exception as e:  # noqa: BLE001 - the scheduler wrote it; never expected
        send_result(fd, None, f"{protocol.ERR_SANDBOX}: call not readable ({type(e).__name__})")
        return 0
    codes: dict[str, Any] = {}
    llm_stub.STATE.fd = fd
    llm_stub.STATE.before_request = results.flush
    state.start()
    positions: list[int] = list(range(len(calls)))
    first = True
    while True:
        deferred = []
        for pos in positions:
            if not first:
                state.restore()  # as the first call found the process
            first = False
            err = _run_at(results, calls[pos], shipped, codes, cpu_s, clean_builtins, state)
            if err == protocol.DEFERRED:
                deferred.append(pos)
        results.flush()
        if not deferred or not keep:  # not kept: the deferred calls run again in a fresh process
            return 0
        positions = _wait_for_go(fd, deferred, len(calls), cpu_s)
        if not positions:
            return 0


def _wait_for_go(fd: int, deferred: list[int], n: int, cpu_s: int) -> list[int]:
    """Park: tell the scheduler, wait for ``go`` and the positions to run again; [] to exit."""
    import resource

    try:
        protocol.write_all(fd, protocol.encode({"t": "park", "k": deferred}))
        msg = llm_stub.STATE.reader.read_frame(fd)
    except BaseException:  # noqa: BLE001 - the scheduler closed the socket: nothing left to do
        return []
    if not isinstance(msg, dict) or msg.get("t") != "go":
        return []
    positions = msg.get("k")
    if not isinstance(positions, list) or not all(type(p) is int and 0 <= p < n for p in positions):
        return []
    try:
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = hard >= 0 and used.ru_utime + used.ru_stime + cpu_s * len(positions) + 1 > hard
    except BaseException:  # noqa: BLE001
        spent = True
    if spent:
        with contextlib.suppress(BaseException):
            protocol.write_all(fd, protocol.encode({"t": "spent"}))
        return []
    return positions


class Results:
    """Result frames on their way to the scheduler. With ``hold``, fast calls' results go out together
    (at most ``HOLD_CALLS`` of them, and none held longer than ``HOLD_S`` after a call ends, nor across an
    ``llm_*`` request): one scheduler wake-up for many calls. Held results die with the process if it ends
    early; the scheduler then runs the unreported calls again in a process that holds nothing, where the
    first call without a result is the one that ended it."""

    HOLD_CALLS = 32
    HOLD_S = 0.002

    def __init__(self, fd: int, hold: bool) -> None:
        self.fd = fd
        self.hold = hold
        self.frames: list[bytes] = []
        self.since = time.monotonic()

    def add(self, frame: bytes) -> None:
        self.frames.append(frame)
        if not self.hold or len(self.frames) >= self.HOLD_CALLS or time.monotonic() - self.since >= self.HOLD_S:
            self.flush()

    def flush(self) -> None:
        if self.frames:
            data, self.frames = b"".join(self.frames), []
            with contextlib.suppress(BaseException):  # the scheduler reports the exit instead
                protocol.write_all(self.fd, data)
        self.since = time.monotonic()


def _run_at(results: Results, call: Any, shipped: dict, codes: dict, cpu_s: int, clean_builtins: dict,
            state: Any) -> str | None:
    """Run one call from the same state as any other and send its result; its error (None: a verdict)."""
    import resource

    h, prompt, response = call
    try:
        hard = state.cpu_hard
        if hard is None:  # once per process: it can only go down (then setrlimit fails and it holds)
            hard = state.cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime) + cpu_s
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard < 0 else min(soft, hard), hard))
    except BaseException:  # noqa: BLE001 - an earlier call of this row changed it: the hard limit holds
        pass
    state.seed_call(seed_for(h, prompt, response))
    # how many modules were loaded, not which: a set of the names would write to the page of every name's
    # refcount (copy-on-write faults); imports append to sys.modules, so the new names are its tail
    n_before = len(sys.modules)
    code = codes.get(h)
    if code is None:
        try:
            code = codes[h] = codeship.unship(shipped[h])
        except Exception as e:  # noqa: BLE001
            err = f"{protocol.ERR_SANDBOX}: code object not readable ({type(e).__name__})"
            results.add(result_frame(None, err))
            return err
    passed, err = run_one(code, prompt, response, clean_builtins)
    with contextlib.suppress(BaseException):  # the code may have patched builtins our reporting uses
        real = clean_builtins["__import__"]("builtins").__dict__
        real.clear()
        real.update(clean_builtins)
    try:
        learnt = _newest(sys.modules, len(sys.modules) - n_before)
    except BaseException:  # noqa: BLE001 - sys.modules replaced by the code
        learnt = []
    results.add(result_frame(passed, err, learnt))
    return err


def _newest(modules: dict[str, Any], n: int) -> list[Any]:
    """The last ``n`` (at most 64) names of ``modules``: a hint of what the zygote could preload, touching
    only those names (a module the code removed may shift it; the hint is checked by the scheduler)."""
    if n <= 0:
        return []
    return list(itertools.islice(reversed(modules), min(n, 64)))[::-1]


def result_frame(passed: bool | None, err: str | None, learnt: list[Any] | None = None) -> bytes:
    return protocol.encode({"t": "res", "p": passed, "e": None if err is None else str(err)[:400],
                            "m": [m for m in (learnt or []) if type(m) is str][:64]})


def send_result(fd: int, passed: bool | None, err: str | None, learnt: list[Any] | None = None) -> None:
    with contextlib.suppress(BaseException):  # the scheduler reports the exit instead
        protocol.write_all(fd, result_frame(passed, err, learnt))


def run_one(code: Any, prompt: str, response: str, clean_builtins: dict) -> tuple[bool | None, str | None]:
    st = llm_stub.STATE
    st.reset()
    g: dict[str, Any] = {"__name__": "__dataset_check__", "__builtins__": dict(clean_builtins)}
    try:
        exec(code, g)  # noqa: S102 - this is the sandboxed process
        fn = g.get("check_following")
        if not callable(fn):
            return None, f"{protocol.ERR_NO_FUNC}: the source defines no callable check_following"
        out = fn(prompt, response)
    except BaseException as e:  # noqa: BLE001
        return None, _llm_error(st) or _exc_error(e)
    llm = _llm_error(st)
    if llm:
        return None, llm
    try:
        return _to_bool(out)
    except BaseException as e:  # noqa: BLE001
        return None, f"{protocol.ERR_BAD_RETURN}: {type(e).__name__} while reading the result"


def _llm_error(st: Any) -> str | None:
    if st.deferred:  # whatever the code made of it: this run's result waits for the batched answer
        return protocol.DEFERRED
    if st.needed:
        return f"{protocol.ERR_NEEDS_LLM}: {st.needed} and no LLM callback is configured"
    if st.failed:
        return f"{protocol.ERR_LLM}: {st.failed}"
    return None


def _to_bool(out: Any) -> tuple[bool | None, str | None]:
    t = type(out)
    if t is bool:
        return out, None
    if t is int and out in (0, 1):
        return bool(out), None
    if t.__module__ == "numpy" and t.__name__ in ("bool_", "bool"):
        return bool(out), None
    if t is int:
        return None, f"{protocol.ERR_BAD_RETURN}: returned int {out if abs(out) < 10**12 else '(large)'}, expected bool"
    detail = ""
    if t is str:
        detail = f" of length {len(out)}" if len(out) > 40 else f" {out!r}"
    elif out is None:
        detail = ""
    return None, f"{protocol.ERR_BAD_RETURN}: returned {t.__name__}{detail}, expected bool"


def _exc_error(e: BaseException) -> str:
    name = type(e).__name__
    try:
        msg = str(e)[:200]
    except BaseException:  # noqa: BLE001
        msg = "<unprintable>"
    if isinstance(e, ImportError):
        return f"{protocol.ERR_IMPORT}: {msg}"
    if isinstance(e, MemoryError):
        return f"{protocol.ERR_MEMORY}: MemoryError (limit reached)"
    if isinstance(e, SystemExit):
        return f"{protocol.ERR_EXITED}: sys.exit({msg})"
    return f"{protocol.ERR_RAISED} {name}: {msg}" if msg else f"{protocol.ERR_RAISED} {name}"


def describe_exit(status: int, lim: dict) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return f"{protocol.ERR_TIMEOUT}: used more than {lim['cpu_seconds']:g}s CPU time"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "?"
        return f"{protocol.ERR_CRASH}: killed by signal {sig} ({name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"{protocol.ERR_EXITED}: process exited with code {code} before returning"

