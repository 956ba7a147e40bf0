"""The zygote: a clean interpreter that compiles sources, forks one restricted child per piece of work
(or keeps a persistent one), supervises it without waking per call, and relays its LLM requests to the
parent (stdlib only; numpy is used by the guard when preloaded).

The zygote itself never runs dataset code. With a PID namespace it is PID 1, so killing it kills every
process the code started.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import time
from typing import Any

if __package__:
    from . import channel, codeship, guard, isolation, llm_stub, protocol, runner
else:  # loaded flat by BOOT, without importing the checkers package
    import channel  # type: ignore[no-redef]
    import codeship  # type: ignore[no-redef]
    import guard  # type: ignore[no-redef]
    import isolation  # type: ignore[no-redef]
    import llm_stub  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]
    import runner  # type: ignore[no-redef]


class Zygote:
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
        self.pidns = "pid" in iso["namespaces"]
        self.seccomp: isolation.SeccompFilter | None = None
        self.ruleset = -1
        self.mode = "none"
        self.builtins = dict(builtins.__dict__)
        self.watch = guard.Watch()
        self.forks = 0
        self.base_as = 0
        self.child: channel.Child | None = None

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
        res = self.run_items([channel.Item("probe", code, "", "", "probe")], solo=True)
        err = res[0].error
        checks = "read /etc/passwd, write /tmp, fork, tcp connect blocked; own dir writable"
        return {"ok": False, "error": err} if err else {"ok": True, "checked": checks}

    # ---- chunk processing -------------------------------------------------------------------
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
        """Run a whole chunk (many sources) in as few forked children as possible."""
        sources = msg.get("sources", {})
        failed: list[Any] = []
        runnable: list[Any] = []
        for idx, h, prompt, response in msg["calls"]:
            code, err = self.codes.get(h, sources.get(h), self.lim["max_source_chars"])
            if err is not None:
                failed.append(protocol.Result(idx, None, err))
            else:
                runnable.append(channel.Item(idx, code, prompt, response, h))
        if failed:
            protocol.write_all(self.out, protocol.encode({"type": "res", "items": failed}))
        if runnable:
            self.run_items(runnable, report=True)
        protocol.write_all(self.out, protocol.encode({"type": "done"}))

    def run_items(self, items: list[Any], report: bool = False, solo: bool = False) -> list[Any]:
        """Run items in order on the persistent child (forking one when
        there is none); re-fork after a call that ends its process. A call that needs a primitive the
        guard cannot check is re-run alone in a one-shot child. ``solo``: every item in a one-shot child."""
        results: list[Any] = []
        force = solo
        while len(results) < len(items):
            out, force = self.run_piece(items, len(results), force)
            force = force or solo
            results.extend(out)
            if report and out:
                protocol.write_all(self.out, protocol.encode({"type": "res", "items": out}))
        return results

    def run_piece(self, items: list[Any], start: int, solo: bool) -> tuple[list[Any], bool]:
        piece = items[start:start + 1] if solo else items[start:start + channel.PIECE]
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

    def fork_child(self, piece: list[channel.Item], persist: bool) -> channel.Child:
        self.watch.refresh()
        shm = channel.new_shm()
        parent_sock, child_sock = socket.socketpair()
        secret = channel.new_secret()
        self.forks += 1
        pid = os.fork()
        if pid == 0:  # child: never returns
            status = 70
            try:
                parent_sock.close()
                fd = child_sock.detach()
                try:
                    self.lock_down((fd,), runner.MAX_CALLS_PER_CHILD if persist else len(piece))
                except BaseException as e:  # noqa: BLE001 - refuse to run unconfined
                    err = f"{protocol.ERR_SANDBOX}: lock-down failed: {type(e).__name__}: {e}"
                    for k in range(len(piece)):
                        channel.write_slot(shm, k, None, err)
                    channel.set_progress(shm, len(piece), 0, channel.DONE, 0)
                    os._exit(0)
                status = runner.child_main(fd, shm, piece, persist, secret, self.builtins, self.lim,
                                    self.watch, self.rundir)
            finally:
                os._exit(status)
        child_sock.close()
        child = channel.Child(pid, parent_sock, shm, secret)
        child.hashes.update(it.hash for it in piece)
        return child

    def send_piece(self, child: channel.Child, piece: list[Any]) -> bool:
        """Hand the idle child its next piece: code objects it lacks go along, marshalled."""
        shm = child.shm
        if channel.progress(shm)[2] != channel.DONE:  # not cleanly idle (e.g. it retired meanwhile)
            return False
        channel.clear_slots(shm, len(piece))
        channel.set_progress(shm, 0, time.monotonic_ns(), 0, 0)
        codes: dict[str, str] = {}
        for it in piece:
            if it.hash not in child.hashes and it.hash not in codes:
                codes[it.hash] = codeship.ship(it.code)
        frame = {"t": "run", "s": child.secret, "codes": codes,
                 "items": [[it.idx, it.hash, it.prompt, it.response] for it in piece]}
        try:
            protocol.write_all(child.sock.fileno(), protocol.encode(frame))
        except (OSError, ValueError):
            return False
        child.hashes.update(codes)
        return True

    def end_child(self, child: channel.Child) -> None:
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

    def learn(self, shm: Any) -> None:
        """Preload modules a child imported (from an allow-list), so later children start with them."""
        names = channel.read_learnt(shm)
        for name in names:
            top = name.partition(".")[0]
            if name in sys.modules or not _learnable(top) or not name.replace(".", "").replace("_", "").isalnum():
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    def supervise(self, child: channel.Child, items: list[Any]) -> tuple[list[Any], bool, bool]:
        """Wait for the child without waking per call: it writes results and its progress (call index,
        start time) to shared memory; we wake for LLM requests, its idle signal, its exit, or the current
        call's deadline. Returns the results of the calls that ended, whether the next call must run
        alone, and whether the child is alive and idle (ready for another piece)."""
        pid, shm, end = child.pid, child.shm, len(items)
        reader = protocol.FrameReader()
        fd = child.sock.fileno()
        wall_ns = int(float(self.lim["wall_timeout_s"]) * 1e9)
        credit_k, credit = 0, 0  # LLM waiting time granted to call credit_k
        # the child can write the shared progress (it is hostile code's memory too): cap the whole piece
        group_end = time.monotonic_ns() + wall_ns * end
        llm_total = 0

        def collect(why: str | None) -> list[Any]:
            out = channel.read_slots(shm, items, 0, end)
            if why is not None and len(out) < end:
                out.append(protocol.Result(items[len(out)].idx, None, why))
            return out

        try:
            while True:
                k, t0, _, _ = channel.progress(shm)
                if k != credit_k:
                    credit_k, credit = k, 0
                now = time.monotonic_ns()
                left = (min(t0, now) + wall_ns + credit - now) / 1e9
                group_left = (group_end + llm_total - now) / 1e9
                ready = select.select([fd], [], [], min(left, group_left))[0] if min(left, group_left) > 0 else []
                if not ready:
                    k2, t2, _, _ = channel.progress(shm)
                    if (k2, t2) != (k, t0) and time.monotonic_ns() < group_end + llm_total:
                        continue  # the child moved on to the next call meanwhile
                    self.kill_child(pid)
                    return collect(f"{protocol.ERR_TIMEOUT}: after {wall_ns / 1e9:g}s wall clock"), False, False
                try:
                    data = os.read(fd, 1 << 20)
                except OSError:
                    data = b""
                if not data:  # the child exited (normally after its last result, or not)
                    status = self.reap(pid)
                    state = channel.progress(shm)[2]
                    if state == channel.RETIRE and os.WIFEXITED(status) and os.WEXITSTATUS(status) == guard.RETIRE_EXIT:
                        return collect(None), True, False
                    out = collect(None)
                    if state == channel.DONE and out:
                        return out, False, False
                    return collect(runner.describe_exit(status, self.lim)), False, False
                reader.feed(data)
                for fr in reader.frames():
                    if not isinstance(fr, dict):
                        continue
                    if fr.get("t") == "idle" and fr.get("s") == child.secret:
                        k2, _, state, _ = channel.progress(shm)
                        out = collect(None)
                        if state == channel.DONE and k2 == end and len(out) == end:
                            return out, False, True
                    elif fr.get("t") == "llm":
                        w0 = time.monotonic_ns()
                        k_now = channel.progress(shm)[0]
                        reply = self.ask_parent(fr, items[k_now].idx if 0 <= k_now < end else None)
                        with contextlib.suppress(OSError):
                            protocol.write_all(fd, protocol.encode(reply))
                        credit += time.monotonic_ns() - w0
                        llm_total += time.monotonic_ns() - w0
        except ValueError as e:
            self.kill_child(pid)
            return collect(f"{protocol.ERR_SANDBOX}: bad message from the call's process ({e})"), False, False

    def ask_parent(self, fr: dict[str, Any], idx: Any) -> dict[str, Any]:
        """Forward the running call's LLM request (tagged with the call's index) and relay the answer."""
        name = fr.get("f")
        args = fr.get("a")
        nonce = fr.get("n")
        if name not in protocol.LLM_FUNCTIONS or not isinstance(args, list):
            return {"ok": False, "e": "malformed LLM request", "n": nonce}
        protocol.write_all(self.out, protocol.encode({"type": "llm", "f": name, "a": args, "i": idx}))
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

