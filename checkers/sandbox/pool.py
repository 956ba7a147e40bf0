"""The parent side: a pool of sandbox workers, chunked batched IPC and the batched LLM relay.

The parent never runs dataset code. It groups calls by source hash (so each worker compiles a source
once), sends chunks to idle workers (each runs a chunk in one forked child), and replaces a worker that
dies or stops answering: the call it was on fails, the rest are retried. LLM requests of every call in
a run are gathered (``_Gather``) and answered in batches by one dedicated thread (``_Relay``), so a slow
verifier never stalls the loop that serves the workers and no call's limits count the wait.
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
from checkers.sandbox import protocol
from checkers.sandbox.limits import DEFAULT_PRELOAD, CodeCall, LLMAnswer, LLMCallback, SandboxLimits

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


class _Relay:
    """Answers LLM requests on one thread, a batch at a time (a plain callback: one request at a time, so
    it need not be thread-safe), while the parent's loop keeps serving the workers. The answers of each
    batch wake the loop through a pipe it selects on."""

    def __init__(self, llm: LLMCallback) -> None:
        self.llm = llm
        self.batches: queue.SimpleQueue[list[tuple[str, str, tuple]] | None] = queue.SimpleQueue()
        self.answers: deque[tuple[str, LLMAnswer]] = deque()
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.thread = threading.Thread(target=self._loop, name="sandbox-llm", daemon=True)
        self.thread.start()

    def submit(self, batch: list[tuple[str, str, tuple]]) -> None:
        """``batch``: (key, function name, args) per request."""
        self.batches.put(batch)

    def _loop(self) -> None:
        while (batch := self.batches.get()) is not None:
            answers = answer_batch(self.llm, [(name, args) for _, name, args in batch])
            self.answers.extend(zip([key for key, _, _ in batch], answers, strict=True))
            with contextlib.suppress(BlockingIOError):  # a full pipe already wakes the loop
                os.write(self.wfd, b"!")

    def take(self) -> list[tuple[str, LLMAnswer]]:
        """Answers ready now (key, answer); drains the wake-up pipe first so none is missed."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.rfd, 4096):
                pass
        out = []
        while self.answers:
            out.append(self.answers.popleft())
        return out

    def close(self) -> None:
        self.batches.put(None)
        self.thread.join(timeout=5.0)
        if not self.thread.is_alive():  # a callback that never returns keeps its pipe: no write to a reused fd
            os.close(self.rfd)
            os.close(self.wfd)


