"""The parent side: a pool of sandbox workers, chunked batched IPC and the LLM relay.

The parent never runs dataset code. It groups calls by source hash (so each worker compiles a source
once), sends chunks to idle workers (each runs a chunk in one forked child), answers LLM requests while it waits,
and replaces a worker that dies or stops answering: the call it was on fails, the rest are retried.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
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


class Sandbox:
    """Runs dataset ``check_following`` code in isolated worker processes. Use as a context manager."""

    def __init__(
        self,
        workers: int | None = None,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen dataclass
        llm: LLMCallback | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        chunk_size: int = 128,
    ) -> None:
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
        }
        self._serial = 0
        self._pool: list[_Worker] = []
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
        queue: deque[list[int]] = deque(self._chunks(groups, n))
        idle = list(self._pool)
        busy: dict[int, _Worker] = {}
        sel = selectors.DefaultSelector()
        try:
            while queue or busy:
                while queue and idle:
                    w = idle.pop()
                    chunk = queue.popleft()
                    if not self._assign(w, chunk, calls, hashes, sources):
                        self._fail_first_and_requeue(w, out, queue, "sandbox worker exited")
                        idle.append(self._replace(w))
                        continue
                    busy[w.fd_out] = w
                    sel.register(w.fd_out, selectors.EVENT_READ, w)
                now = time.monotonic()
                timeout = max(0.0, min(w.deadline for w in busy.values()) - now) if busy else 0.0
                for key, _ in sel.select(timeout):
                    w = key.data
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
                            finished = self._handle(w, msg, calls, out) or finished
                    except (EOFError, ValueError, OSError) as e:
                        code = w.proc.poll()
                        why = f"sandbox worker exited (code {code})" if not data else f"bad frame from worker ({e})"
                        sel.unregister(w.fd_out)
                        del busy[w.fd_out]
                        self._fail_first_and_requeue(w, out, queue, why)
                        idle.append(self._replace(w))
                        continue
                    if finished:
                        sel.unregister(w.fd_out)
                        del busy[w.fd_out]
                        idle.append(w)
                now = time.monotonic()
                for fd, w in list(busy.items()):
                    if now > w.deadline:
                        sel.unregister(fd)
                        del busy[fd]
                        self._fail_first_and_requeue(w, out, queue, "worker stopped answering", timeout=True)
                        idle.append(self._replace(w))
        finally:
            sel.close()
            self._pool = idle + list(busy.values())
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

    def _handle(self, w: _Worker, msg: Any, calls: Sequence[CodeCall], out: list[Verdict | None]) -> bool:
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
            w.send(self._answer_llm(msg.get("f"), msg.get("a")))
            self._touch(w)
            return False
        raise ValueError(f"unexpected message {kind!r}")

    def _answer_llm(self, name: Any, args: Any) -> dict[str, Any]:
        if self.llm is None:
            return {"type": "llm_reply", "ok": False, "e": "no LLM callback configured"}
        try:
            value = self.llm(str(name), tuple(args))
            json.dumps(value)
        except Exception as e:  # noqa: BLE001 - the item's verdict carries it
            return {"type": "llm_reply", "ok": False, "e": f"{type(e).__name__}: {str(e)[:200]}"}
        return {"type": "llm_reply", "ok": True, "v": value}

    def _fail_first_and_requeue(self, w: _Worker, out: list[Verdict | None], queue: deque[list[int]], why: str,
                                timeout: bool = False) -> None:
        if w.pending:
            first, rest = w.pending[0], w.pending[1:]
            cls = P.ERR_TIMEOUT if timeout else P.ERR_CRASH
            out[first] = Verdict.undecided(f"{cls}: {why}")
            if rest:
                queue.appendleft(rest)
        w.pending = []

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        new = self._spawn()
        self._pool = [new if x is w else x for x in self._pool]
        return new


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
