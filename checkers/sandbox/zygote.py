"""The zygote: a clean, preloaded interpreter whose only job is to fork one child per row (stdlib only).

Isolation by construction: the zygote is forked from the worker's scheduler *before* any work arrives, so
its memory holds the preloaded modules, the lock-down material (Landlock ruleset, seccomp program) and
nothing else: no other row's code, prompt or responses, no result of another row, no secret, no shared
memory, no scheduling state. For each row it receives exactly that row's calls (their marshalled code
objects, prompt, responses and a fresh socket as SCM_RIGHTS) and forks; the child locks itself down and
runs the calls; the zygote forgets the request, reports the child's pid, and reports its wait status (or
that it stopped) when it ends. Whatever dataset code does in its process (frames, ``gc``, signal
handlers, patched modules, the LLM stub's state) reaches its own row's copy of the world and dies with it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import resource
import select
import signal
import socket
import struct
from typing import Any

if __package__:
    from . import callstate, isolation, protocol, runner
else:  # loaded flat by BOOT, without importing the checkers package
    import callstate  # type: ignore[no-redef]
    import isolation  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]
    import runner  # type: ignore[no-redef]

class LockDown:
    """What a child needs to restrict itself, prepared once by the scheduler before the zygote forks."""

    def __init__(self, lim: dict[str, Any], mode: str, ruleset: int, seccomp: Any, base_as: int, rundir: str,
                 private_fs: bool = False) -> None:
        self.private_fs = private_fs
        self.lim = lim
        self.mode = mode
        self.ruleset = ruleset
        self.seccomp = seccomp
        self.base_as = base_as
        self.rundir = rundir

    def apply(self, keep: int, n_calls: int) -> None:
        """Run in the forked child, before any dataset code: restrict this process for good. RLIMIT_CPU's
        hard limit covers all ``n_calls`` calls of the row; the runner moves the soft limit (the ``timeout``
        verdict) to each call's own allowance."""
        os.setpgid(0, 0)
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.chdir(self.rundir)
        lim = self.lim
        used = resource.getrusage(resource.RUSAGE_SELF)
        per_call = int(lim["cpu_seconds"] + 0.999) + 1
        cpu = int(used.ru_utime + used.ru_stime) + per_call
        isolation.set_rlimits({
            "RLIMIT_AS": self.base_as + (int(lim["memory_mb"]) << 20),
            "RLIMIT_FSIZE": int(lim["file_size_mb"]) << 20,
            "RLIMIT_NOFILE": int(lim["open_files"]),
            "RLIMIT_NPROC": int(lim["max_processes"]),
            "RLIMIT_CORE": 0,
        })
        # soft below hard: the soft limit's SIGXCPU is the "timeout" verdict; with soft == hard the kernel
        # may send its hard-limit SIGKILL on the same tick instead ("worker crashed" under load)
        # the hard limit lets each call of the row run twice in this process (a first run, and one re-run once
        # the LLM answers it waited for are in); a row that needs more gets a fresh process for the rest
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + per_call * (2 * max(1, n_calls) - 1) + 1))
        if self.mode == "nobody":
            isolation.become_nobody()
        elif self.mode == "caps":
            isolation.clear_capabilities()
        # no_new_privs was set once in the zygote (``serve``): it is inherited by fork and can't be unset
        if self.ruleset >= 0:
            isolation.landlock_restrict(self.ruleset)
        if self.seccomp is not None:
            self.seccomp.load()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def serve(sock: socket.socket, lock: LockDown, clean_builtins: dict) -> None:
    """The zygote's loop (never returns): for each request one fork and a pid record; for each child that
    ends, a wait-status record. Several children may be alive at once (a row's process that waits for LLM
    answers is kept, stopped, while others run), so the zygote never blocks in ``waitpid``: SIGCHLD wakes
    its ``select`` through a pipe.

    Every page the zygote writes while a child lives is copied (copy-on-write) for it, so it does the least
    it can: close the call's socket, write fixed-size records (no JSON), wait. It never decodes the calls
    either: the child does, in its own process."""
    fd = sock.fileno()
    # once for every child (fork inherits it and nothing can unset it): its seccomp filter and Landlock
    # domain need it, and it makes no call's process able to gain privileges through exec
    isolation.no_new_privs()
    # The zygote makes no garbage cycles worth collecting; with its collector off and everything it holds
    # frozen before each fork (modules a call taught it included), a child's collections neither scan
    # nor write to (copy-on-write) the zygote's objects: they see only what the call itself allocated.
    gc.disable()
    gc.collect()
    # what every process finds: its calls are put back to it (``private_fs``: the private directory is a tmpfs
    # of the worker's own, whose free-inode count tells cheaply whether a call left anything in it)
    state = callstate.CallState(lock.rundir, private_fs=lock.private_fs)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _on_child)
    while True:
        ready = select.select([fd, wake_r], [], [])[0]
        if wake_r in ready:
            with contextlib.suppress(OSError):
                os.read(wake_r, 4096)
        _reap(fd)
        if fd not in ready:
            continue
        got = _receive(sock)
        if got is None:
            os._exit(0)
        learn, body, call_fd, n_calls = got
        if learn:
            for name in learn.decode("utf-8", "surrogatepass").split(","):  # names the scheduler checked against its allow-list
                with contextlib.suppress(Exception):
                    importlib.import_module(name)
            gc.collect()
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the call's process: never returns
            status = 70
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                gc.enable()  # the call's own garbage is collected as in any Python process
                os.close(fd)  # the zygote's socket (not sock.close(): no Python-level method to run)
                try:
                    lock.apply(call_fd, n_calls)
                except BaseException as e:  # noqa: BLE001 - refuse to run unconfined
                    runner.send_result(call_fd, None, f"{protocol.ERR_SANDBOX}: lock-down failed: {type(e).__name__}: {e}")
                    os._exit(0)
                status = runner.run_unit(call_fd, body, clean_builtins, state)
            finally:
                os._exit(status)
        os.close(call_fd)
        _record(fd, PID, pid, 0)
        got = learn = body = None  # type: ignore[assignment]