class _Gather:
    """The LLM side of one run: the answers so far, requests waiting to go out as one batch, and calls
    parked until the answers they asked for are in.

    A call's LLM request is answered at once when the answer is known. Otherwise the call is told to
    defer: it stops, its result is discarded, and it runs again once the batch holding its request has
    been answered (a call asking k questions in a row runs k+1 times). After ``replays`` re-runs a call
    waits for its answers instead (the worker blocks; the wait counts toward no limit)."""

    def __init__(self, llm: LLMCallback | None, n_calls: int, replays: int, batch_size: int | None,
                 min_batch: int = 1) -> None:
        self.llm = llm
        self.n = n_calls
        self.replays = replays
        self.batch_size = batch_size
        self.min_batch = min_batch
        self.relay: _Relay | None = None
        self.answers: dict[str, LLMAnswer] = {}
        self.names: dict[str, str] = {}
        self.pending: dict[str, tuple[str, tuple]] = {}  # not sent yet
        self.inflight: set[str] = set()  # sent to the relay, not answered yet
        self.blocked: dict[str, list[_Worker]] = {}  # workers waiting for that answer
        self.asked: dict[int, list[str]] = {}  # requests of each call in its current run
        self.parked: dict[int, set[str]] = {}  # deferred calls -> answers they still wait for
        self.reruns: dict[int, int] = {}

    def _valid(self, idx: Any) -> bool:
        return type(idx) is int and 0 <= idx < self.n

    def started(self, idx: int) -> None:
        self.asked[idx] = []

    def request(self, w: _Worker, name: Any, args: Any, idx: Any) -> dict[str, Any] | None:
        """The reply frame for a worker's request, or None when the worker must wait for the answer."""
        if self.llm is None:
            return {"type": "llm_reply", "ok": False, "needs": True}
        if name not in protocol.LLM_FUNCTIONS or not isinstance(args, list):
            return {"type": "llm_reply", "ok": False, "e": "malformed LLM request"}
        try:
            key = json.dumps([name, args], ensure_ascii=False)
        except (TypeError, ValueError):
            return {"type": "llm_reply", "ok": False, "e": "malformed LLM request"}
        if self._valid(idx):
            self.asked.setdefault(idx, []).append(key)
        known = self.answers.get(key)
        if known is not None:
            return _reply(known)
        if key not in self.inflight:
            self.pending.setdefault(key, (name, tuple(args)))
            self.names[key] = name
        if self._valid(idx) and self.reruns.get(idx, 0) < self.replays:
            return {"type": "llm_reply", "ok": False, "defer": True}
        self.blocked.setdefault(key, []).append(w)
        return None

    def deferred(self, idx: int) -> bool:
        """The call stopped to wait for answers; False when it has been re-run too often already."""
        self.reruns[idx] = self.reruns.get(idx, 0) + 1
        if self.reruns[idx] > self.replays:
            return False
        self.parked[idx] = {k for k in self.asked.pop(idx, []) if k not in self.answers}
        return True

    def prob(self, idx: int, passed: bool | None) -> float | None:
        """P(yes) of the call's one LLM answer when the call's result is exactly that answer."""
        keys = self.asked.get(idx) or []
        if passed is None or len(keys) != 1 or self.names.get(keys[0]) not in ("llm_judge", "llm_score"):
            return None
        a = self.answers.get(keys[0])
        if a is None or a.error is not None or a.prob is None or type(a.value) not in (bool, int):
            return None
        return a.prob if bool(a.value) == passed else None

    def flush(self, stalled: bool) -> bool:
        """Send waiting requests as one batch when none is being answered and either ``min_batch`` have
        gathered or nothing else can progress (``stalled``: no worker is running code, or one waits for an
        answer); True when the relay was created."""
        if not self.pending or self.inflight or self.llm is None:
            return False
        if len(self.pending) < self.min_batch and not stalled and not self.blocked:
            return False
        created = self.relay is None
        if self.relay is None:
            self.relay = _Relay(self.llm)
        keys = list(self.pending)[: self.batch_size or None]
        batch = [(k, *self.pending.pop(k)) for k in keys]
        self.inflight.update(keys)
        self.relay.submit(batch)  # type: ignore[arg-type]
        return created

    def absorb(self) -> list[tuple[_Worker, dict[str, Any]]]:
        """Take the relay's new answers; the replies owed to workers waiting for them."""
        assert self.relay is not None
        out = []
        for key, ans in self.relay.take():
            self.answers[key] = ans
            self.inflight.discard(key)
            for w in self.blocked.pop(key, []):
                out.append((w, _reply(ans)))
            for keys in self.parked.values():
                keys.discard(key)
        return out

    def ready(self, force: bool = False) -> list[int]:
        """Parked calls whose answers are all in (all of them with ``force``), unparked."""
        out = [idx for idx, keys in self.parked.items() if force or not keys]
        for idx in out:
            del self.parked[idx]
        return out

    def idle(self) -> bool:
        return not self.pending and not self.inflight

    def forget(self, w: _Worker) -> None:
        for ws in self.blocked.values():
            while w in ws:
                ws.remove(w)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()


def _reply(ans: LLMAnswer) -> dict[str, Any]:
    if ans.error is not None:
        return {"type": "llm_reply", "ok": False, "e": ans.error}
    return {"type": "llm_reply", "ok": True, "v": ans.value}


def answer_batch(llm: LLMCallback, requests: Sequence[tuple[str, tuple]]) -> list[LLMAnswer]:
    """Answers for (function name, args) requests: through ``llm.answer_batch`` when it has one (see
    :class:`BatchLLM`), else one call at a time. Never raises: a failure is the answer's error."""
    batch_fn = getattr(llm, "answer_batch", None)
    if callable(batch_fn):
        try:
            answers = list(batch_fn(list(requests)))
            if len(answers) != len(requests):
                raise RuntimeError(f"answer_batch returned {len(answers)} answers for {len(requests)} requests")
        except Exception as e:  # noqa: BLE001 - each request's verdict carries it
            return [LLMAnswer.from_exception(e)] * len(requests)
        return [_checked(a) for a in answers]
    out = []
    for name, args in requests:
        try:
            out.append(_checked(LLMAnswer(llm(str(name), tuple(args)))))
        except Exception as e:  # noqa: BLE001
            out.append(LLMAnswer.from_exception(e))
    return out


