"""Sandbox worker: a clean zygote that forks one restricted process per chunk of calls (stdlib only;
numpy is used by the guard when preloaded).

Started by the parent as ``python -s -P -c BOOT``; talks frames (see protocol) on stdin/stdout.
The zygote itself never runs dataset code: it compiles sources (cached by hash), forks, and the
forked child locks itself down (rlimits, privileges, Landlock, seccomp) before exec'ing any of it,
then runs the chunk's calls in sequence with the per-call checks of ``guard``.
With a PID namespace the zygote is PID 1, so killing it kills every process the code started.
"""

from __future__ import annotations

import binascii
import builtins
import contextlib
import gc
import importlib
import marshal
import mmap
import os
import resource
import select
import signal
import socket
import struct
import sys
import tempfile
import time
from collections import OrderedDict
from typing import Any

if __package__:
    from . import guard, isolation, llm_stub, protocol
else:  # loaded flat by BOOT, without importing the checkers package
    import guard  # type: ignore[no-redef]
    import isolation  # type: ignore[no-redef]
    import llm_stub  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]

P = protocol
CODE_CACHE_SIZE = 4096
#: shared with the running child: index of the call in progress, its start time in monotonic ns, how the
#: child ended (0 running or crashed, _DONE finished or retired after its last result, _RETIRE stopped
#: before an unchecked primitive), bytes of module names it imported; then those names; then result slots
_HEADER = struct.Struct("=QQQQ")
_DONE, _RETIRE = 1, 2
_LEARN_BYTES = 4096
_SHM_HEAD = _HEADER.size + _LEARN_BYTES
_SLOT = 1024
#: calls one shared-memory block holds: longer chunks are sent to the child in pieces of this size
_PIECE = 256
#: a persistent child retires after this many calls (bounds its CPU hard limit and any slow drift)
MAX_CALLS_PER_CHILD = 4096


class Child:
    """A locked-down child that stays alive between pieces of work (the zygote keeps one at a time)."""

    def __init__(self, pid: int, sock: socket.socket, shm: mmap.mmap, secret: str) -> None:
        self.pid = pid
        self.sock = sock
        self.shm = shm
        self.secret = secret  # in run/idle frames: the child's dataset code cannot read it, so cannot forge them
        self.hashes: set[str] = set()  # sources whose code object the child already holds


