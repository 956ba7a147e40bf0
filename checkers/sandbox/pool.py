"""The parent side: a pool of sandbox workers, chunked batched IPC and the batched LLM relay.

The parent never runs dataset code. It groups calls by source hash (so each worker compiles a source
once) and sends chunks to idle workers; each worker runs every call of a chunk in a fresh process of its
own. A worker that dies or stops answering is replaced and the calls it had not answered are re-run one
per chunk, so that only a call that brings a worker down alone is blamed for it. LLM requests of every
call in a run are gathered (``relay.Gather``) and answered in batches by one dedicated thread
(``relay.Relay``), so a slow verifier never stalls the loop that serves the workers.
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
from checkers.sandbox import protocol
from checkers.sandbox.limits import DEFAULT_PRELOAD, CodeCall, LLMCallback, SandboxLimits
from checkers.sandbox.relay import Gather, answer_batch  # noqa: F401 - answer_batch: public here too

_HERE = Path(__file__).resolve().parent
#: nothing on the path but the installation (-P does that from 3.11; the filter does it on 3.10, where
#: ``-c`` puts the working directory first), then the worker modules only while they are imported
_BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; sys.path.insert(0, {d!r}); import worker; "
    "sys.path.remove({d!r}); worker.main()"
)
_FLAGS = ("-s", "-P") if sys.version_info >= (3, 11) else ("-s",)
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
    # site-packages reached through a .pth file (a venv that shares another's packages), never the repository
    paths.update(p for p in sys.path if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages"))
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
            [sys.executable, *_FLAGS, "-c", _BOOT.format(d=str(_HERE))],
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
        self.reader = protocol.FrameReader()
        self.send(config)
        self.hello: dict[str, Any] | None = None
        self.pending: list[int] = []  # call indices sent and not answered, in order
        self.deadline = float("inf")
        self.waiting = False  # True while the worker waits for the answer to its LLM request
        self.waiting_for: int | None = None  # the call whose request it waits for
        self.resume: list[int] = []  # deferred calls whose answers are in: to run again in the process it keeps
        self.alive = True

    def send(self, obj: Any) -> None:
        protocol.write_all(self.fd_in, protocol.encode(obj))

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


class _Closing(Exception):
    """close() was called while a run was in progress."""


class Sandbox:
    """Runs dataset ``check_following`` code in isolated worker processes. Use as a context manager.

    Thread-safe: concurrent runs queue; :meth:`close` stops a run in progress (its unfinished calls end
    undecided) and leaves no process behind."""

    def __init__(
        self,
        workers: int | None = None,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen dataclass
        llm: LLMCallback | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        chunk_size: int = 128,
        llm_replays: int = 16,
        llm_batch_size: int | None = None,
        llm_min_batch: int = 64,
        process_per: str = "row",
    ) -> None:
        """Dataset code runs in fresh processes forked for it (see docs/sandbox.md): with ``process_per="row"``
        the calls that name the same ``CodeCall.row`` share one (one fork per row), other calls get one
        each; ``process_per="call"`` gives every call a process of its own. ``chunk_size`` bounds how many
        calls one worker is handed at a time.

        LLM requests of all calls in a run are gathered into batches of at most ``llm_batch_size`` (None:
        no limit) for ``llm`` (see :func:`answer_batch`); a call is re-run up to ``llm_replays`` times to
        collect its answers that way, then waits for them. A batch goes out when the previous one is
        answered and ``llm_min_batch`` requests have gathered, or sooner when no worker has code left to run.
        ``llm_replays=0, llm_batch_size=1`` answers one request at a time while its call waits (the
        behaviour before batching)."""
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"Sandbox(workers=...) must be a positive integer, got {workers!r}")
        if isinstance(llm_replays, bool) or not isinstance(llm_replays, int) or llm_replays < 0:
            raise ValueError(f"Sandbox(llm_replays=...) must be an integer >= 0, got {llm_replays!r}")
        if llm_batch_size is not None and (isinstance(llm_batch_size, bool) or not isinstance(llm_batch_size, int)
                                           or llm_batch_size < 1):
            raise ValueError(f"Sandbox(llm_batch_size=...) must be a positive integer or None, got {llm_batch_size!r}")
        if process_per not in ("row", "call"):
            raise ValueError(f"Sandbox(process_per=...) must be 'row' or 'call', got {process_per!r}")
        self.process_per = process_per
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.limits = limits
        self.llm = llm
        self.llm_replays = llm_replays
        self.llm_batch_size = llm_batch_size
        self.llm_min_batch = max(1, int(llm_min_batch))
        self.chunk_size = max(1, int(chunk_size))
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._closed = False
        #: the process that started the workers: only it may stop them (a forked child holds a copy whose
        #: close(), run by __del__ when the child drops it, would kill the parent's workers and folders)
        self._owner_pid = os.getpid()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._pool: list[_Worker] = []
        self._root = tempfile.mkdtemp(prefix="verinstruct-sandbox-")
        os.chmod(self._root, 0o755)
        self._config = {
            "limits": asdict(limits),
            "preload": list(preload),
            "read_paths": _read_paths(),
        }
        self._serial = 0
        #: processes started for dataset code and parked processes run again, over this sandbox's life
        self.stats: dict[str, int] = {"processes": 0, "resumed": 0}
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
        self._isolation["call_isolation"] = (
            "one fresh process per dataset row (calls with the same CodeCall.row, one after another; each call "
            "with fresh globals and seeded random), forked from a zygote that holds no other row; results only "
            "over the row's own socket" if process_per == "row" else
            "one fresh process per call, forked from a zygote that holds no other call; results only over the "
            "call's own socket")

    # ---- lifecycle --------------------------------------------------------------------------
    def _spawn(self, start: bool = True) -> _Worker:
        if self._closing.is_set():
            raise _Closing
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
        """Stop every worker (and everything they started) and remove the private directories. A run in
        progress on another thread stops first: its unfinished calls end undecided. In a forked child this
        does nothing: the workers and folders are the parent's."""
        if self._closed or os.getpid() != self._owner_pid:
            return
        self._closing.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")
        with self._lock:
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
            os.close(self._wake_r)
            os.close(self._wake_w)

    # ---- running ----------------------------------------------------------------------------
    def run(self, calls: Sequence[CodeCall], llm: LLMCallback | None = None) -> list[Verdict]:
        """Verdicts for ``calls`` in the same order; a bad item gets an undecided verdict, never an exception.
        ``llm`` answers this run's ``llm_*`` requests instead of the sandbox's own callback."""
        if self._closing.is_set():
            raise RuntimeError("Sandbox.run() after close()")
        if os.getpid() != self._owner_pid:
            raise RuntimeError("Sandbox.run() in a forked child: its workers belong to the parent; start a new Sandbox")
        with self._lock:
            if self._closed:
                raise RuntimeError("Sandbox.run() after close()")
            return self._run(calls, llm if llm is not None else self.llm)

    def _run(self, calls: Sequence[CodeCall], llm: LLMCallback | None) -> list[Verdict]:
        n = len(calls)
        out: list[Verdict | None] = [None] * n
        groups: dict[Any, list[int]] = {}  # calls that share a process: one dataset row's, or one call alone
        sources: dict[str, str] = {}
        hashes: dict[int, str] = {}
        by_row = self.process_per == "row"
        for i, c in enumerate(calls):
            bad = _validate(c)
            if bad:
                out[i] = Verdict.undecided(f"{protocol.ERR_BAD_INPUT}: item {i}: {bad}")
                continue
            h = hashlib.sha1(c.source.encode("utf-8", "surrogatepass")).hexdigest()
            sources[h] = c.source
            hashes[i] = h
            groups.setdefault(("row", c.row) if by_row and c.row is not None else i, []).append(i)
        unit_of = {i: u for u, (_, idxs) in enumerate(groups.items()) for i in idxs}
        todo: deque[list[int]] = deque(self._chunks(list(groups.values()), n))
        idle = list(self._pool)
        busy: dict[int, _Worker] = {}
        gather = Gather(llm, n, self.llm_replays, self.llm_batch_size, self.llm_min_batch, self.limits)
        strikes: dict[int, int] = {}  # calls that were alone on a worker when it died
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)

        def retire(w: _Worker, why: str, timeout: bool = False) -> None:
            sel.unregister(w.fd_out)
            del busy[w.fd_out]
            gather.forget(w)
            w.waiting, w.waiting_for = False, None
            blame(w.pending, out, todo, why, strikes, timeout=timeout)
            w.pending = []
            lost = w.resume  # their processes died with the worker: nobody's fault, they run afresh
            w.resume = []
            idle.append(self._replace(w))
            requeue(lost)

        def requeue(idxs: list[int]) -> None:
            """Calls to run again: in the row process their worker keeps for them, else afresh."""
            again: dict[int, list[int]] = {}
            for i in sorted(idxs):
                owner = owners.pop(i, None)
                if owner is not None and owner.alive:
                    owner.resume.append(i)
                    continue
                again.setdefault(unit_of[i], []).append(i)
            todo.extend(self._chunks(list(again.values()), len(idxs)))

        owners: dict[int, _Worker] = {}

        try:
            while todo or busy or gather.parked or any(w.resume for w in idle):
                if self._closing.is_set():
                    raise _Closing
                for w in [w for w in idle if w.resume]:  # kept calls go back to their process first
                    idle.remove(w)
                    chunk, w.resume = w.resume, []
                    for i in chunk:
                        gather.started(i)
                    if not self._resume(w, chunk):  # it died idle: the calls run afresh
                        w.pending = []
                        idle.append(self._replace(w))
                        requeue(chunk)
                        continue
                    busy[w.fd_out] = w
                    sel.register(w.fd_out, selectors.EVENT_READ, w)
                while todo and idle:
                    chunk = todo.popleft()
                    try:
                        frame = self._chunk_frame(chunk, calls, hashes, sources, unit_of)
                    except ValueError as e:  # over the frame limit: halves, or the one call is bad input
                        if len(chunk) > 1:
                            todo.extendleft([chunk[len(chunk) // 2:], chunk[: len(chunk) // 2]])
                        else:
                            out[chunk[0]] = Verdict.undecided(f"{protocol.ERR_BAD_INPUT}: item {chunk[0]}: {e}")
                        continue
                    w = idle.pop()
                    for i in chunk:
                        gather.started(i)
                    if not self._assign(w, chunk, frame):  # it died idle: the chunk never ran
                        todo.appendleft(w.pending)
                        w.pending = []
                        idle.append(self._replace(w))
                        continue
                    busy[w.fd_out] = w
                    sel.register(w.fd_out, selectors.EVENT_READ, w)
                if gather.flush(stalled=all(w.waiting for w in busy.values())):
                    sel.register(gather.relay.rfd, selectors.EVENT_READ, _RELAY)  # type: ignore[union-attr]
                if not todo and not busy and gather.idle():
                    requeue(gather.ready(force=True))  # nothing left to wait for (a call's request went astray)
                    continue
                first = min([w.deadline for w in busy.values()]
                            + [gather.next_deadline(gather.parked)]
                            + [gather.next_deadline([w.waiting_for for w in busy.values() if w.waiting])])
                timeout = None if first == float("inf") else max(0.0, first - time.monotonic())
                for key, _ in sel.select(timeout):
                    w = key.data
                    if w is _WAKE:
                        continue  # close() was called: the loop checks at the top
                    if w is _RELAY:  # answers: pass each to the workers waiting for it, re-run parked calls
                        for target, reply in gather.absorb():
                            if busy.get(target.fd_out) is not target:
                                continue
                            target.waiting, target.waiting_for = False, None
                            with contextlib.suppress(OSError):  # a dead worker's end of file is handled next
                                target.send(reply)
                            self._touch(target)  # its backstop restarts now: the wait did not count
                        requeue(gather.ready())
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
                            finished = self._handle(w, msg, out, gather, owners) or finished
                    except (EOFError, ValueError, OSError, TypeError, KeyError) as e:
                        code = w.proc.poll()
                        why = f"sandbox worker exited (code {code})" if not data else f"bad frame from worker ({e})"
                        retire(w, why)
                        continue
                    if finished:
                        sel.unregister(w.fd_out)
                        del busy[w.fd_out]
                        idle.append(w)
                requeue(gather.ready())
                for idx, err in gather.expire_parked():
                    out[idx] = Verdict.undecided(err)
                for w in busy.values():  # a call that waits past its budget gets an error answer now
                    if w.waiting and w.waiting_for is not None and gather.expired(w.waiting_for):
                        gather.forget(w)
                        w.waiting = False
                        with contextlib.suppress(OSError):
                            w.send({"type": "llm_reply", "ok": False, "e": gather.over[w.waiting_for]})
                        w.waiting_for = None
                        self._touch(w)
                now = time.monotonic()
                for w in [w for w in busy.values() if now > w.deadline]:
                    retire(w, "worker stopped answering", timeout=True)
        except _Closing:
            for i in range(n):
                if out[i] is None:
                    out[i] = Verdict.undecided(f"{protocol.ERR_SANDBOX}: the sandbox was closed during the run")
        finally:
            sel.close()
            gather.close()
            for w in idle:  # the run is over: the row processes kept for it are not needed any more
                w.resume = []
                with contextlib.suppress(OSError):
                    w.send({"type": "release"})
            closing = self._closing.is_set()
            for w in list(busy.values()):  # only after an exception: a worker mid-chunk cannot be reused
                if closing:
                    idle.append(w)  # close() kills it
                    continue
                with contextlib.suppress(Exception):
                    idle.append(self._replace(w))
            self._pool = idle
        return [v if v is not None else Verdict.undecided(f"{protocol.ERR_SANDBOX}: no result") for v in out]

    def _chunks(self, groups: list[list[int]], n: int) -> list[list[int]]:
        """Cut calls (grouped by the process they share: one row's calls, or one call) into chunks of about
        ``target`` calls: two per worker keep the pool balanced. Rows are packed whole (each piece of a row
        costs a fork, ~10 times a typical call); only a row larger than both ``target`` and ``_ROW_PIECE`` is
        cut, into pieces of that size."""
        target = max(1, min(self.chunk_size, -(-n // (self.workers * 2))))
        piece = max(target, min(self.chunk_size, _ROW_PIECE))
        chunks: list[list[int]] = []
        cur: list[int] = []
        for idxs in groups:
            if cur and len(cur) + len(idxs) > target:
                chunks.append(cur)
                cur = []
            for j in range(0, len(idxs), piece):
                cur.extend(idxs[j : j + piece])
                if len(cur) >= target:
                    chunks.append(cur)
                    cur = []
        if cur:
            chunks.append(cur)
        return chunks

    @staticmethod
    def _chunk_frame(chunk: list[int], calls: Sequence[CodeCall], hashes: dict[int, str], sources: dict[str, str],
                     unit_of: dict[int, int]) -> bytes:
        """The chunk's frame; ValueError when it is over the frame limit."""
        used = {hashes[i] for i in chunk}
        return protocol.encode({
            "type": "chunk",
            "sources": {h: sources[h] for h in used},
            "calls": [protocol.Call(i, hashes[i], calls[i].prompt, calls[i].response, unit_of[i]) for i in chunk],
        })

    def _assign(self, w: _Worker, chunk: list[int], frame: bytes) -> bool:
        w.pending = list(chunk)
        self._touch(w)
        try:
            protocol.write_all(w.fd_in, frame)
        except OSError:
            return False
        return True

    def _resume(self, w: _Worker, idxs: list[int]) -> bool:
        w.pending = list(idxs)
        self._touch(w)
        try:
            w.send({"type": "resume", "calls": idxs})
        except OSError:
            return False
        return True

    def _touch(self, w: _Worker) -> None:
        per_call = self.limits.wall_timeout_s + 1.0
        w.deadline = time.monotonic() + per_call * max(1, len(w.pending)) + _BACKSTOP_SLACK_S

    def _handle(self, w: _Worker, msg: Any, out: list[Verdict | None], gather: Gather,
                owners: dict[int, _Worker]) -> bool:
        """Apply one frame from a worker; True when its chunk is complete."""
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "res":
            done = set()
            for item in msg["items"]:
                r = protocol.Result(*item)
                if type(r.idx) is not int or not 0 <= r.idx < len(out):
                    raise ValueError(f"result for unknown call {r.idx!r}")
                done.add(r.idx)
                over = gather.expired(r.idx)
                if over is not None:
                    out[r.idx] = Verdict.undecided(over)
                    continue
                if r.error == protocol.DEFERRED:
                    if gather.deferred(r.idx):
                        owners[r.idx] = w  # its row process is kept by this worker (if it parked)
                        continue  # runs again once its answers are in
                    out[r.idx] = Verdict.undecided(
                        f"{protocol.ERR_SANDBOX}: still asking for LLM answers after {self.llm_replays} re-runs")
                    continue
                v = _verdict(r.passed, r.error)
                prob = gather.prob(r.idx, v.passed)
                out[r.idx] = v if prob is None else Verdict(v.passed, v.reason, prob=prob)
            w.pending = [i for i in w.pending if i not in done]
            self._touch(w)
            return False
        if kind == "done":
            for key in ("forks", "resumed"):
                if type(msg.get(key)) is int:
                    self.stats["processes" if key == "forks" else key] += msg[key]
            w.deadline = float("inf")
            return True
        if kind == "llm":
            if w.waiting:
                w.send({"type": "llm_reply", "ok": False, "e": "one LLM request at a time"})
                return False
            reply = gather.request(w, msg.get("f"), msg.get("a"), msg.get("i"))
            if reply is None:
                # answered when its batch is; until then this worker has no deadline here (the worker
                # itself does not count the wait against the call either)
                w.waiting = True
                w.waiting_for = msg.get("i") if type(msg.get("i")) is int else None
                w.deadline = float("inf")
                return False
            w.send(reply)
            self._touch(w)
            return False
        raise ValueError(f"unexpected message {kind!r}")

    def _replace(self, w: _Worker) -> _Worker:
        w.alive = False
        w.kill()
        new = self._spawn()
        self._pool = [new if x is w else x for x in self._pool]
        return new


_WAKE, _RELAY = object(), object()
#: a row of up to this many calls is never cut for balance: a fork costs about as much as ten typical calls
_ROW_PIECE = 32


def blame(pending: list[int], out: list[Verdict | None], todo: deque[list[int]], why: str,
          strikes: dict[int, int], timeout: bool = False) -> None:
    """A worker died or stopped answering with ``pending`` calls unanswered. None of several is blamed:
    each is re-run first, in a chunk of its own. A call alone on a worker that dies is re-run once more
    (the worker may have died of something else) and is the culprit the second time."""
    if len(pending) == 1:
        i = pending[0]
        strikes[i] = strikes.get(i, 0) + 1
        if strikes[i] >= 2:
            cls = protocol.ERR_TIMEOUT if timeout else protocol.ERR_CRASH
            out[i] = Verdict.undecided(f"{cls}: {why}")
            return
    for i in reversed(pending):
        todo.appendleft([i])


def _validate(c: Any) -> str | None:
    if not isinstance(c, CodeCall):
        return f"expected CodeCall, got {type(c).__name__}"
    for field in ("source", "prompt", "response"):
        if not isinstance(getattr(c, field), str):
            return f"CodeCall.{field} must be a string, got {type(getattr(c, field)).__name__}"
    row = getattr(c, "row", None)
    if row is not None and type(row) is not str:  # 1, True and 1.0 would be one key; a list is unhashable
        return f"CodeCall.row must be a string or None, got {type(row).__name__}"
    return None


def _verdict(passed: Any, err: Any) -> Verdict:
    if err is None and isinstance(passed, bool):
        return Verdict(passed, f"check_following returned {passed}")
    return Verdict.undecided(str(err) if err else f"{protocol.ERR_SANDBOX}: malformed result")
