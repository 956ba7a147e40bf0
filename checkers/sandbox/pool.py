"""The parent side: a pool of sandbox workers, chunked batched IPC and the LLM relay.

The parent never runs dataset code. It groups calls by source hash (so each worker compiles a source
once), sends chunks to idle workers (each runs a chunk in one forked child), and replaces a worker that
dies or stops answering: the call it was on fails, the rest are retried. LLM requests are answered by
one dedicated thread (``_LLMRelay``) so a slow callback never stalls the loop that serves the other
workers, and a worker waiting for an answer has no parent-side deadline running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import selectors
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from checkers.base import Verdict
from checkers.sandbox import protocol as P
from checkers.sandbox.limits import DEFAULT_PRELOAD, CodeCall, LLMCallback, SandboxLimits

_HERE = Path(__file__).resolve().parent
_BOOT = (
    "import sys; sys.path.insert(0, {d!r}); import worker; "
    "sys.path.remove({d!r}); worker.main()"
)
#: seconds the parent adds to the worker's own per-call deadline before it declares the worker hung
_BACKSTOP_SLACK_S = 5.0
_SYSTEM_READ_PATHS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/usr/share/zoneinfo")


def _read_paths() -> list[str]:
    """Directories dataset code may read: the Python installation and system libraries, nothing else."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM_READ_PATHS}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            paths.add(sysconfig.get_paths()[key])
    with contextlib.suppress(AttributeError):
        paths.update(site.getsitepackages())
    out = set()
    for p in paths:
        out.add(p)
        out.add(os.path.realpath(p))
    return sorted(p for p in out if os.path.isdir(p))


def _env(workdir: str) -> dict[str, str]:
    """The whole environment a worker sees: nothing inherited from the caller (no secrets)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _Worker:
    """One worker process (launcher + zygote) and the chunk it is working on."""

    def __init__(self, workdir: str, config: dict[str, Any]) -> None:
        self.workdir = workdir
        os.makedirs(workdir, mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-P", "-c", _BOOT.format(d=str(_HERE))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env=_env(workdir),
            start_new_session=True,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.fd_in = self.proc.stdin.fileno()
        self.fd_out = self.proc.stdout.fileno()
        self.reader = P.FrameReader()
        self.send(config)
        self.hello: dict[str, Any] | None = None
        self.pending: list[int] = []  # call indices sent and not answered, in order
        self.deadline = float("inf")
        self.llm_token = 0  # nonzero while the worker waits for the answer to LLM request llm_token

    def send(self, obj: Any) -> None:
        P.write_all(self.fd_in, P.encode(obj))

    def wait_hello(self, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            frames = self.reader.frames()
            if frames:
                self.hello = frames[0]
                return self.hello
            left = end - time.monotonic()
            sel = selectors.DefaultSelector()
            sel.register(self.fd_out, selectors.EVENT_READ)
            ready = sel.select(max(left, 0))
            sel.close()
            if not ready:
                raise RuntimeError(f"sandbox worker did not start within {timeout:g}s")
            data = os.read(self.fd_out, 1 << 20)
            if not data:
                raise RuntimeError(f"sandbox worker exited during start-up (code {self.proc.wait()})")
            self.reader.feed(data)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                f.close()  # type: ignore[union-attr]
        shutil.rmtree(self.workdir, ignore_errors=True)


class _LLMRelay:
    """Answers workers' LLM requests on one dedicated thread, one request at a time (the callback, e.g. a
    wrapped model, need not be thread-safe), while the parent's loop keeps serving the other workers.
    Each answer wakes the loop through a pipe it selects on."""

    def __init__(self, llm: LLMCallback) -> None:
        self.llm = llm
        self.requests: queue.SimpleQueue[tuple[int, Any, Any] | None] = queue.SimpleQueue()
        self.replies: deque[tuple[int, dict[str, Any]]] = deque()
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.thread = threading.Thread(target=self._loop, name="sandbox-llm", daemon=True)
        self.thread.start()

    def submit(self, token: int, name: Any, args: Any) -> None:
        self.requests.put((token, name, args))

    def _loop(self) -> None:
        while (item := self.requests.get()) is not None:
            token, name, args = item
            self.replies.append((token, _answer_llm(self.llm, name, args)))
            with contextlib.suppress(BlockingIOError):  # a full pipe already wakes the loop
                os.write(self.wfd, b"!")

    def take(self) -> list[tuple[int, dict[str, Any]]]:
        """Answers ready now (token, reply frame); drains the wake-up pipe first so none is missed."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.rfd, 4096):
                pass
        out = []
        while self.replies:
            out.append(self.replies.popleft())
        return out

    def close(self) -> None:
        self.requests.put(None)
        self.thread.join(timeout=5.0)
        if not self.thread.is_alive():  # a callback that never returns keeps its pipe: no write to a reused fd
            os.close(self.rfd)
            os.close(self.wfd)