class Zygote:
    def __init__(self, cfg: dict[str, Any], iso: dict[str, Any]) -> None:
        self.cfg = cfg
        self.iso = iso
        self.lim = cfg["limits"]
        self.workdir = cfg["workdir"]
        self.rundir = os.path.join(self.workdir, "run")
        self.out = sys.stdout.fileno()
        self.inp = sys.stdin.fileno()
        self.reader = P.FrameReader()
        self.codes: OrderedDict[str, Any] = OrderedDict()
        self.pidns = "pid" in iso["namespaces"]
        self.seccomp: isolation.SeccompFilter | None = None
        self.ruleset = -1
        self.mode = "none"
        self.builtins = dict(builtins.__dict__)
        self.watch = guard.Watch()
        self.forks = 0
        self.base_as = 0
        self.child: Child | None = None

    # ---- setup ----------------------------------------------------------------------------
    def setup(self) -> None:
        iso = self.iso
        lim = self.lim
        if "mount" in iso["namespaces"]:
            try:
                isolation.make_mounts_private()
                isolation.mount_tmpfs(self.workdir, int(lim["tmpfs_mb"]))
                iso["tmpfs"] = f"{int(lim['tmpfs_mb'])} MiB private tmpfs"
            except OSError as e:
                iso["tmpfs"] = None
                iso["tmpfs_error"] = str(e)
        for name in self.cfg["preload"]:
            with contextlib.suppress(Exception):  # optional module; dataset code gets the error later
                importlib.import_module(name)
        llm_stub.install()
        self.builtins = dict(builtins.__dict__)
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
        # once here rather than in every child: environment, run directory, capability bounding set
        for key in list(os.environ):
            if key not in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONHASHSEED"):
                del os.environ[key]
        os.mkdir(self.rundir, 0o700)
        if self.mode == "nobody":
            os.chown(self.rundir, isolation.NOBODY_UID, isolation.NOBODY_GID)
        os.environ.update(TMPDIR=self.rundir, HOME=self.rundir)
        tempfile.tempdir = self.rundir
        if self.mode == "caps":
            isolation.drop_bounding_set()
        try:
            self.ruleset, abi = isolation.landlock_ruleset(read_paths, [self.workdir, "/dev/null"])
            iso["landlock"] = f"ABI {abi}: read-only {len(read_paths)} python/system dirs, write only the private dir"
            if abi >= 4:
                iso["landlock"] += ", no TCP bind/connect"
            if abi >= 6:
                iso["landlock"] += ", signals and abstract sockets scoped"
        except OSError as e:
            iso["landlock"] = None
            iso["landlock_error"] = str(e)
        try:
            self.seccomp = isolation.SeccompFilter()
            iso["seccomp"] = "deny fork/exec/socket/ptrace/mount/namespaces/bpf (libseccomp)"
            try:
                self.seccomp.export()
            except (OSError, AttributeError) as e:
                iso["seccomp_export_error"] = str(e)
        except OSError as e:
            iso["seccomp"] = None
            iso["seccomp_error"] = str(e)
        iso["rlimits"] = True
        iso["env_scrubbed"] = True
        iso["zygote_pid1"] = self.pidns and os.getpid() == 1
        iso["chunk_guard"] = ("one process per chunk; per-call checks of shared state "
                              + ("(dict version tags)" if guard.TAGS else "(value identity)")
                              + ", audit hook")
        self.base_as = _vm_size()
        iso["memory_baseline_mb"] = self.base_as >> 20
        gc.collect()
        self.watch.build()
        gc.freeze()  # forked children neither scan nor dirty the zygote's objects when they collect
        # prove it: one probe child with the full lock-down, checking what hostile code would try
        iso["probe"] = self.probe()

    def lock_down(self, keep: tuple[int, ...], n_calls: int) -> None:
        """Run in the forked child, before any dataset code: restrict this process for good."""
        os.setpgid(0, 0)
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.chdir(self.rundir)
        lim = self.lim
        cpu_hard = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime) + int(lim["cpu_seconds"] + 0.999) * n_calls + 2
        isolation.set_rlimits({
            "RLIMIT_AS": self.base_as + (int(lim["memory_mb"]) << 20),
            "RLIMIT_FSIZE": int(lim["file_size_mb"]) << 20,
            "RLIMIT_NOFILE": int(lim["open_files"]),
            "RLIMIT_NPROC": int(lim["max_processes"]),
            "RLIMIT_CORE": 0,
        })
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
        if self.mode == "nobody":
            isolation.become_nobody()
        elif self.mode == "caps":
            isolation.clear_capabilities()
        isolation.no_new_privs()
        if self.ruleset >= 0:
            isolation.landlock_restrict(self.ruleset)
        if self.seccomp is not None:
            self.seccomp.load()
        lo = 3
        for fd in sorted(keep):
            os.closerange(lo, fd)
            lo = fd + 1
        os.closerange(lo, 1 << 16)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    def probe(self) -> dict[str, Any]:
        code = compile(PROBE_SOURCE, "<probe>", "exec")
        res = self.run_items([["probe", code, "", "", "probe"]], solo=True)
        err = res[0][2]
        checks = "read /etc/passwd, write /tmp, fork, tcp connect blocked; own dir writable"
        return {"ok": False, "error": err} if err else {"ok": True, "checked": checks}

    # ---- chunk processing -------------------------------------------------------------------
    def serve(self) -> None:
        P.write_all(self.out, P.encode({"type": "hello", "isolation": self.iso, "pid": os.getpid()}))
        while True:
            try:
                msg = self.reader.read_frame(self.inp)
            except EOFError:
                return
            if msg.get("type") == "exit":
                return
            if msg.get("type") == "chunk":
                self.do_chunk(msg)

    def code_for(self, h: str, source: str | None) -> tuple[Any, str | None]:
        if h in self.codes:
            self.codes.move_to_end(h)
            return self.codes[h], None
        if source is None:
            return None, f"{P.ERR_SANDBOX}: source {h[:12]} not sent"
        if len(source) > self.lim["max_source_chars"]:
            return None, f"{P.ERR_SOURCE_TOO_LARGE}: {len(source)} characters > {self.lim['max_source_chars']}"
        try:
            code: Any = compile(source, "<dataset code>", "exec", dont_inherit=True)
        except SyntaxError as e:
            code = f"{P.ERR_SYNTAX}: {e.msg} (line {e.lineno})"
        except (ValueError, RecursionError, MemoryError, OverflowError) as e:
            code = f"{P.ERR_SYNTAX}: {type(e).__name__}: {str(e)[:200]}"
        self.codes[h] = code
        if len(self.codes) > CODE_CACHE_SIZE:
            self.codes.popitem(last=False)
        return code, None

    def do_chunk(self, msg: dict[str, Any]) -> None:
        """Run a whole chunk (many sources) in as few forked children as possible."""
        sources = msg.get("sources", {})
        failed: list[list[Any]] = []
        runnable: list[list[Any]] = []
        for idx, h, prompt, response in msg["calls"]:
            code, err = self.code_for(h, sources.get(h))
            if err is None and isinstance(code, str):
                err = code
            if err is not None:
                failed.append([idx, None, err])
            else:
                runnable.append([idx, code, prompt, response, h])
        if failed:
            P.write_all(self.out, P.encode({"type": "res", "items": failed}))
        if runnable:
            self.run_items(runnable, report=True)
        P.write_all(self.out, P.encode({"type": "done"}))

    def run_items(self, items: list[list[Any]], report: bool = False, solo: bool = False) -> list[list[Any]]:
        """Run [idx, code, prompt, response, hash] items in order on the persistent child (forking one when
        there is none); re-fork after a call that ends its process. A call that needs a primitive the
        guard cannot check is re-run alone in a one-shot child. ``solo``: every item in a one-shot child."""
        results: list[list[Any]] = []
        force = solo
        while len(results) < len(items):
            out, force = self.run_piece(items, len(results), force)
            force = force or solo
            results.extend(out)
            if report and out:
                P.write_all(self.out, P.encode({"type": "res", "items": out}))
        return results

    def run_piece(self, items: list[list[Any]], start: int, solo: bool) -> tuple[list[list[Any]], bool]:
        piece = items[start:start + 1] if solo else items[start:start + _PIECE]
        if solo:
            child = self.fork_child(piece, persist=False)
        else:
            child = self.child
            if not self.cfg.get("persist", True):
                child = self.fork_child(piece, persist=False)  # one process per piece (chunk_size=1: per call)
            elif child is not None and not self.send_piece(child, piece):
                self.end_child(child)
                child = None
            if child is None:
                child = self.child = self.fork_child(piece, persist=True)
        try:
            out, next_solo, alive = self.supervise(child, piece)
        except BaseException:
            alive = False
            raise
        finally:
            if not alive:
                self.end_child(child)
        return out, next_solo

    def fork_child(self, piece: list[list[Any]], persist: bool) -> Child:
        self.watch.refresh()
        shm = mmap.mmap(-1, _SHM_HEAD + _SLOT * _PIECE)
        _HEADER.pack_into(shm, 0, 0, time.monotonic_ns(), 0, 0)
        parent_sock, child_sock = socket.socketpair()
        secret = os.urandom(16).hex()
        self.forks += 1
        pid = os.fork()
        if pid == 0:  # child: never returns
            status = 70
            try:
                parent_sock.close()
                fd = child_sock.detach()
                try:
                    self.lock_down((fd,), MAX_CALLS_PER_CHILD if persist else len(piece))
                except BaseException as e:  # noqa: BLE001 - refuse to run unconfined
                    err = f"{P.ERR_SANDBOX}: lock-down failed: {type(e).__name__}: {e}"
                    for k in range(len(piece)):
                        _write_slot(shm, k, None, err)
                    _HEADER.pack_into(shm, 0, len(piece), 0, _DONE, 0)
                    os._exit(0)
                status = child_main(fd, shm, piece, False, persist, secret, self.builtins, self.lim,
                                    self.watch, self.rundir)
            finally:
                os._exit(status)
        child_sock.close()
        child = Child(pid, parent_sock, shm, secret)
        child.hashes.update(it[4] for it in piece)
        return child

    def send_piece(self, child: Child, piece: list[list[Any]]) -> bool:
        """Hand the idle child its next piece: code objects it lacks go along, marshalled."""
        shm = child.shm
        if _HEADER.unpack_from(shm, 0)[2] != _DONE:  # not cleanly idle (e.g. it retired meanwhile)
            return False
        shm[_SHM_HEAD:_SHM_HEAD + _SLOT * len(piece)] = bytes(_SLOT * len(piece))
        _HEADER.pack_into(shm, 0, 0, time.monotonic_ns(), 0, 0)
        codes: dict[str, str] = {}
        for it in piece:
            if it[4] not in child.hashes and it[4] not in codes:
                codes[it[4]] = binascii.b2a_base64(marshal.dumps(it[1]), newline=False).decode("ascii")
        frame = {"t": "run", "s": child.secret, "codes": codes, "items": [[it[0], it[4], it[2], it[3]] for it in piece]}
        try:
            P.write_all(child.sock.fileno(), P.encode(frame))
        except (OSError, ValueError):
            return False
        child.hashes.update(codes)
        return True

    def end_child(self, child: Child) -> None:
        """The child is gone or must go: reap it (and anything it started), learn its imports, clean up."""
        if self.child is child:
            self.child = None
        self.kill_child(child.pid)
        child.sock.close()
        self.reap(child.pid)
        with os.scandir(self.rundir) as it:
            dirty = next(it, None) is not None
        if dirty:
            guard._clear_dir(self.rundir)
        self.learn(child.shm)
        child.shm.close()

    def learn(self, shm: mmap.mmap) -> None:
        """Preload modules a child imported (from an allow-list), so later children start with them."""
        n = _HEADER.unpack_from(shm, 0)[3]
        if not 0 < n <= _LEARN_BYTES:
            return
        names = bytes(shm[_HEADER.size:_HEADER.size + n]).decode("ascii", "ignore").split(",")
        for name in names:
            top = name.partition(".")[0]
            if name in sys.modules or not _learnable(top) or not name.replace(".", "").replace("_", "").isalnum():
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    def supervise(self, child: Child, items: list[list[Any]]) -> tuple[list[list[Any]], bool, bool]:
        """Wait for the child without waking per call: it writes results and its progress (call index,
        start time) to shared memory; we wake for LLM requests, its idle signal, its exit, or the current
        call's deadline. Returns the results of the calls that ended, whether the next call must run
        alone, and whether the child is alive and idle (ready for another piece)."""
        pid, shm, end = child.pid, child.shm, len(items)
        reader = P.FrameReader()
        fd = child.sock.fileno()
        wall_ns = int(float(self.lim["wall_timeout_s"]) * 1e9)
        credit_k, credit = 0, 0  # LLM waiting time granted to call credit_k
        # the child can write the shared progress (it is hostile code's memory too): cap the whole piece
        group_end = time.monotonic_ns() + wall_ns * end
        llm_total = 0

        def collect(why: str | None) -> list[list[Any]]:
            out = _read_slots(shm, items, 0, end)
            if why is not None and len(out) < end:
                out.append([items[len(out)][0], None, why])
            return out

        try:
            while True:
                k, t0, _, _ = _HEADER.unpack_from(shm, 0)
                if k != credit_k:
                    credit_k, credit = k, 0
                now = time.monotonic_ns()
                left = (min(t0, now) + wall_ns + credit - now) / 1e9
                group_left = (group_end + llm_total - now) / 1e9
                ready = select.select([fd], [], [], min(left, group_left))[0] if min(left, group_left) > 0 else []
                if not ready:
                    k2, t2, _, _ = _HEADER.unpack_from(shm, 0)
                    if (k2, t2) != (k, t0) and time.monotonic_ns() < group_end + llm_total:
                        continue  # the child moved on to the next call meanwhile
                    self.kill_child(pid)
                    return collect(f"{P.ERR_TIMEOUT}: after {wall_ns / 1e9:g}s wall clock"), False, False
                try:
                    data = os.read(fd, 1 << 20)
                except OSError:
                    data = b""
                if not data:  # the child exited (normally after its last result, or not)
                    status = self.reap(pid)
                    state = _HEADER.unpack_from(shm, 0)[2]
                    if state == _RETIRE and os.WIFEXITED(status) and os.WEXITSTATUS(status) == guard.RETIRE_EXIT:
                        return collect(None), True, False
                    out = collect(None)
                    if state == _DONE and out:
                        return out, False, False
                    return collect(describe_exit(status, self.lim)), False, False
                reader.feed(data)
                for fr in reader.frames():
                    if not isinstance(fr, dict):
                        continue
                    if fr.get("t") == "idle" and fr.get("s") == child.secret:
                        k2, _, state, _ = _HEADER.unpack_from(shm, 0)
                        out = collect(None)
                        if state == _DONE and k2 == end and len(out) == end:
                            return out, False, True
                    elif fr.get("t") == "llm":
                        w0 = time.monotonic_ns()
                        k_now = _HEADER.unpack_from(shm, 0)[0]
                        reply = self.ask_parent(fr, items[k_now][0] if 0 <= k_now < end else None)
                        with contextlib.suppress(OSError):
                            P.write_all(fd, P.encode(reply))
                        credit += time.monotonic_ns() - w0
                        llm_total += time.monotonic_ns() - w0
        except ValueError as e:
            self.kill_child(pid)
            return collect(f"{P.ERR_SANDBOX}: bad message from the call's process ({e})"), False, False

    def ask_parent(self, fr: dict[str, Any], idx: Any) -> dict[str, Any]:
        """Forward the running call's LLM request (tagged with the call's index) and relay the answer."""
        name = fr.get("f")
        args = fr.get("a")
        nonce = fr.get("n")
        if name not in P.LLM_FUNCTIONS or not isinstance(args, list):
            return {"ok": False, "e": "malformed LLM request", "n": nonce}
        P.write_all(self.out, P.encode({"type": "llm", "f": name, "a": args, "i": idx}))
        while True:
            msg = self.reader.read_frame(self.inp)
            if msg.get("type") == "llm_reply":
                return {"ok": bool(msg.get("ok")), "v": msg.get("v"), "e": msg.get("e"), "n": nonce,
                        "defer": bool(msg.get("defer")), "needs": bool(msg.get("needs"))}

    def kill_child(self, pid: int) -> None:
        for target in ((-1,) if self.pidns else ()) + (-pid, pid):
            with contextlib.suppress(OSError):
                os.kill(target, signal.SIGKILL)

    def reap(self, pid: int) -> int:
        """Wait for the call's process; make sure nothing it started survives. Returns its wait status."""
        status = 0
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(pid, 0)
        # anything left (forked children of the code) dies now
        self.kill_child(pid)
        while True:
            try:
                p, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if p == 0:
                time.sleep(0.001)
        return status


