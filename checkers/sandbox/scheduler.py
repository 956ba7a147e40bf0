"""The worker's scheduler: talks to the parent, compiles sources, hands each call to the clean zygote,
supervises the call's process and relays its LLM requests (stdlib only).

The scheduler never runs dataset code and holds what the calls must not reach (other calls, the code
cache, the parent's pipes); the zygote it forked before any work arrived holds none of it (see
``zygote``). Every byte a call's process sends arrives on that call's own socket, so a frame is charged
to the call that sent it and no other: a bad, oversized, too deeply nested or late frame ends only its
sender. With a PID namespace the scheduler is PID 1: killing it kills every process of the worker.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import select
import shutil
import socket
import sys
import tempfile
import time
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
        self.zpid = -1
        self.zsock: socket.socket | None = None
        self.zbuf = bytearray()  # the zygote's fixed-size records (zygote.RECORD) not read yet
        self.learn: list[str] = []  # modules the zygote is to import before its next fork
        self.taught: set[str] = set()
        self.shipped: dict[str, tuple[Any, str]] = {}  # source hash -> (code object, marshalled form)
        self.forks = 0

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
        iso["call_isolation"] = ("one fresh process per call, forked from a zygote that holds no other call; "
                                 "results only over the call's own socket")
        base_as = _vm_size()
        iso["memory_baseline_mb"] = base_as >> 20
        lock = zygote.LockDown(lim, self.mode, ruleset, seccomp, base_as, self.rundir)
        self.zpid, self.zsock = zygote.start(lock)
        if ruleset >= 0:
            os.close(ruleset)  # the zygote has its copy
        iso["probe"] = self.probe()

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
            except EOFError:
                return
            if msg.get("type") == "exit":
                return
            if msg.get("type") == "chunk":
                self.do_chunk(msg)

    def do_chunk(self, msg: dict[str, Any]) -> None:
        """Run a chunk's calls: consecutive calls with the same unit (one dataset row) share one process."""
        sources = msg.get("sources", {})
        buf: list[Any] = []

        def emit(idx: Any, passed: bool | None, err: str | None) -> None:
            buf.append(protocol.Result(idx, passed, err))
            if len(buf) >= _FLUSH_EVERY:
                self.flush(buf)

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
        protocol.write_all(self.out, protocol.encode({"type": "done"}))

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

    def run_unit(self, items: list[tuple], emit: Any, buf: list[Any] | None) -> None:
        """Run ``items`` (idx, code, prompt, response, hash: calls of one row) in fresh processes, one after
        another in each: every call's verdict goes to ``emit`` in order. A process that ends before its
        last result (a crash, a kill at a deadline, a bad frame) is charged to the call it was running;
        the calls after it run in a new process."""
        done = 0
        while done < len(items):
            n = self.run_process(items[done:], emit, buf)
            done += max(1, n)

    def run_process(self, items: list[tuple], emit: Any, buf: list[Any] | None) -> int:
        """Fork one process for ``items``; how many of them got a verdict (at least one)."""
        if self.zsock is None:
            emit(items[0][0], None, f"{protocol.ERR_SANDBOX}: the worker's zygote is gone")
            return 1
        ours, theirs = socket.socketpair()
        try:
            codes: dict[str, str] = {}
            for _idx, code, _p, _r, h in items:
                if h in codes:
                    continue
                shipped = self.shipped.get(h)
                if shipped is None or shipped[0] is not code:
                    if len(self.shipped) >= codeship.CODE_CACHE_SIZE:
                        self.shipped.clear()
                    shipped = self.shipped[h] = (code, codeship.ship(code))
                codes[h] = shipped[1]
            req = {"c": codes, "k": [[h, p, r] for _i, _c, p, r, h in items], "cpu": self.lim["cpu_seconds"]}
            zygote.send(self.zsock, req, self.learn, theirs.fileno())
            self.learn = []
        except ValueError as e:  # a frame over MAX_FRAME: too large together; alone, this call's texts are
            ours.close()
            theirs.close()
            if len(items) > 1:
                return self.run_process(items[:1], emit, buf)
            emit(items[0][0], None, f"{protocol.ERR_BAD_INPUT}: could not hand the call to its process ({e})")
            return 1
        except OSError:  # the zygote is gone: exit, and the parent re-runs our calls one by one elsewhere
            raise SystemExit(3) from None
        theirs.close()
        self.forks += 1
        try:
            outcomes, learnt = self.supervise(ours, [it[0] for it in items], emit, buf)
        finally:
            ours.close()
            self.fresh_rundir()
        for name in learnt:
            top = str(name).partition(".")[0]
            if (isinstance(name, str) and name not in self.taught and _learnable(top) and len(self.taught) < 4096
                    and name.isascii() and name.replace(".", "").replace("_", "").isalnum()):
                self.learn.append(name)
                self.taught.add(name)
        return outcomes

    def zygote_frame(self) -> dict[str, Any]:
        """The zygote's next record as {"pid": n} or {"status": n}; SystemExit when the zygote is gone."""
        assert self.zsock is not None
        fd = self.zsock.fileno()
        size = zygote.RECORD.size
        while len(self.zbuf) < size:
            data = os.read(fd, 1 << 16)
            if not data:
                raise SystemExit(3)  # the parent sees the worker exit and re-runs its calls one by one
            self.zbuf += data
        kind, value = zygote.RECORD.unpack_from(self.zbuf)
        del self.zbuf[:size]
        if kind not in (zygote.PID, zygote.STATUS):
            raise SystemExit(3)  # never expected: the zygote is broken; its calls are re-run elsewhere
        return {"pid" if kind == zygote.PID else "status": value}

    def supervise(self, sock: socket.socket, idxs: list[Any], emit: Any,
                  buf: list[Any] | None) -> tuple[int, list[Any]]:
        """Serve the process running the calls ``idxs`` (in order) until it exits: pass each result on as
        it comes, relay LLM requests of the call running now (within that call's budgets), kill the process
        at the running call's wall-clock deadline (LLM waiting not counted), and charge how it ended to the
        call it was running. Returns (calls that got a verdict, module names the calls imported). The
        running call is the first without a result: the scheduler counts results itself and never takes the
        process's word for which call sent a frame. The zygote's {"pid"} frame is read when it comes (or
        when needed for a kill), not waited for first: two wake-ups less per call."""
        pid = -1

        def kill() -> None:
            nonlocal pid
            while pid < 0:
                fr = self.zygote_frame()
                pid = int(fr.get("pid", -1))
            self.kill(pid)

        lim = self.lim
        wall = float(lim["wall_timeout_s"])
        max_requests, max_bytes = int(lim["llm_max_requests"]), int(lim["llm_max_bytes"])
        reader = protocol.FrameReader(max_bytes + _RESULT_FRAME)
        deadline = time.monotonic() + wall
        fd, zfd = sock.fileno(), self.zsock.fileno()  # type: ignore[union-attr]
        pos = 0  # the call running now: results so far
        learnt: list[Any] = []
        verdict: str | None = None  # set when the running call is ended by us
        n_requests = n_bytes = 0
        open_sock = True
        status: int | None = None
        while status is None or open_sock:  # after the exit, read what it sent up to its end of file
            left = deadline - time.monotonic()
            if status is None and left <= 0 and verdict is None:
                verdict = f"{protocol.ERR_TIMEOUT}: after {wall:g}s wall clock"
                kill()
            # the call's socket first: its end of file (the process is gone) comes before the zygote's wait
            # status, so the scheduler does not wake up for the zygote's pid record (read when a kill needs it)
            watch = [fd] if open_sock else [zfd]
            timeout = max(left, 0) if status is None and verdict is None else None
            ready = select.select(watch, [], [], timeout)[0]
            while status is None and (zfd in ready or self.zbuf):
                fr = self.zygote_frame()
                if "status" in fr:
                    status = int(fr["status"])
                elif "pid" in fr:
                    pid = int(fr["pid"])
                if not self.zbuf:
                    break
            if fd not in ready:
                continue
            try:
                data = os.read(fd, 1 << 20)
            except OSError:
                data = b""
            if not data:
                open_sock = False
                continue
            if verdict is not None or pos >= len(idxs):
                continue  # the process is ended already, or sent more than it had calls: discarded
            try:
                reader.feed(data)
                frames = reader.frames()
            except protocol.FrameTooLarge:
                verdict = (f"{protocol.ERR_LLM_BUDGET}: an llm_* request of more than {max_bytes} bytes "
                           "(SandboxLimits.llm_max_bytes)")
                kill()
                continue
            except ValueError as e:
                verdict = f"{protocol.ERR_SANDBOX}: bad message from the call's process ({str(e)[:120]})"
                kill()
                continue
            for fr in frames:
                kind = fr.get("t") if isinstance(fr, dict) else None
                if kind == "res":
                    passed, err = _result(fr)
                    m = fr.get("m")
                    if isinstance(m, list):
                        learnt.extend(m[:64])
                    emit(idxs[pos], passed, err)
                    pos += 1
                    n_requests = n_bytes = 0
                    deadline = time.monotonic() + wall
                    if pos >= len(idxs):
                        break
                elif kind == "llm" and status is None:
                    n_requests += 1
                    n_bytes += len(protocol.encode(fr))
                    if n_requests > max_requests or n_bytes > max_bytes:
                        what = (f"more than {max_requests} llm_* requests (SandboxLimits.llm_max_requests)"
                                if n_requests > max_requests else
                                f"llm_* requests of more than {max_bytes} bytes (SandboxLimits.llm_max_bytes)")
                        verdict = f"{protocol.ERR_LLM_BUDGET}: {what}"
                        kill()
                        break
                    if buf is not None:
                        self.flush(buf)  # results so far reach the parent before this call waits
                    w0 = time.monotonic()
                    reply = self.ask_parent(fr, idxs[pos])
                    deadline += time.monotonic() - w0  # waiting for answers is not the call's time
                    with contextlib.suppress(OSError):
                        protocol.write_all(fd, protocol.encode(reply))
                else:
                    verdict = f"{protocol.ERR_SANDBOX}: bad message from the call's process (unexpected frame)"
                    kill()
                    break
        if pos < len(idxs):  # the process ended before the running call's result: that call is the culprit
            emit(idxs[pos], None, verdict if verdict is not None else runner.describe_exit(status, lim))
            pos += 1
        return pos, learnt

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
        for target in (-pid, pid):
            with contextlib.suppress(OSError):
                os.kill(target, 9)


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