def _checked(a: Any) -> LLMAnswer:
    if not isinstance(a, LLMAnswer):
        return LLMAnswer(error=f"TypeError: answer_batch gave {type(a).__name__}, expected LLMAnswer")
    if a.error is None:
        try:
            json.dumps(a.value)
        except (TypeError, ValueError) as e:
            return LLMAnswer.from_exception(e)
    return a


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
        persistent: bool = True,
        llm_replays: int = 16,
        llm_batch_size: int | None = None,
        llm_min_batch: int = 64,
    ) -> None:
        """``persistent=False`` forks a fresh child per chunk (with ``chunk_size=1``, per call) instead of
        keeping one child per worker that serves chunk after chunk; slower, no state between chunks.

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
            "persist": bool(persistent),
        }
        self._serial = 0
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
        progress on another thread stops first: its unfinished calls end undecided."""
        if self._closed:
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
        with self._lock:
            if self._closed:
                raise RuntimeError("Sandbox.run() after close()")
            return self._run(calls, llm if llm is not None else self.llm)

    def _run(self, calls: Sequence[CodeCall], llm: LLMCallback | None) -> list[Verdict]:
        n = len(calls)
        out: list[Verdict | None] = [None] * n
        groups: dict[str, list[int]] = {}
        sources: dict[str, str] = {}
        for i, c in enumerate(calls):
            bad = _validate(c)
            if bad:
                out[i] = Verdict.undecided(f"{protocol.ERR_BAD_INPUT}: item {i}: {bad}")
                continue
            h = hashlib.sha1(c.source.encode("utf-8", "surrogatepass")).hexdigest()
            sources[h] = c.source
            groups.setdefault(h, []).append(i)
        hashes = {i: h for h, idxs in groups.items() for i in idxs}
        todo: deque[list[int]] = deque(self._chunks(groups, n))
        idle = list(self._pool)
        busy: dict[int, _Worker] = {}
        gather = _Gather(llm, n, self.llm_replays, self.llm_batch_size, self.llm_min_batch)
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)

        def retire(w: _Worker, why: str, timeout: bool = False) -> None:
            sel.unregister(w.fd_out)
            del busy[w.fd_out]
            gather.forget(w)
            w.waiting = False
            self._fail_first_and_requeue(w, out, todo, why, timeout=timeout)
            idle.append(self._replace(w))

        def requeue(idxs: list[int]) -> None:
            again: dict[str, list[int]] = {}
            for i in sorted(idxs):
                again.setdefault(hashes[i], []).append(i)
            todo.extend(self._chunks(again, len(idxs)))

        try:
            while todo or busy or gather.parked:
                if self._closing.is_set():
                    raise _Closing
                while todo and idle:
                    w = idle.pop()
                    chunk = todo.popleft()
                    for i in chunk:
                        gather.started(i)
                    if not self._assign(w, chunk, calls, hashes, sources):
                        self._fail_first_and_requeue(w, out, todo, "sandbox worker exited")
                        idle.append(self._replace(w))
                        continue
                    busy[w.fd_out] = w
                    sel.register(w.fd_out, selectors.EVENT_READ, w)
                if gather.flush(stalled=all(w.waiting for w in busy.values())):
                    sel.register(gather.relay.rfd, selectors.EVENT_READ, _RELAY)  # type: ignore[union-attr]
                if not todo and not busy and gather.idle():
                    requeue(gather.ready(force=True))  # nothing left to wait for (a call's request went astray)
                    continue
                first = min((w.deadline for w in busy.values()), default=float("inf"))
                timeout = None if first == float("inf") else max(0.0, first - time.monotonic())
                for key, _ in sel.select(timeout):
                    w = key.data
                    if w is _WAKE:
                        continue  # close() was called: the loop checks at the top
                    if w is _RELAY:  # answers: pass each to the workers waiting for it, re-run parked calls
                        for target, reply in gather.absorb():
                            if busy.get(target.fd_out) is not target:
                                continue
                            target.waiting = False
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
                            finished = self._handle(w, msg, out, gather) or finished
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
            closing = self._closing.is_set()
            for w in list(busy.values()):  # only after an exception: a worker mid-chunk cannot be reused
                if closing:
                    idle.append(w)  # close() kills it
                    continue
                with contextlib.suppress(Exception):
                    idle.append(self._replace(w))
            self._pool = idle
        return [v if v is not None else Verdict.undecided(f"{protocol.ERR_SANDBOX}: no result") for v in out]

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
            "calls": [protocol.Call(i, hashes[i], calls[i].prompt, calls[i].response) for i in chunk],
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

    def _handle(self, w: _Worker, msg: Any, out: list[Verdict | None], gather: _Gather) -> bool:
        """Apply one frame from a worker; True when its chunk is complete."""
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "res":
            done = set()
            for item in msg["items"]:
                r = protocol.Result(*item)
                if type(r.idx) is not int or not 0 <= r.idx < len(out):
                    raise ValueError(f"result for unknown call {r.idx!r}")
                done.add(r.idx)
                if r.error == protocol.DEFERRED:
                    if gather.deferred(r.idx):
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
                w.deadline = float("inf")
                return False
            w.send(reply)
            self._touch(w)
            return False
        raise ValueError(f"unexpected message {kind!r}")

    def _fail_first_and_requeue(self, w: _Worker, out: list[Verdict | None], todo: deque[list[int]], why: str,
                                timeout: bool = False) -> None:
        if w.pending:
            first, rest = w.pending[0], w.pending[1:]
            cls = protocol.ERR_TIMEOUT if timeout else protocol.ERR_CRASH
            out[first] = Verdict.undecided(f"{cls}: {why}")
            if rest:
                todo.appendleft(rest)
        w.pending = []

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        new = self._spawn()
        self._pool = [new if x is w else x for x in self._pool]
        return new


_WAKE, _RELAY = object(), object()


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
    return Verdict.undecided(str(err) if err else f"{protocol.ERR_SANDBOX}: malformed result")