#: modules the zygote may import itself when a child needed them (their import runs trusted library code)
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


def _write_slot(shm: mmap.mmap, j: int, passed: bool | None, err: str | None) -> None:
    off = _SHM_HEAD + j * _SLOT
    if err is None and isinstance(passed, bool):
        shm[off] = 1 if passed else 2
        return
    data = (err or f"{P.ERR_SANDBOX}: malformed result").encode("utf-8", "replace")[: _SLOT - 3]
    shm[off + 1:off + 3] = len(data).to_bytes(2, "little")
    shm[off + 3:off + 3 + len(data)] = data
    shm[off] = 3


def _read_slots(shm: mmap.mmap, items: list[list[Any]], start: int, end: int) -> list[list[Any]]:
    out: list[list[Any]] = []
    for k in range(start, end):
        off = _SHM_HEAD + (k - start) * _SLOT
        kind = shm[off]
        if kind == 0:
            break
        if kind in (1, 2):
            out.append([items[k][0], kind == 1, None])
        else:
            n = int.from_bytes(shm[off + 1:off + 3], "little")
            out.append([items[k][0], None, _short(bytes(shm[off + 3:off + 3 + n]).decode("utf-8", "ignore"))])
    return out


def child_main(fd: int, shm: mmap.mmap, items: list[list[Any]], solo: bool, persist: bool, secret: str,
               clean_builtins: dict, lim: dict, watch: guard.Watch, rundir: str) -> int:
    """Runs in the locked-down child: each call executes its source in fresh globals; after each call
    the guard checks shared state. Results and progress go to shared memory only (no fd the code could
    write forged results to). A persistent child then signals that it is idle and waits for its next
    piece of work, until a call ends it or its lifetime budget (calls, CPU, memory growth) is spent."""
    llm_stub.STATE.fd = fd
    st = llm_stub.STATE
    llm_reader = st.reader
    cpu = int(lim["cpu_seconds"] + 0.999)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    check = guard.Guard(watch, rundir)
    imported: list[str] = []
    last = [solo]
    final = [not persist]  # True once nothing may run in this process after the current piece
    codes: dict[str, Any] = {it[4]: it[1] for it in items}
    reader = P.FrameReader()  # ours, reachable by dataset code only through frames or gc (audited)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    served = 0

    def note_imports() -> int:
        data = ",".join(imported).encode("ascii", "ignore")[:_LEARN_BYTES]
        shm[_HEADER.size:_HEADER.size + len(data)] = data
        return len(data)

    def on_event(event: str, args: tuple) -> None:
        if event == "import":
            if len(imported) < 64 and isinstance(args[0], str):
                imported.append(args[0])
            return
        if last[0]:  # alone in this process's shared memory: let the primitive run, serve nothing afterwards
            final[0] = True
            return
        k = _HEADER.unpack_from(shm, 0)[0]  # more calls follow in this process: stop before the primitive
        _HEADER.pack_into(shm, 0, k, 0, _RETIRE, note_imports())
        os._exit(guard.RETIRE_EXIT)

    guard.install_audit_hook(on_event)
    pack_into, now = _HEADER.pack_into, time.monotonic_ns
    while True:
        end = len(items)
        for k in range(end):
            _, code, prompt, response, _h = items[k]
            last[0] = solo or end == 1  # only a call alone in its shared memory may use a primitive
            ru = resource.getrusage(resource.RUSAGE_SELF)
            resource.setrlimit(resource.RLIMIT_CPU, (min(int(ru.ru_utime + ru.ru_stime) + cpu + 1, hard), hard))
            imported.clear()
            pack_into(shm, 0, k, now(), 0, 0)
            if code is None:
                passed, err = None, f"{P.ERR_SANDBOX}: code object not sent"
            else:
                passed, err = run_one(code, prompt, response, clean_builtins)
            try:
                tampered = check.check()
            except BaseException as e:  # noqa: BLE001 - e.g. a patched builtin our checks rely on
                tampered = f"broke the sandbox's checks ({type(e).__name__})"
            if tampered is not None:
                check.restore_builtins()
            if tampered is None and (st.fd != fd or st.reader is not llm_reader):
                tampered = "changed the LLM relay state"
            if tampered is not None:
                passed, err = None, f"{P.ERR_TAMPERED}: {tampered}"
            try:
                _write_slot(shm, k, passed, err)
            except Exception as e:  # noqa: BLE001
                _write_slot(shm, k, None, f"{P.ERR_SANDBOX}: {type(e).__name__}")
            if tampered is not None or check.new_modules:
                # the rest runs in a fresh process; modules it imported may be preloaded there
                last[0] = True
                pack_into(shm, 0, k + 1, now(), _DONE, note_imports() if check.new_modules else 0)
                return 0
        served += end
        last[0] = False  # from here on, a primitive (say, a late finalizer) retires this child at once
        ru = resource.getrusage(resource.RUSAGE_SELF)
        if (final[0] or served >= MAX_CALLS_PER_CHILD or hard - (ru.ru_utime + ru.ru_stime) < 2 * cpu + 2
                or ru.ru_maxrss - rss0 > (int(lim["memory_mb"]) << 10) // 4):
            pack_into(shm, 0, end, now(), _DONE, 0)
            return 0
        # persistent: state carries over to the next piece exactly as between two calls of this one, and
        # the same per-call checks guard it
        pack_into(shm, 0, end, now(), _DONE, 0)
        try:
            P.write_all(fd, P.encode({"t": "idle", "s": secret}))
            while True:
                fr = reader.read_frame(fd)
                if isinstance(fr, dict) and fr.get("t") == "run" and fr.get("s") == secret:
                    break
            for h, b64 in fr["codes"].items():
                codes[h] = marshal.loads(binascii.a2b_base64(b64))
            items = [[idx, codes.get(h), prompt, response, h] for idx, h, prompt, response in fr["items"]]
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            return 0


def run_one(code: Any, prompt: str, response: str, clean_builtins: dict) -> tuple[bool | None, str | None]:
    st = llm_stub.STATE
    st.reset()
    g: dict[str, Any] = {"__name__": "__dataset_check__", "__builtins__": dict(clean_builtins)}
    try:
        exec(code, g)  # noqa: S102 - this is the sandboxed process
        fn = g.get("check_following")
        if not callable(fn):
            return None, f"{P.ERR_NO_FUNC}: the source defines no callable check_following"
        out = fn(prompt, response)
    except BaseException as e:  # noqa: BLE001
        return None, _llm_error(st) or _exc_error(e)
    llm = _llm_error(st)
    if llm:
        return None, llm
    try:
        return _to_bool(out)
    except BaseException as e:  # noqa: BLE001
        return None, f"{P.ERR_BAD_RETURN}: {type(e).__name__} while reading the result"


def _llm_error(st: Any) -> str | None:
    if st.deferred:  # whatever the code made of it: this run's result waits for the batched answer
        return P.DEFERRED
    if st.needed:
        return f"{P.ERR_NEEDS_LLM}: {st.needed} and no LLM callback is configured"
    if st.failed:
        return f"{P.ERR_LLM}: {st.failed}"
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
        return None, f"{P.ERR_BAD_RETURN}: returned int {out if abs(out) < 10**12 else '(large)'}, expected bool"
    detail = ""
    if t is str:
        detail = f" of length {len(out)}" if len(out) > 40 else f" {out!r}"
    elif out is None:
        detail = ""
    return None, f"{P.ERR_BAD_RETURN}: returned {t.__name__}{detail}, expected bool"


def _exc_error(e: BaseException) -> str:
    name = type(e).__name__
    try:
        msg = str(e)[:200]
    except BaseException:  # noqa: BLE001
        msg = "<unprintable>"
    if isinstance(e, ImportError):
        return f"{P.ERR_IMPORT}: {msg}"
    if isinstance(e, MemoryError):
        return f"{P.ERR_MEMORY}: MemoryError (limit reached)"
    if isinstance(e, SystemExit):
        return f"{P.ERR_EXITED}: sys.exit({msg})"
    return f"{P.ERR_RAISED} {name}: {msg}" if msg else f"{P.ERR_RAISED} {name}"


def describe_exit(status: int, lim: dict) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return f"{P.ERR_TIMEOUT}: used more than {lim['cpu_seconds']:g}s CPU time"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "?"
        return f"{P.ERR_CRASH}: killed by signal {sig} ({name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"{P.ERR_EXITED}: process exited with code {code} before returning"


def _as_bool_or_none(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _short(e: Any) -> str | None:
    if e is None:
        return None
    return str(e)[:400]


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


def main() -> None:
    inp = sys.stdin.fileno()
    cfg = P.FrameReader().read_frame(inp)
    iso: dict[str, Any] = {"namespaces": [], "mechanisms_note": ""}
    root = os.geteuid() == 0
    flags_ok: list[str] = []
    if not root:
        try:
            isolation.unshare(isolation.CLONE_NEWUSER)
            flags_ok.append("user")
        except OSError as e:
            iso["namespaces_error"] = str(e)
    if root or flags_ok:
        for name, flag in isolation.NAMESPACES.items():
            try:
                isolation.unshare(flag)
                flags_ok.append(name)
            except OSError as e:
                iso.setdefault("namespaces_error", f"{name}: {e}")
    iso["namespaces"] = flags_ok
    del iso["mechanisms_note"]
    if "pid" in flags_ok:
        pid = os.fork()
        if pid:  # launcher: just wait; the parent kills our process group to stop everything
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _, status = os.waitpid(pid, 0)
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    z = Zygote(cfg, iso)
    z.setup()
    z.serve()
    os._exit(0)


if __name__ == "__main__":
    main()
