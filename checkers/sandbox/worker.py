"""Sandbox worker: a clean zygote that forks one restricted process per group of calls (stdlib only).

Started by the parent as ``python -s -P -c BOOT``; talks frames (see protocol) on stdin/stdout.
The zygote itself never runs dataset code: it compiles sources (cached by hash), forks, and the
forked child locks itself down (rlimits, privileges, Landlock, seccomp) before exec'ing any of it.
With a PID namespace the zygote is PID 1, so killing it kills every process the code started.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import gc
import importlib
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
    from . import isolation, llm_stub, protocol
else:  # loaded flat by BOOT, without importing the checkers package
    import isolation  # type: ignore[no-redef]
    import llm_stub  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]

P = protocol
CODE_CACHE_SIZE = 4096
#: shared with the running child: (index of the call in progress, its start time in monotonic ns)
_PROGRESS = struct.Struct("=QQ")


class Zygote:
    def __init__(self, cfg: dict[str, Any], iso: dict[str, Any]) -> None:
        self.cfg = cfg
        self.iso = iso
        self.lim = cfg["limits"]
        self.workdir = cfg["workdir"]
        self.out = sys.stdout.fileno()
        self.inp = sys.stdin.fileno()
        self.reader = P.FrameReader()
        self.codes: OrderedDict[str, Any] = OrderedDict()
        self.pidns = "pid" in iso["namespaces"]
        self.seccomp: isolation.SeccompFilter | None = None
        self.ruleset = -1
        self.mode = "none"
        self.counter = 0
        self.builtins = dict(builtins.__dict__)
        self.progress = mmap.mmap(-1, _PROGRESS.size)  # anonymous + shared: survives fork

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
        llm_stub.STATE.enabled = bool(self.cfg["has_llm"])
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
        except OSError as e:
            iso["seccomp"] = None
            iso["seccomp_error"] = str(e)
        iso["rlimits"] = True
        iso["env_scrubbed"] = True
        iso["zygote_pid1"] = self.pidns and os.getpid() == 1
        # prove it: one probe child with the full lock-down, checking what hostile code would try
        iso["probe"] = self.probe()
        gc.collect()
        gc.freeze()  # forked children neither scan nor dirty the zygote's objects when they collect

    def lock_down(self, keep: tuple[int, int], subdir: str, n_calls: int) -> None:
        """Run in the forked child, before any dataset code: restrict this process for good."""
        os.setpgid(0, 0)
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.chdir(subdir)
        for key in list(os.environ):
            if key not in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONHASHSEED"):
                del os.environ[key]
        os.environ.update(TMPDIR=subdir, HOME=subdir)
        tempfile.tempdir = subdir
        lim = self.lim
        cpu_hard = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime) + int(lim["cpu_seconds"] + 0.999) * n_calls + 2
        isolation.set_rlimits({
            "RLIMIT_AS": int(lim["memory_mb"]) << 20,
            "RLIMIT_FSIZE": int(lim["file_size_mb"]) << 20,
            "RLIMIT_NOFILE": int(lim["open_files"]),
            "RLIMIT_NPROC": int(lim["max_processes"]),
            "RLIMIT_CORE": 0,
        })
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
        if self.mode == "nobody":
            isolation.become_nobody()
        elif self.mode == "caps":
            isolation.drop_capabilities()
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
        src = PROBE_SOURCE
        code = compile(src, "<probe>", "exec")
        res = self.run_group(code, [["probe", "", ""]])
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
        sources = msg.get("sources", {})
        groups: dict[str, list[list[Any]]] = {}
        for item in msg["calls"]:  # [idx, hash, prompt, response]
            groups.setdefault(item[1], []).append([item[0], item[2], item[3]])
        for h, items in groups.items():
            code, err = self.code_for(h, sources.get(h))
            if err is None and isinstance(code, str):
                err = code
            res = [[it[0], None, err] for it in items] if err is not None else self.run_group(code, items)
            P.write_all(self.out, P.encode({"type": "res", "items": res}))
        P.write_all(self.out, P.encode({"type": "done"}))

    def run_group(self, code: Any, items: list[list[Any]]) -> list[list[Any]]:
        """Run one source on many (prompt, response) pairs; re-fork after a call that kills its process."""
        results: list[list[Any]] = []
        start = 0
        while start < len(items):
            results.extend(self.fork_and_run(code, items, start))
            start = len(results)
        return results

    def fork_and_run(self, code: Any, items: list[list[Any]], start: int) -> list[list[Any]]:
        self.counter += 1
        subdir = os.path.join(self.workdir, f"c{self.counter}")
        os.mkdir(subdir, 0o700)
        if self.mode == "nobody":
            os.chown(subdir, isolation.NOBODY_UID, isolation.NOBODY_GID)
        parent_sock, child_sock = socket.socketpair()
        res_r, res_w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(res_w, 1031, 1 << 20)  # F_SETPIPE_SZ: a chunk's results fit without blocking
        _PROGRESS.pack_into(self.progress, 0, start, time.monotonic_ns())
        pid = os.fork()
        if pid == 0:  # child: never returns
            status = 70
            try:
                parent_sock.close()
                os.close(res_r)
                fd = child_sock.detach()
                try:
                    self.lock_down((fd, res_w), subdir, len(items) - start)
                except BaseException as e:  # noqa: BLE001 - refuse to run unconfined
                    err = f"{P.ERR_SANDBOX}: lock-down failed: {type(e).__name__}: {e}"
                    for _ in items[start:]:
                        P.write_all(res_w, P.encode({"t": "r", "p": None, "e": err}))
                    os._exit(0)
                status = child_main(fd, res_w, self.progress, code, items, start, self.builtins, self.lim)
            finally:
                os._exit(status)
        child_sock.close()
        os.close(res_w)
        out: list[list[Any]] = []
        try:
            out = self.supervise(pid, parent_sock, res_r, items, start)
        finally:
            parent_sock.close()
            os.close(res_r)
            self.reap(pid)
            _rmtree(subdir)
        return out

    def supervise(self, pid: int, sock: socket.socket, res_fd: int, items: list[list[Any]],
                  start: int) -> list[list[Any]]:
        """Wait for the child without waking per call: it reports results on a pipe and its progress
        (calls done, start time of the current call) in shared memory; we wake for LLM requests, exit,
        or the current call's deadline."""
        out: list[list[Any]] = []
        results = P.FrameReader()
        reader = P.FrameReader()
        fd = sock.fileno()
        wall_ns = int(float(self.lim["wall_timeout_s"]) * 1e9)
        credit_k, credit = start, 0  # LLM waiting time granted to call credit_k
        # the child can write the shared progress (it is hostile code's memory too): cap the whole group
        group_end = time.monotonic_ns() + wall_ns * (len(items) - start)
        llm_total = 0

        def drain() -> None:
            while True:
                r = select.select([res_fd], [], [], 0)[0]
                data = os.read(res_fd, 1 << 20) if r else b""
                if not data:
                    break
                results.feed(data)
            for fr in results.frames():
                if isinstance(fr, dict) and fr.get("t") == "r" and start + len(out) < len(items):
                    out.append([items[start + len(out)][0], _as_bool_or_none(fr.get("p")), _short(fr.get("e"))])

        try:
            while True:
                k, t0 = _PROGRESS.unpack_from(self.progress, 0)
                if k != credit_k:
                    credit_k, credit = k, 0
                now = time.monotonic_ns()
                left = (min(t0, now) + wall_ns + credit - now) / 1e9
                group_left = (group_end + llm_total - now) / 1e9
                ready = select.select([fd], [], [], min(left, group_left))[0] if min(left, group_left) > 0 else []
                if not ready:
                    k2, t2 = _PROGRESS.unpack_from(self.progress, 0)
                    if (k2, t2) != (k, t0) and time.monotonic_ns() < group_end + llm_total:
                        continue  # the child moved on to the next call meanwhile
                    self.kill_child(pid)
                    drain()
                    if start + len(out) < len(items):
                        wall = wall_ns / 1e9
                        out.append([items[start + len(out)][0], None, f"{P.ERR_TIMEOUT}: after {wall:g}s wall clock"])
                    return out
                try:
                    data = os.read(fd, 1 << 20)
                except OSError:
                    data = b""
                if not data:  # the child exited (normally after its last result, or not)
                    status = self.reap(pid)
                    drain()
                    if start + len(out) < len(items):
                        out.append([items[start + len(out)][0], None, describe_exit(status, self.lim)])
                    return out
                reader.feed(data)
                for fr in reader.frames():
                    if isinstance(fr, dict) and fr.get("t") == "llm":
                        w0 = time.monotonic_ns()
                        reply = self.ask_parent(fr)
                        with contextlib.suppress(OSError):
                            P.write_all(fd, P.encode(reply))
                        credit += time.monotonic_ns() - w0
                        llm_total += time.monotonic_ns() - w0
        except ValueError as e:
            self.kill_child(pid)
            with contextlib.suppress(ValueError):
                drain()
            if start + len(out) < len(items):
                out.append([items[start + len(out)][0], None, f"{P.ERR_SANDBOX}: bad message from the call's process ({e})"])
            return out

    def ask_parent(self, fr: dict[str, Any]) -> dict[str, Any]:
        name = fr.get("f")
        args = fr.get("a")
        if name not in P.LLM_FUNCTIONS or not isinstance(args, list):
            return {"ok": False, "e": "malformed LLM request"}
        P.write_all(self.out, P.encode({"type": "llm", "f": name, "a": args}))
        while True:
            msg = self.reader.read_frame(self.inp)
            if msg.get("type") == "llm_reply":
                return {"ok": bool(msg.get("ok")), "v": msg.get("v"), "e": msg.get("e")}

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