def _on_child(_signum: int, _frame: Any) -> None:
    """SIGCHLD: nothing to do here; the wake-up pipe has woken the loop, which reaps."""


def _reap(fd: int) -> None:
    """Report every child that has ended (pid, wait status) or stopped (the scheduler keeps a row's
    process stopped and waits for this record: a stop takes effect asynchronously)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.WIFSTOPPED(status):
            _record(fd, STOPPED, pid, 0)
        else:
            _record(fd, STATUS, pid, status)


#: zygote -> scheduler records: (kind, pid, value), kind PID (value 0), STATUS (value: the wait status) or
#: STOPPED (value 0)
RECORD = struct.Struct(">Bqq")
PID, STATUS, STOPPED = 1, 2, 3
#: scheduler -> zygote request header: (bytes of the names to preload, bytes of the calls' JSON, calls)
_HEAD = struct.Struct(">III")


def _record(fd: int, kind: int, pid: int, value: int) -> None:
    rec = RECORD.pack(kind, pid, value)
    n = os.write(fd, rec)
    if n < len(rec):
        protocol.write_all(fd, rec[n:])


def _receive(sock: socket.socket) -> tuple[bytes, bytes, int, int] | None:
    """One request: the header carrying the call's socket as SCM_RIGHTS, then the names to preload
    (comma-separated) and the call's JSON, left undecoded: only the call's process decodes it."""
    try:
        head, fds, _, _ = socket.recv_fds(sock, _HEAD.size, 1)
    except OSError:
        return None
    if len(head) < _HEAD.size or not fds:
        return None
    n_learn, n_body, n_calls = _HEAD.unpack(head)
    n = n_learn + n_body
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return bytes(data[:n_learn]), bytes(data[n_learn:]), fds[0], n_calls


def send(sock: socket.socket, req: dict[str, Any], learn: list[str], call_fd: int) -> None:
    """Scheduler side of ``_receive``; ``req["k"]``: the calls of one row, run in one process. ValueError
    when the calls are too large for a frame."""
    body = protocol.encode(req)[4:]
    names = ",".join(learn).encode("utf-8", "surrogatepass")  # never fails: a bad name fails its import
    socket.send_fds(sock, [_HEAD.pack(len(names), len(body), len(req["k"]))], [call_fd])
    sock.sendall(names + body)


def start(lock: LockDown) -> tuple[int, socket.socket]:
    """Fork the zygote from the scheduler (before any work arrived); returns (pid, the scheduler's socket)."""
    import builtins

    clean = dict(builtins.__dict__)
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1):  # the parent's pipes belong to the scheduler alone
                os.dup2(devnull, fd)
            os.close(devnull)
            serve(theirs, lock, clean)
        finally:
            os._exit(0)
    theirs.close()
    return pid, ours
