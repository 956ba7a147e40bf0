"""The worker's scheduler: talks to the parent, compiles sources, hands each row's calls to the clean
zygote, supervises the row's process (kept, stopped, while its deferred calls wait for LLM answers) and
relays its LLM requests (stdlib only).

The scheduler never runs dataset code and holds what the calls must not reach (other rows, the code
cache, the parent's pipes); the zygote it forked before any work arrived holds none of it (see
``zygote``). Every byte a row's process sends arrives on that row's own socket and is charged to the call
it is running (the scheduler counts results itself): a bad, oversized, too deeply nested or late frame
ends only its sender's process. With a PID namespace the scheduler is PID 1: killing it kills every process of the worker.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from typing import Any

if __package__:
    from . import codeship, isolation, llm_stub, protocol, runner, zygote
else:  # loaded flat by BOOT, without importing the checkers package
    import codeship  # type: ignore[no-redef]
    import isolation  # type: ignore[no-redef]
    import llm_stub  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]
    import runner  # type: ignore[no-redef]
    import zygote  # type: ignore[no-redef]

#: a result frame is small (the error is cut at 400 characters); LLM frames may use the call's byte budget
_RESULT_FRAME = 64 * 1024
#: results are sent to the parent at least this often (fewer frames, fewer wake-ups)
_FLUSH_EVERY = 64


class Scheduler:
    def __init__(self, cfg: dict[str, Any], iso: dict[str, Any]) -> None:
        self.cfg = cfg
        self.iso = iso
        self.lim = cfg["limits"]
        self.workdir = cfg["workdir"]
        self.rundir = os.path.join(self.workdir, "run")
        self.out = sys.stdout.fileno()
        self.inp = sys.stdin.fileno()
        self.reader = protocol.FrameReader()
        self.codes = codeship.CodeCache()
        self.mode = "none"
        self.zsock: socket.socket | None = None
        self.zbuf = bytearray()  # the zygote's fixed-size records (zygote.RECORD) not read yet
        self.learn: list[str] = []  # modules the zygote is to import before its next fork
        self.taught: set[str] = set()
        self.proc_ok = False  # /proc shows this worker's PID namespace: kept processes' memory can be read
        self.can_keep = False  # Landlock scopes signals (ABI >= 6): a row's process may be kept (see park)
        self.forks = 0  # processes started since the last "done"
        self.resumed = 0  # parked processes run again since the last "done"
        self.awaiting_pid: deque[Proc] = deque()  # started, pid record not read yet (records come in order)
        self.by_pid: dict[int, Proc] = {}  # pid known, wait status not read yet
        self.parked: dict[Proc, None] = {}  # stopped processes holding deferred calls, oldest first
        self.kept: dict[Any, tuple[Proc, int]] = {}  # deferred call -> (its process, its position there)

    # ---- setup ----------------------------------------------------------------------------
    def setup(self) -> None:
        iso = self.iso
        lim = self.lim
        if "mount" in iso["namespaces"]:
            try:
                isolation.make_mounts_private()
                isolation.mount_tmpfs(self.workdir, int(lim["tmpfs_mb"]))
                iso["tmpfs"] = f"{int(lim['tmpfs_mb'])} MiB private tmpfs, emptied after every call"
            except OSError as e:
                iso["tmpfs"] = None
                iso["tmpfs_error"] = str(e)
            if "pid" in iso["namespaces"] and os.getpid() == 1:
                try:
                    isolation.mount_proc()
                    self.proc_ok = True
                except OSError as e:
                    iso["proc_error"] = str(e)
        for name in self.cfg["preload"]:
            with contextlib.suppress(Exception):  # optional module; dataset code gets the error later
                importlib.import_module(name)
        llm_stub.install()
        read_paths = sorted({p for p in self.cfg["read_paths"] if os.path.exists(p)})
        if os.geteuid() == 0:
            self.mode = "nobody" if isolation.nobody_can_read(read_paths) else "caps"
        else:
            self.mode = "unprivileged"
        iso["privileges"] = {
            "nobody": "setuid nobody (65534)",
            "caps": "uid 0 with every capability dropped (python install not readable by nobody)",
            "unprivileged": f"unprivileged uid {os.geteuid()}",
        }[self.mode]
        for key in list(os.environ):
            if key not in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONHASHSEED"):
                del os.environ[key]
        self.fresh_rundir()
        os.environ.update(TMPDIR=self.rundir, HOME=self.rundir)
        tempfile.tempdir = self.rundir
        if self.mode == "caps":
            isolation.drop_bounding_set()
        ruleset = -1
        try:
            ruleset, abi = isolation.landlock_ruleset(read_paths, [self.workdir, "/dev/null"])
            iso["landlock"] = f"ABI {abi}: read-only {len(read_paths)} python/system dirs, write only the private dir"
            if abi >= 4:
                iso["landlock"] += ", no TCP bind/connect"
            if abi >= 6:
                self.can_keep = True  # row processes cannot signal each other: one may wait beside another
                iso["landlock"] += ", signals and abstract sockets scoped"
        except OSError as e:
            iso["landlock"] = None
            iso["landlock_error"] = str(e)
        seccomp = None
        try:
            seccomp = isolation.SeccompFilter()
            iso["seccomp"] = "deny fork/exec/socket/ptrace/mount/namespaces/bpf (libseccomp)"
            try:
                seccomp.export()
            except (OSError, AttributeError) as e:
                iso["seccomp_export_error"] = str(e)
        except OSError as e:
            iso["seccomp"] = None
            iso["seccomp_error"] = str(e)
        iso["rlimits"] = True
        iso["env_scrubbed"] = True
        iso["zygote_pid1"] = "pid" in iso["namespaces"] and os.getpid() == 1
        base_as = _vm_size()
        iso["memory_baseline_mb"] = base_as >> 20
        lock = zygote.LockDown(lim, self.mode, ruleset, seccomp, base_as, self.rundir, private_fs=bool(iso.get("tmpfs")))
        _, self.zsock = zygote.start(lock)
        if ruleset >= 0:
            os.close(ruleset)  # the zygote has its copy
        iso["probe"] = self.probe()
        self.forks = 0

    def fresh_rundir(self) -> None:
        """Empty the worker's private directory (the tmpfs) and make the call's run directory: nothing a
        call wrote, anywhere it could write, is seen by or takes space from the next call."""
        with os.scandir(self.workdir) as it:
            entries = [e.name for e in it]
        if entries == ["run"]:
            with os.scandir(self.rundir) as it:
                if next(it, None) is None and os.stat(self.rundir).st_mode & 0o7777 == 0o700:
                    return
        for name in entries:
            _remove(os.path.join(self.workdir, name))
        os.mkdir(self.rundir, 0o700)
        if self.mode == "nobody":
            os.chown(self.rundir, isolation.NOBODY_UID, isolation.NOBODY_GID)

    def probe(self) -> dict[str, Any]:
        code = codeship.compile_source(PROBE_SOURCE)
        passed, err = self.run_call(("probe", code, "", "", "probe"))
        if err or passed is not True:
            return {"ok": False, "error": err}
        return {"ok": True, "checked": "read /etc/passwd, write /tmp, fork, tcp connect blocked; own dir writable"}

    # ---- serving the parent ---------------------------------------------------------------
    def serve(self) -> None:
        protocol.write_all(self.out, protocol.encode({"type": "hello", "isolation": self.iso, "pid": os.getpid()}))
        while True:
            try:
                msg = self.reader.read_frame(self.inp)
            except EOFError:  # the parent is gone: no kept process may outlive it (without a PID namespace)
                self.release()
                return
            kind = msg.get("type")
            if kind == "exit":
                self.release()
                return
            if kind == "chunk":
                self.do_chunk(msg)
            elif kind == "resume":
                self.do_resume(msg)
            elif kind == "release":
                self.release()

    def _emitter(self) -> tuple[list[Any], Any]:
        buf: list[Any] = []

        def emit(idx: Any, passed: bool | None, err: str | None) -> None:
            buf.append(protocol.Result(idx, passed, err))
            if len(buf) >= _FLUSH_EVERY:
                self.flush(buf)

        return buf, emit

    def do_resume(self, msg: dict[str, Any]) -> None:
        """Run again calls deferred earlier (their LLM answers are in now): in the row's process where it is
        kept (parked), else in a fresh one."""
        buf, emit = self._emitter()
        groups: dict[Any, list[int]] = {}
        for idx in msg.get("calls", []):
            kept = self.kept.pop(idx, None)
            if kept is None:
                emit(idx, None, f"{protocol.ERR_SANDBOX}: the call is not held by this worker")
                continue
            proc, pos = kept
            groups.setdefault(proc, []).append(pos)
        for proc, positions in groups.items():
            positions.sort()
            if proc in self.parked and self.wake(proc, positions):
                n = self.continue_process(proc, positions, emit, buf, resumed=True)
                if n < len(positions):  # it ended early: the rest run afresh (to find the culprit, if held back)
                    self.run_unit([proc.items[p] for p in positions[n:]], emit, buf, hold=not proc.lost)
            else:
                self.run_unit([proc.items[p] for p in positions], emit, buf)
        self.flush(buf)
        self.done()

    def do_chunk(self, msg: dict[str, Any]) -> None:
        """Run a chunk's calls: consecutive calls with the same unit (one dataset row) share one process."""
        sources = msg.get("sources", {})
        buf, emit = self._emitter()

        unit: list[tuple] = []
        unit_id: Any = object()
        for idx, h, prompt, response, u in msg["calls"]:
            if u != unit_id and unit:
                self.run_unit(unit, emit, buf)
                unit = []
            unit_id = u
            code, err = self.codes.get(h, sources.get(h), self.lim["max_source_chars"])
            if err is None:
                unit.append((idx, code, prompt, response, h))
            else:
                emit(idx, None, err)
        if unit:
            self.run_unit(unit, emit, buf)
        self.flush(buf)
        self.done()

    def done(self) -> None:
        """End of a chunk or resume, with the process counts since the last one (``Sandbox.stats``)."""
        protocol.write_all(self.out, protocol.encode({"type": "done", "forks": self.forks, "resumed": self.resumed}))
        self.forks = self.resumed = 0

    def flush(self, buf: list[Any]) -> None:
        if buf:
            protocol.write_all(self.out, protocol.encode({"type": "res", "items": buf}))
            buf.clear()

    # ---- one row's calls ------------------------------------------------------------------
    def run_call(self, item: tuple) -> tuple[bool | None, str | None]:
        """One call alone in a fresh process (the start-up probe); its verdict (passed, error)."""
        got: list[tuple[bool | None, str | None]] = []
        self.run_unit([item], lambda _i, p, e: got.append((p, e)), None)
        return got[0]

    def run_unit(self, items: list[tuple], emit: Any, buf: list[Any] | None, hold: bool = True) -> None:
        """Run ``items`` (idx, code, prompt, response, hash: calls of one row) in a fresh process, one after
        another: every call's verdict goes to ``emit`` in order. A process that ends before its last result
        (a crash, a kill at a deadline, a bad frame) is charged to the call it was running, and the calls
        after it run in a new process. With ``hold`` the process sends fast calls' results together
        (``runner.Results``), so when it ends early the call it was running is not known: the unreported
        calls then run again in a process that holds nothing back, which finds it."""
        done = 0
        while done < len(items):
            rest = items[done:]
            proc = self.start_process(rest, emit, buf, hold)
            if proc is None:
                done += 1  # start_process gave the first call its verdict
                continue
            done += self.continue_process(proc, list(range(len(proc.items))), emit, buf, resumed=False)
            if proc.lost:
                hold = False  # until the row's end: crashes are rare, and this finds the culprit

    def start_process(self, items: list[tuple], emit: Any, buf: list[Any] | None, hold: bool = True) -> Proc | None:
        """Fork a process for ``items`` (it starts running them at once); None when the first call could
        not be handed over (it has its verdict then)."""
        if self.zsock is None:
            emit(items[0][0], None, f"{protocol.ERR_SANDBOX}: the worker's zygote is gone")
            return None
        ours, theirs = socket.socketpair()
        try:
            codes = {h: self.codes.shipped(h, code) for _i, code, _p, _r, h in items}
            req = {"c": codes, "k": [[h, p, r] for _i, _c, p, r, h in items], "cpu": self.lim["cpu_seconds"],
                   "b": hold, "p": self.can_keep}
            zygote.send(self.zsock, req, self.learn, theirs.fileno())
            self.learn = []
        except ValueError as e:  # a frame over MAX_FRAME: too large together (a process for the first half), or
            ours.close()  # alone, this call's texts are
            theirs.close()
            if len(items) > 1:
                return self.start_process(items[: len(items) // 2], emit, buf, hold)
            emit(items[0][0], None, f"{protocol.ERR_BAD_INPUT}: could not hand the call to its process ({e})")
            return None
        except OSError:  # the zygote is gone: exit, and the parent re-runs our calls one by one elsewhere
            raise SystemExit(3) from None
        theirs.close()
        self.forks += 1
        proc = Proc(ours, items, int(self.lim["llm_max_bytes"]) + _RESULT_FRAME, hold)
        self.awaiting_pid.append(proc)
        return proc

    def continue_process(self, proc: Proc, positions: list[int], emit: Any, buf: list[Any] | None,
                         resumed: bool) -> int:
        """Supervise ``proc`` while it runs the calls at ``positions`` (a first pass, or ``resumed``: a
        re-run after ``go``); how many of them got a verdict. The process then has ended, or is parked
        (stopped) holding its deferred calls; either way the private directory is emptied before anything
        else runs."""
        try:
            n, learnt, outcome = self.supervise(proc, positions, emit, buf, resumed)
        finally:
            if proc not in self.parked:
                proc.close()
            self.fresh_rundir()
            self.check_parked()
        if outcome == "spent":  # the row's CPU allowance would not cover the re-run: a fresh process
            self.run_unit([proc.items[p] for p in positions], emit, buf)
            n = len(positions)
        for name in learnt:
            top = str(name).partition(".")[0]
            if (isinstance(name, str) and name not in self.taught and _learnable(top) and len(self.taught) < 4096
                    and name.isascii() and name.replace(".", "").replace("_", "").isalnum()):
                self.learn.append(name)
                self.taught.add(name)
        return n

    # ---- processes: pid and wait-status records, parking ----------------------------------
    def pump(self, block: bool, timeout: float | None = None) -> None:
        """Read the zygote's records: a pid for each process started (in order), a wait status for each
        that ended, and a record for each that stopped. SystemExit when the zygote is gone."""
        assert self.zsock is not None
        fd = self.zsock.fileno()
        size = zygote.RECORD.size
        if select.select([fd], [], [], (timeout if block else 0))[0]:
            data = os.read(fd, 1 << 16)
            if not data:
                raise SystemExit(3)  # the parent sees the worker exit and re-runs its calls one by one
            self.zbuf += data
        while len(self.zbuf) >= size:
            kind, pid, value = zygote.RECORD.unpack_from(self.zbuf)
            del self.zbuf[:size]
            if kind == zygote.PID and self.awaiting_pid:
                proc = self.awaiting_pid.popleft()
                proc.pid = pid
                self.by_pid[pid] = proc
            elif kind == zygote.STATUS:
                proc = self.by_pid.pop(pid, None)
                if proc is not None:
                    proc.status = value
            elif kind == zygote.STOPPED:
                proc = self.by_pid.get(pid)
                if proc is not None:
                    proc.stopped = True
            else:
                raise SystemExit(3)  # never expected: the zygote is broken; its calls are re-run elsewhere

    def pid_of(self, proc: Proc) -> int:
        while proc.pid < 0:
            self.pump(block=True)
        return proc.pid

    def park(self, proc: Proc) -> None:
        """Keep a process whose deferred calls wait for LLM answers, stopped (SIGSTOP) so that it can do
        nothing while other rows run: it runs again (SIGCONT, ``go``) when its answers are in. A stop takes
        effect asynchronously, so the scheduler waits for the zygote's record that it has (a process not
        stopped within ``_STOP_WAIT_S`` is killed instead). Processes are kept only where Landlock scopes
        signals: elsewhere a running row could continue a kept one (``can_keep``; the runner does not ask)."""
        with contextlib.suppress(OSError):
            os.kill(self.pid_of(proc), signal.SIGSTOP)
        end = time.monotonic() + _STOP_WAIT_S
        while not proc.stopped and proc.status is None and time.monotonic() < end:
            self.pump(block=True, timeout=max(0.0, end - time.monotonic()))
        if not proc.stopped or proc.status is not None:
            self.kill(proc.pid)
            proc.close()
            return
        self.parked[proc] = None
        while len(self.parked) > _MAX_PARKED:
            self.evict(next(iter(self.parked)))

    def wake(self, proc: Proc, positions: list[int]) -> bool:
        """Continue a parked process with the calls at ``positions``; False when it is gone (its calls then
        run in a fresh process: a parked process runs no call, so its end is nobody's fault)."""
        del self.parked[proc]
        self.pump(block=False)
        if proc.status is not None:
            proc.close()
            return False
        try:
            proc.stopped = False
            os.kill(proc.pid, signal.SIGCONT)
            protocol.write_all(proc.fd, protocol.encode({"t": "go", "k": positions}))
            self.resumed += 1
        except OSError:
            self.kill(proc.pid)
            proc.close()
            return False
        return True

    def evict(self, proc: Proc) -> None:
        """Kill a parked process; its calls will run in a fresh process when their answers are in."""
        self.parked.pop(proc, None)
        self.kill(proc.pid)
        proc.close()

    def check_parked(self) -> None:
        """Parked processes may hold files they deleted (space in the private tmpfs that emptying the
        directory cannot free) or much memory: when the emptied tmpfs is not empty, or the parked processes
        hold more than ``_PARKED_MEMORY`` times ``memory_mb`` together, they are killed (their calls run
        again in fresh processes)."""
        if not self.parked:
            return
        with contextlib.suppress(OSError):
            st = os.statvfs(self.workdir)
            if self.iso.get("tmpfs") and st.f_blocks - st.f_bfree > 0:
                for proc in list(self.parked):
                    self.evict(proc)
                return
        limit = _PARKED_MEMORY * (int(self.lim["memory_mb"]) << 20)
        if not self.proc_ok:  # their memory cannot be read: as many as could each hold memory_mb in the limit
            while len(self.parked) > _PARKED_MEMORY:
                self.evict(next(iter(self.parked)))
            return
        total = 0
        for proc in list(self.parked):
            total += _rss(proc.pid)
            if total > limit:
                self.evict(proc)

    def release(self) -> None:
        """The run is over: no parked process will be needed again."""
        for proc in list(self.parked):
            self.evict(proc)
        self.kept.clear()

    def supervise(self, proc: Proc, positions: list[int], emit: Any, buf: list[Any] | None,
                  resumed: bool) -> tuple[int, list[Any], str]:
        """Serve ``proc`` while it runs the calls at ``positions`` (in order) until it exits or parks: pass
        each result on as it comes, relay LLM requests of the call running now (within that call's
        budgets), kill the process at the running call's wall-clock deadline (LLM waiting not counted), and
        charge how it ended to the call it was running. Returns (calls that got a verdict, module names the
        calls imported, "exit" | "park" | "spent"). The running call is the first without a result: the
        scheduler counts results itself and never takes the process's word for which call sent a frame.
        The zygote's records are read when they come (or when a kill needs the pid), not waited for first."""
        lim = self.lim
        wall = float(lim["wall_timeout_s"])
        max_requests, max_bytes = int(lim["llm_max_requests"]), int(lim["llm_max_bytes"])
        items = [proc.items[p] for p in positions]
        idxs = [it[0] for it in items]
        reader = proc.reader
        deadline = time.monotonic() + wall
        fd, zfd = proc.fd, self.zsock.fileno()  # type: ignore[union-attr]
        pos = 0  # the call running now: results so far
        learnt: list[Any] = []
        deferred: list[int] = []
        verdict: str | None = None  # set when the running call is ended by us
        outcome = "exit"
        n_requests = n_bytes = 0

        def end(why: str) -> None:
            nonlocal verdict
            verdict = why
            self.kill(self.pid_of(proc))

        while proc.status is None or not proc.eof:  # after the exit, read what it sent up to its end of file
            left = deadline - time.monotonic()
            if proc.status is None and left <= 0 and verdict is None:
                end(f"{protocol.ERR_TIMEOUT}: after {wall:g}s wall clock")
            # the process's socket first: its end of file comes before the zygote's wait status, so the
            # scheduler does not wake up for the zygote's pid record (read when a kill needs it)
            watch = [zfd] if proc.eof else [fd]
            timeout = max(left, 0) if proc.status is None and verdict is None else None
            ready = select.select(watch, [], [], timeout)[0]
            if zfd in ready or self.zbuf:
                self.pump(block=zfd in ready)
            if fd not in ready:
                continue
            try:
                data = os.read(fd, 1 << 20)
            except OSError:
                data = b""
            if not data:
                proc.eof = True
                continue
            if verdict is not None or outcome != "exit":
                continue  # the process is ended already (or done with this pass): what it sends is discarded
            reader.feed(data)
            while verdict is None and outcome == "exit":
                # one frame at a time, each handled before the next is parsed: a bad frame is charged to the
                # call running when it comes, never to a call whose result arrived in the same read
                try:
                    fr = reader.pop()
                except protocol.FrameTooLarge:
                    end(f"{protocol.ERR_LLM_BUDGET}: an llm_* request of more than {max_bytes} bytes "
                        "(SandboxLimits.llm_max_bytes)")
                    break
                except ValueError as e:
                    end(f"{protocol.ERR_SANDBOX}: bad message from the call's process ({str(e)[:120]})")
                    break
                if fr is protocol.NO_FRAME:
                    break
                kind = fr.get("t") if isinstance(fr, dict) else None
                if kind == "res" and pos < len(idxs):
                    passed, err = _result(fr)
                    m = fr.get("m")
                    if isinstance(m, list):
                        learnt.extend(m[:64])
                    if err == protocol.DEFERRED:
                        deferred.append(positions[pos])
                        self.kept[idxs[pos]] = (proc, positions[pos])
                    emit(idxs[pos], passed, err)
                    pos += 1
                    n_requests = n_bytes = 0
                    deadline = time.monotonic() + wall
                elif kind == "park" and pos == len(idxs) and deferred and proc.status is None:
                    outcome = "park"
                    break
                elif kind == "spent" and resumed and pos == 0 and proc.status is None:
                    outcome = "spent"  # it exits now; the calls run in a fresh process
                    break
                elif kind == "llm" and pos < len(idxs) and proc.status is None:
                    n_requests += 1
                    n_bytes += len(protocol.encode(fr))
                    if n_requests > max_requests or n_bytes > max_bytes:
                        what = (f"more than {max_requests} llm_* requests (SandboxLimits.llm_max_requests)"
                                if n_requests > max_requests else
                                f"llm_* requests of more than {max_bytes} bytes (SandboxLimits.llm_max_bytes)")
                        end(f"{protocol.ERR_LLM_BUDGET}: {what}")
                        break
                    if buf is not None:
                        self.flush(buf)  # results so far reach the parent before this call waits
                    w0 = time.monotonic()
                    reply = self.ask_parent(fr, idxs[pos])
                    deadline += time.monotonic() - w0  # waiting for answers is not the call's time
                    with contextlib.suppress(OSError):
                        protocol.write_all(fd, protocol.encode(reply))
                else:
                    end(f"{protocol.ERR_SANDBOX}: bad message from the call's process (unexpected frame)")
                    break
            if outcome == "park":
                self.park(proc)
                return pos, learnt, outcome
        if outcome == "spent":
            return 0, learnt, outcome
        if pos < len(idxs):  # the process ended before the running call's result: that call is the culprit,
            if proc.hold:  # unless results were held back: then it is not known; they run again (run_unit)
                proc.lost = True
                return pos, learnt, "exit"
            emit(idxs[pos], None, verdict if verdict is not None else runner.describe_exit(proc.status, lim))
            pos += 1
        return pos, learnt, "exit"

    def ask_parent(self, fr: dict[str, Any], idx: Any) -> dict[str, Any]:
        """Forward the call's LLM request, tagged with the call's own index, and relay the answer."""
        name, args, nonce = fr.get("f"), fr.get("a"), fr.get("n")
        if name not in protocol.LLM_FUNCTIONS or not isinstance(args, list):
            return {"ok": False, "e": "malformed LLM request", "n": nonce}
        protocol.write_all(self.out, protocol.encode({"type": "llm", "f": name, "a": args, "i": idx}))
        while True:
            msg = self.reader.read_frame(self.inp)
            if msg.get("type") == "llm_reply":
                return {"ok": bool(msg.get("ok")), "v": msg.get("v"), "e": msg.get("e"), "n": nonce,
                        "defer": bool(msg.get("defer")), "needs": bool(msg.get("needs"))}

    def kill(self, pid: int) -> None:
        """The call's process (seccomp leaves it no children; its process group covers the fallback)."""
        if pid <= 0:
            return
        for target in (-pid, pid):
            with contextlib.suppress(OSError):
                os.kill(target, 9)


class Proc:
    """One row's process as the scheduler sees it: its socket, its pid (from the zygote's record), the
    calls it was started with (positions index them), and how it ended."""

    def __init__(self, sock: socket.socket, items: list[tuple], max_frame: int, hold: bool = False) -> None:
        self.hold = hold  # it sends fast calls' results together (runner.Results)
        self.lost = False  # it ended early with results held back: nobody is charged yet
        self.stopped = False  # the zygote reported it stopped (SIGSTOP took effect)
        self.sock = sock
        self.fd = sock.fileno()
        self.pid = -1
        self.items = items
        self.status: int | None = None
        self.eof = False
        self.reader = protocol.FrameReader(max_frame)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


#: processes kept (stopped) per worker while their deferred calls wait for answers; the oldest is killed
#: beyond it (its calls then run in a fresh process)
_MAX_PARKED = 64
#: parked processes may hold this many times ``memory_mb`` together before the largest are killed
_PARKED_MEMORY = 2
#: seconds a process has to stop (SIGSTOP) before it is killed instead of kept
_STOP_WAIT_S = 5.0


def _rss(pid: int) -> int:
    """Resident bytes of a process that it does not share (with the zygote, mostly); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            fields = f.read().split()
        return max(0, int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _result(fr: dict[str, Any]) -> tuple[bool | None, str | None]:
    """A result frame's verdict (passed, error)."""
    passed, err = fr.get("p"), fr.get("e")
    if err is None and type(passed) is bool:
        return passed, None
    if isinstance(err, str) and passed is None:
        return None, err[:400]
    return None, f"{protocol.ERR_SANDBOX}: malformed result"


def _remove(path: str) -> None:
    """Remove a file or tree the call left, whatever modes it set on it."""
    if os.path.islink(path) or not os.path.isdir(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return

    def fix(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    shutil.rmtree(path, onerror=fix)


#: modules the zygote may import itself when a call needed them (their import runs trusted library code)
_LEARN_EXTRA = frozenset({"numpy", "regex"})
_LEARN_DENY = frozenset({
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc", "webbrowser", "ensurepip",
    "venv", "site", "sitecustomize", "usercustomize", "readline", "rlcompleter", "test", "lib2to3", "__main__",
    "__hello__", "__phello__", "pdb", "code", "pty", "tty", "curses", "ctypes", "gc", "multiprocessing",
    "concurrent", "subprocess", "asyncio", "threading", "_thread", "signal", "faulthandler", "tracemalloc",
})


def _vm_size() -> int:
    """This process's address-space size in bytes (the preloaded interpreter's share of RLIMIT_AS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _learnable(top: str) -> bool:
    if top in _LEARN_DENY or top.startswith("_"):
        return False
    return top in _LEARN_EXTRA or top in getattr(sys, "stdlib_module_names", ())


PROBE_SOURCE = r'''
def check_following(instruction, response):
    import os, socket
    out = {}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "ALLOWED"
        except BaseException as e:
            out[name] = "blocked"
    attempt("read /etc/passwd", lambda: open("/etc/passwd").read())
    attempt("write /tmp", lambda: open("/tmp/.verinstruct_probe", "w"))
    attempt("fork", lambda: os._exit(0) if os.fork() == 0 else None)
    attempt("tcp connect", lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.2))
    attempt("write own dir", lambda: open("probe.txt", "w").write("x"))
    if out != {"read /etc/passwd": "blocked", "write /tmp": "blocked", "fork": "blocked",
               "tcp connect": "blocked", "write own dir": "ALLOWED"}:
        raise ValueError(repr(out))
    return True
'''

_ = builtins  # the zygote copies the builtins dict when it starts; imported here so flat loading keeps it