def child_main(fd: int, res_fd: int, progress: Any, code: Any, items: list[list[Any]], start: int,
               clean_builtins: dict, lim: dict) -> int:
    """Runs in the locked-down child: execute the source once per call in fresh globals."""
    llm_stub.STATE.fd = fd
    cpu = int(lim["cpu_seconds"] + 0.999)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    encode, write_all, pack_into, now = P.encode, P.write_all, _PROGRESS.pack_into, time.monotonic_ns
    for k in range(start, len(items)):
        _, prompt, response = items[k]
        ru = resource.getrusage(resource.RUSAGE_SELF)
        resource.setrlimit(resource.RLIMIT_CPU, (min(int(ru.ru_utime + ru.ru_stime) + cpu + 1, hard), hard))
        pack_into(progress, 0, k, now())
        passed, err = run_one(code, prompt, response, clean_builtins)
        try:
            msg = encode({"t": "r", "p": passed, "e": err})
        except Exception as e:  # noqa: BLE001
            msg = encode({"t": "r", "p": None, "e": f"{P.ERR_SANDBOX}: {type(e).__name__}"})
        write_all(res_fd, msg)
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
            return f"{P.ERR_CPU}: used more than {lim['cpu_seconds']:g}s CPU"
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


def _rmtree(path: str) -> None:
    for root, dirs, files in os.walk(path, topdown=False):
        for f in files:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, f))
        for d in dirs:
            p = os.path.join(root, d)
            try:
                if os.path.islink(p):
                    os.unlink(p)
                else:
                    os.rmdir(p)
            except OSError:
                pass
    with contextlib.suppress(OSError):
        os.rmdir(path)


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