class Sandbox:
    """Runs dataset ``check_following`` code in isolated worker processes. Use as a context manager."""

    def __init__(
        self,
        workers: int | None = None,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen dataclass
        llm: LLMCallback | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        chunk_size: int = 128,
        persistent: bool = True,
    ) -> None:
        """``persistent=False`` forks a fresh child per chunk (with ``chunk_size=1``, per call) instead of
        keeping one child per worker that serves chunk after chunk; slower, no state between chunks."""
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"Sandbox(workers=...) must be a positive integer, got {workers!r}")
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.limits = limits
        self.llm = llm
        self.chunk_size = max(1, int(chunk_size))
        self._lock = threading.Lock()
        self._closed = False
        self._root = tempfile.mkdtemp(prefix="verinstruct-sandbox-")
        os.chmod(self._root, 0o755)
        self._config = {
            "limits": asdict(limits),
            "has_llm": llm is not None,
            "preload": list(preload),
            "read_paths": _read_paths(),
            "persist": bool(persistent),
        }
        self._serial = 0
        self._pool: list[_Worker] = []
        self._relay: _LLMRelay | None = None
        self._llm_serial = 0
        t0 = time.perf_counter()
        try:
            for _ in range(self.workers):
                self._pool.append(self._spawn(start=False))
            for w in self._pool:
                w.wait_hello(30.0)
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - t0
        hello = self._pool[0].hello or {}
        self._isolation = dict(hello.get("isolation", {}))
        self._isolation["workers"] = self.workers
        self._isolation["limits"] = asdict(limits)
        if llm is not None:
            self._relay = _LLMRelay(llm)

    # ---- lifecycle --------------------------------------------------------------------------
    def _spawn(self, start: bool = True) -> _Worker:
        self._serial += 1
        cfg = dict(self._config, workdir=os.path.join(self._root, f"w{self._serial}"))
        w = _Worker(cfg["workdir"], {"type": "config", **cfg})
        if start:
            w.wait_hello(30.0)
        return w

    @property
    def isolation(self) -> dict[str, Any]:
        """Which mechanisms are active (as measured by the workers' start-up probe)."""
        return json.loads(json.dumps(self._isolation))

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        """Stop every worker (and everything they started) and remove the private directories."""
        if self._closed:
            return
        self._closed = True
        for w in self._pool:
            with contextlib.suppress(OSError):
                w.send({"type": "exit"})
        for w in self._pool:
            w.kill()
        self._pool = []
        if self._relay is not None:
            self._relay.close()
        shutil.rmtree(self._root, ignore_errors=True)

    # ---- running ----------------------------------------------------------------------------
    def run(self, calls: Sequence[CodeCall]) -> list[Verdict]:
        """Verdicts for ``calls`` in the same order; a bad item gets an undecided verdict, never an exception."""
        if self._closed:
            raise RuntimeError("Sandbox.run() after close()")
        with self._lock:
            return self._run(calls)

    def _run(self, calls: Sequence[CodeCall]) -> list[Verdict]:
        n = len(calls)
        out: list[Verdict | None] = [None] * n
        groups: dict[str, list[int]] = {}
        sources: dict[str, str] = {}
        for i, c in enumerate(calls):
            bad = _validate(c)
            if bad:
                out[i] = Verdict.undecided(f"{P.ERR_BAD_INPUT}: item {i}: {bad}")
                continue
            h = hashlib.sha1(c.source.encode("utf-8", "surrogatepass")).hexdigest()
            sources[h] = c.source
            groups.setdefault(h, []).append(i)
        hashes = {i: h for h, idxs in groups.items() for i in idxs}
        todo: deque[list[int]] = deque(self._chunks(groups, n))
        idle = list(self._pool)
        busy: dict[int, _Worker] = {}
        waiting: dict[int, _Worker] = {}  # LLM request token -> worker waiting for its answer
        sel = selectors.DefaultSelector()
        relay = self._relay
        if relay is not None:
            relay.take()  # answers left over from an interrupted run belong to nobody now
            sel.register(relay.rfd, selectors.EVENT_READ, None)

        def retire(w: _Worker, why: str, timeout: bool = False) -> None:
            sel.unregister(w.fd_out)
            del busy[w.fd_out]
            waiting.pop(w.llm_token, None)
            w.llm_token = 0
            self._fail_first_and_requeue(w, out, todo, why, timeout=timeout)
            idle.append(self._replace(w))

        try:
            while todo or busy:
                while todo and idle:
                    w = idle.pop()
                    chunk = todo.popleft()
                    if not self._assign(w, chunk, calls, hashes, sources):
                        self._fail_first_and_requeue(w, out, todo, "sandbox worker exited")
                        idle.append(self._replace(w))
                        continue
                    busy[w.fd_out] = w
                    sel.register(w.fd_out, selectors.EVENT_READ, w)
                first = min((w.deadline for w in busy.values()), default=0.0)
                timeout = None if first == float("inf") else max(0.0, first - time.monotonic())
                for key, _ in sel.select(timeout):
                    w = key.data
                    if w is None:  # the relay answered: pass each answer to the worker still waiting for it
                        for token, reply in relay.take():  # type: ignore[union-attr]
                            target = waiting.pop(token, None)
                            if target is None or busy.get(target.fd_out) is not target:
                                continue
                            target.llm_token = 0
                            with contextlib.suppress(OSError):  # a dead worker's end of file is handled next
                                target.send(reply)
                            self._touch(target)  # its backstop restarts now: the wait did not count
                        continue
                    if busy.get(w.fd_out) is not w:
                        continue  # retired earlier in this round
                    try:
                        data = os.read(w.fd_out, 1 << 20)
                    except OSError:
                        data = b""
                    finished = False
                    try:
                        if not data:
                            raise EOFError
                        w.reader.feed(data)
                        for msg in w.reader.frames():
                            finished = self._handle(w, msg, calls, out, waiting) or finished
                    except (EOFError, ValueError, OSError) as e:
                        code = w.proc.poll()
                        why = f"sandbox worker exited (code {code})" if not data else f"bad frame from worker ({e})"
                        retire(w, why)
                        continue
                    if finished:
                        sel.unregister(w.fd_out)
                        del busy[w.fd_out]
                        idle.append(w)
                now = time.monotonic()
                for w in [w for w in busy.values() if now > w.deadline]:
                    retire(w, "worker stopped answering", timeout=True)
        finally:
            sel.close()
            for w in list(busy.values()):  # only after an exception: a worker mid-chunk cannot be reused
                with contextlib.suppress(Exception):
                    idle.append(self._replace(w))
            self._pool = idle
        return [v if v is not None else Verdict.undecided(f"{P.ERR_SANDBOX}: no result") for v in out]

    def _chunks(self, groups: dict[str, list[int]], n: int) -> list[list[int]]:
        """Cut calls (grouped by source) into chunks: two per worker keep the pool balanced; each chunk
        costs one fork (more only after a crash, timeout or tampering), so fewer is cheaper."""
        target = max(1, min(self.chunk_size, -(-n // (self.workers * 2))))
        chunks: list[list[int]] = []
        cur: list[int] = []
        for idxs in groups.values():
            for j in range(0, len(idxs), target):
                cur.extend(idxs[j : j + target])
                if len(cur) >= target:
                    chunks.append(cur)
                    cur = []
        if cur:
            chunks.append(cur)
        return chunks

    def _assign(self, w: _Worker, chunk: list[int], calls: Sequence[CodeCall], hashes: dict[int, str],
                sources: dict[str, str]) -> bool:
        used = {hashes[i] for i in chunk}
        msg = {
            "type": "chunk",
            "sources": {h: sources[h] for h in used},
            "calls": [[i, hashes[i], calls[i].prompt, calls[i].response] for i in chunk],
        }
        w.pending = list(chunk)
        self._touch(w)
        try:
            w.send(msg)
        except OSError:
            return False
        return True

    def _touch(self, w: _Worker) -> None:
        per_call = self.limits.wall_timeout_s + 1.0
        w.deadline = time.monotonic() + per_call * max(1, len(w.pending)) + _BACKSTOP_SLACK_S

    def _handle(self, w: _Worker, msg: Any, calls: Sequence[CodeCall], out: list[Verdict | None],
                waiting: dict[int, _Worker]) -> bool:
        """Apply one frame from a worker; True when its chunk is complete."""
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "res":
            done = set()
            for idx, passed, err in msg["items"]:
                out[idx] = _verdict(passed, err)
                done.add(idx)
            w.pending = [i for i in w.pending if i not in done]
            self._touch(w)
            return False
        if kind == "done":
            w.deadline = float("inf")
            return True
        if kind == "llm":
            if self._relay is None or w.llm_token:
                w.send({"type": "llm_reply", "ok": False, "e": "no LLM callback configured" if self._relay is None
                        else "one LLM request at a time"})
                self._touch(w)
                return False
            # answered by the relay thread; until then this worker has no deadline here (the worker
            # itself does not count the wait against the call either)
            self._llm_serial += 1
            w.llm_token = self._llm_serial
            waiting[w.llm_token] = w
            w.deadline = float("inf")
            self._relay.submit(w.llm_token, msg.get("f"), msg.get("a"))
            return False
        raise ValueError(f"unexpected message {kind!r}")

    def _fail_first_and_requeue(self, w: _Worker, out: list[Verdict | None], todo: deque[list[int]], why: str,
                                timeout: bool = False) -> None:
        if w.pending:
            first, rest = w.pending[0], w.pending[1:]
            cls = P.ERR_TIMEOUT if timeout else P.ERR_CRASH
            out[first] = Verdict.undecided(f"{cls}: {why}")
            if rest:
                todo.appendleft(rest)
        w.pending = []

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        new = self._spawn()
        self._pool = [new if x is w else x for x in self._pool]
        return new


def _answer_llm(llm: LLMCallback, name: Any, args: Any) -> dict[str, Any]:
    """The reply frame for one LLM request (runs on the relay thread)."""
    try:
        value = llm(str(name), tuple(args) if isinstance(args, list) else ())
        json.dumps(value)
    except Exception as e:  # noqa: BLE001 - the item's verdict carries it
        return {"type": "llm_reply", "ok": False, "e": f"{type(e).__name__}: {str(e)[:200]}"}
    return {"type": "llm_reply", "ok": True, "v": value}


def _validate(c: Any) -> str | None:
    if not isinstance(c, CodeCall):
        return f"expected CodeCall, got {type(c).__name__}"
    for field in ("source", "prompt", "response"):
        if not isinstance(getattr(c, field), str):
            return f"CodeCall.{field} must be a string, got {type(getattr(c, field)).__name__}"
    return None


def _verdict(passed: Any, err: Any) -> Verdict:
    if err is None and isinstance(passed, bool):
        return Verdict(passed, f"check_following returned {passed}")
    return Verdict.undecided(str(err) if err else f"{P.ERR_SANDBOX}: malformed result")
