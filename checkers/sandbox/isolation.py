"""Linux isolation primitives used inside the sandbox worker (stdlib + ctypes only).

Each function either applies one mechanism or raises OSError; the worker records which ones worked,
so a missing kernel feature degrades to the documented fallback instead of failing the batch.
"""

from __future__ import annotations

import ctypes
import os
import resource
import stat
from collections.abc import Iterable

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACES = {"net": CLONE_NEWNET, "pid": CLONE_NEWPID, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS, "mount": CLONE_NEWNS}

MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
NOBODY_UID = NOBODY_GID = 65534

_libc = ctypes.CDLL(None, use_errno=True)
# resolved now, in the scheduler before it forks the zygote: a first lookup in a call's process would run
# ctypes' Python-level __getattr__ and write to the zygote's pages (copy-on-write faults) on every call
for _name in ("prctl", "capset", "syscall"):
    getattr(_libc, _name)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def make_mounts_private() -> None:
    _check(_libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None), "mount --make-rprivate /")


def mount_tmpfs(path: str, size_mb: int) -> None:
    opts = f"size={size_mb}m,mode=0755".encode()
    flags = ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, opts), f"mount tmpfs on {path}")


def mount_proc() -> None:
    """A procfs of this PID namespace on /proc (in this mount namespace only): the scheduler reads its row
    processes' memory there (the inherited /proc shows the host's PID namespace)."""
    flags = ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(_libc.mount(b"proc", b"/proc", b"proc", flags, None), "mount proc on /proc")


def set_rlimits(limits: dict[str, int]) -> None:
    """limits maps RLIMIT_* names to values; soft = hard = value."""
    for name, value in limits.items():
        res = getattr(resource, name)
        resource.setrlimit(res, (value, value))


def no_new_privs() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def drop_bounding_set() -> None:
    """Empty the capability bounding set (done once in the zygote: it only limits what execve can grant)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() == 22:  # EINVAL: past last
            break


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_HEADER = _CapHeader(0x20080522, 0)
_CAP_EMPTY = (_CapData * 2)()


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (uid stays); one capset call."""
    _check(_libc.capset(ctypes.byref(_CAP_HEADER), _CAP_EMPTY), "capset")


def drop_capabilities() -> None:
    """Empty the bounding, effective, permitted and inheritable capability sets (uid stays)."""
    drop_bounding_set()
    clear_capabilities()


def nobody_can_read(paths: Iterable[str]) -> bool:
    """True when uid nobody could traverse to and read every path (so dropping to nobody keeps imports)."""
    for p in paths:
        cur = os.path.realpath(p)
        while True:
            try:
                st = os.stat(cur)
            except OSError:
                break
            if not st.st_mode & stat.S_IXOTH or (cur == p and not st.st_mode & stat.S_IROTH):
                return False
            if cur == "/":
                break
            cur = os.path.dirname(cur)
    return True


def become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY_GID)
    os.setuid(NOBODY_UID)


# ---- Landlock -------------------------------------------------------------------------------
_SYS_LL_CREATE, _SYS_LL_ADD, _SYS_LL_RESTRICT = 444, 445, 446
_LL_FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2)  # EXECUTE, WRITE_FILE, READ_FILE
_LL_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when unavailable)."""
    ret = _libc.syscall(_SYS_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(ret), 0)


def landlock_ruleset(read_paths: Iterable[str], write_paths: Iterable[str]) -> tuple[int, int]:
    """Create a ruleset fd: read+execute under read_paths, everything under write_paths, nothing else;
    with ABI >= 4 every TCP bind/connect is denied, with ABI >= 6 signals and abstract unix sockets
    are scoped to the sandbox. Returns (fd, abi)."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError(38, "Landlock not supported by this kernel")
    fs = (1 << 13) - 1  # ABI 1 rights
    if abi >= 2:
        fs |= 1 << 13  # REFER
    if abi >= 3:
        fs |= 1 << 14  # TRUNCATE
    if abi >= 5:
        fs |= 1 << 15  # IOCTL_DEV
    net = 3 if abi >= 4 else 0
    scoped = 3 if abi >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    fd = _check(_libc.syscall(_SYS_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)),
                "landlock_create_ruleset")
    try:
        for paths, rights in ((read_paths, _LL_READ), (write_paths, fs)):
            for p in paths:
                try:
                    pfd = os.open(p, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights if os.path.isdir(p) else rights & (_LL_FILE_RIGHTS | (1 << 14))
                    rule = _PathBeneath(allowed & fs, pfd)
                    _check(_libc.syscall(_SYS_LL_ADD, fd, 1, ctypes.byref(rule), 0), f"landlock_add_rule {p}")
                finally:
                    os.close(pfd)
    except BaseException:
        os.close(fd)
        raise
    return fd, abi


def landlock_restrict(fd: int) -> None:
    _check(_libc.syscall(_SYS_LL_RESTRICT, fd, 0), "landlock_restrict_self")


# ---- seccomp (via libseccomp) ---------------------------------------------------------------
_SCMP_ACT_ALLOW = 0x7FFF0000
_EPERM, _ENOSYS = 1, 38
CLONE_THREAD = 0x00010000

#: syscalls denied with EPERM: process creation/exec, new sockets, debugging other processes,
#: namespace/mount changes and kernel-facing interfaces dataset code never needs
DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "socket", "socketpair", "ptrace", "process_vm_readv",
    "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf",
    "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "iopl", "ioperm",
    "open_by_handle_at", "name_to_handle_at", "pidfd_getfd", "kcmp", "fanotify_init", "mknod", "mknodat",
)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompFilter:
    """A libseccomp context built once (in the zygote) and loaded in each forked child."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError:
            # ctypes.util imports subprocess and with it threading, whose at-fork hook then runs in every
            # call's process (~120 copy-on-write page faults per call): only when the soname is not found
            from ctypes.util import find_library

            lib = ctypes.CDLL(find_library("seccomp") or "libseccomp.so.2", use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._fprog: _SockFprog | None = None
        ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
        if not ctx:
            raise OSError(12, "seccomp_init failed")
        self._ctx = ctx
        eperm = 0x00050000 | _EPERM
        for sc in DENIED_SYSCALLS:
            nr = lib.seccomp_syscall_resolve_name(sc.encode())
            if nr < 0:
                continue  # not on this architecture
            self._add(eperm, nr, None)
        # clone: threads (CLONE_THREAD set) allowed, new processes denied
        nr = lib.seccomp_syscall_resolve_name(b"clone")
        self._add(eperm, nr, _ArgCmp(0, 7, CLONE_THREAD, 0))  # SCMP_CMP_MASKED_EQ: (flags & THREAD) == 0
        # clone3 takes a struct the filter cannot inspect: ENOSYS makes libc fall back to clone
        nr = lib.seccomp_syscall_resolve_name(b"clone3")
        if nr >= 0:
            self._add(0x00050000 | _ENOSYS, nr, None)

    def _add(self, action: int, nr: int, cmp: _ArgCmp | None) -> None:
        if cmp is None:
            ret = self._lib.seccomp_rule_add_array(self._ctx, action, nr, 0, None)
        else:
            ret = self._lib.seccomp_rule_add_array(self._ctx, action, nr, 1, ctypes.pointer(cmp))
        if ret < 0:
            raise OSError(-ret, f"seccomp_rule_add({nr}): {os.strerror(-ret)}")

    def export(self) -> None:
        """Compile the filter to raw BPF once, so each child loads it with one prctl (no re-compiling)."""
        r, w = os.pipe()
        try:
            self._lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
            ret = self._lib.seccomp_export_bpf(self._ctx, w)
            os.close(w)
            w = -1
            if ret < 0:
                raise OSError(-ret, f"seccomp_export_bpf: {os.strerror(-ret)}")
            data = b""
            while chunk := os.read(r, 1 << 16):
                data += chunk
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if not data or len(data) % 8:
            raise OSError(22, "seccomp_export_bpf returned a malformed program")
        self._prog_buf = ctypes.create_string_buffer(data, len(data))
        self._fprog = _SockFprog(len(data) // 8, ctypes.cast(self._prog_buf, ctypes.c_void_p))

    def load(self) -> None:
        if self._fprog is not None:
            _check(_libc.prctl(_PR_SET_SECCOMP, ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(self._fprog),
                               ctypes.c_ulong(0), ctypes.c_ulong(0)),
                   "prctl(PR_SET_SECCOMP)")
            return
        ret = self._lib.seccomp_load(self._ctx)
        if ret < 0:
            raise OSError(-ret, f"seccomp_load: {os.strerror(-ret)}")
