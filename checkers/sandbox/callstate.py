"""Process-wide state a call may change, put back before the next call of the same row (stdlib only).

A row's calls run one after another in one process (``runner.run_unit``). For a call's verdict not to
depend on which calls ran before it in that process (and so on how a batch happened to be cut into
processes), each call starts from the state the first one found: an empty working directory (and private
directory), the same environment, ``sys.path``, recursion limit, umask, standard streams, decimal context,
warning filters, signal handlers and timers, locale, garbage-collector switch and numpy error settings, and
``random``/``numpy.random`` seeded from the call itself (also when the call is the one that first imports
numpy). What honest code changes beyond these (a stdlib module's attributes, a thread it left running) can
still reach the row's later calls; ``Sandbox(process_per="call")`` gives each call a process instead.
"""

from __future__ import annotations

import _signal  # the C module: getsignal without the enum conversion of ``signal`` (microseconds per call)
import contextlib
import decimal
import gc
import os
import signal
import sys
import warnings
from typing import Any

#: signals whose handlers calls may set (the others stay as the lock-down left them)
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGALRM", "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGPROF", "SIGTERM",
                                               "SIGHUP", "SIGINT", "SIGPIPE", "SIGCHLD", "SIGXCPU", "SIGSEGV")
                 if hasattr(signal, n))
_TIMERS = tuple(getattr(signal, n) for n in ("ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF") if hasattr(signal, n))


class CallState:
    """What the first call of a process finds, captured once in the zygote (every process forked from it
    starts from that state: capturing it in each process would cost every call's process the copy-on-write
    faults of touching those modules); :meth:`start` in the process, :meth:`restore` before each later call.

    ``home``: the working directory the lock-down gives each process (the zygote's own differs)."""

    def __init__(self, home: str, private_fs: bool = False) -> None:
        self.home = home
        self.workdir = os.path.dirname(self.home)
        self.private_fs = private_fs
        self._inodes: tuple[int, int] | None = None  # (free inodes, free blocks) of the emptied private tmpfs
        self.environ = dict(os.environ)
        self._env_data = dict(getattr(os.environ, "_data", {}))  # the encoded mapping: a cheap comparison
        self.path = list(sys.path)
        self.recursion = sys.getrecursionlimit()
        self.umask = os.umask(0o077)
        os.umask(self.umask)
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        self.decimal = decimal.getcontext().copy()
        self.filters = list(warnings.filters)
        self.showwarning = warnings.showwarning
        self.handlers = {int(s): _signal.getsignal(s) for s in _SIGNALS}
        # as the process finds them: the lock-down sets SIGINT to its default, and the zygote's SIGCHLD
        # handler is reset in the child
        for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGCHLD", None)):
            if s is not None:
                self.handlers[int(s)] = _signal.SIG_DFL
        self.gc_enabled = True  # the zygote runs with its collector off; each process turns it on
        self.locale: str | None = None
        self.np_err: dict[str, str] | None = None
        self.seed = 0
        self.cpu_hard: int | None = None  # RLIMIT_CPU's hard limit, read by the runner once per process
        self.snapshot_late()

    def start(self) -> None:
        """In the process, before its first call: seed numpy for the call that imports it."""
        if "numpy" not in sys.modules:
            sys.meta_path.insert(0, _SeedNumpyOnImport(self))

    def snapshot_late(self) -> None:
        """State of modules that may only be loaded later (locale, numpy): taken when first seen."""
        loc = sys.modules.get("locale")
        if self.locale is None and loc is not None:
            with contextlib.suppress(Exception):
                self.locale = loc.setlocale(loc.LC_ALL)
        np = sys.modules.get("numpy")
        if self.np_err is None and np is not None:
            with contextlib.suppress(Exception):
                self.np_err = dict(np.geterr())

    def seed_call(self, seed: int) -> None:
        """``random`` and, when loaded, ``numpy.random`` from the call's own seed; a call that imports numpy
        gets it seeded at that import."""
        import random

        self.seed = seed
        random.seed(seed)
        np = sys.modules.get("numpy")
        if np is not None:
            _seed_numpy(np, seed)

    def restore(self) -> None:
        """Put everything listed in the module docs back as the first call found it. Never raises: state the
        previous call made impossible to restore affects only its own row."""
        for step in (self._files, self._process, self._modules, self._signals):
            with contextlib.suppress(BaseException):
                step()

    def _files(self) -> None:
        try:
            os.chdir(self.home)
        except OSError:  # the previous call removed it, or put something else there
            _remove(self.home)
            with contextlib.suppress(OSError):
                os.mkdir(self.home, 0o700)
                os.chdir(self.home)
            self._inodes = None
        if self.private_fs:  # nothing was created, removed or written since the last emptying: nothing to do
            st = os.statvfs(self.workdir)
            if (st.f_ffree, st.f_bfree) == self._inodes:
                return
        _empty(self.workdir, keep=os.path.basename(self.home))
        _empty(self.home)
        if self.private_fs:
            st = os.statvfs(self.workdir)
            self._inodes = (st.f_ffree, st.f_bfree)

    def _process(self) -> None:
        if getattr(os.environ, "_data", None) != self._env_data or not self._env_data:
            os.environ.clear()
            os.environ.update(self.environ)
            if hasattr(os, "unsetenv"):
                import time

                with contextlib.suppress(Exception):
                    time.tzset()
        sys.path[:] = self.path
        sys.setrecursionlimit(self.recursion)
        os.umask(self.umask)
        sys.stdin, sys.stdout, sys.stderr = self.streams
        if self.gc_enabled and not gc.isenabled():
            gc.enable()

    def _modules(self) -> None:
        decimal.setcontext(self.decimal.copy())
        if warnings.filters != self.filters:
            warnings.filters[:] = self.filters
            with contextlib.suppress(AttributeError):
                warnings._filters_mutated()  # type: ignore[attr-defined]
        warnings.showwarning = self.showwarning
        self.snapshot_late()
        loc = sys.modules.get("locale")
        if loc is not None and self.locale is not None and loc.setlocale(loc.LC_ALL) != self.locale:
            loc.setlocale(loc.LC_ALL, self.locale)
        np = sys.modules.get("numpy")
        if np is not None and self.np_err is not None:
            np.seterr(**self.np_err)

    def _signals(self) -> None:
        for t in _TIMERS:
            _signal.setitimer(t, 0)
        get = _signal.getsignal
        for s, h in self.handlers.items():
            if h is not None and get(s) != h:
                _signal.signal(s, h)


class _SeedNumpyOnImport:
    """A meta-path finder that lets numpy import as usual, then seeds ``numpy.random`` from the call that
    imported it: without it, that call alone would draw from the operating system's entropy."""

    def __init__(self, state: CallState) -> None:
        self.state = state

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "numpy":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: the real finders locate numpy
        import importlib.util

        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        run = getattr(loader, "exec_module", None)
        if spec is None or run is None:
            return spec
        state = self.state

        def exec_module(module: Any) -> None:
            run(module)
            _seed_numpy(module, state.seed)
            state.snapshot_late()

        loader.exec_module = exec_module  # type: ignore[union-attr]
        return spec


def _seed_numpy(np: Any, seed: int) -> None:
    with contextlib.suppress(BaseException):  # a numpy without the legacy seeding API
        np.random.seed(seed % (1 << 32))


def _empty(path: str, keep: str | None = None) -> None:
    """Remove what a call left in ``path`` (but ``keep``), whatever modes it set; cheap when it left nothing."""
    try:
        with os.scandir(path) as it:
            names = [e.name for e in it if e.name != keep]
    except OSError:
        return
    for name in names:
        _remove(os.path.join(path, name))


def _remove(p: str) -> None:
    if os.path.islink(p) or not os.path.isdir(p):
        with contextlib.suppress(OSError):
            os.unlink(p)
        return
    with contextlib.suppress(OSError):
        os.chmod(p, 0o700)
    _empty(p)
    with contextlib.suppress(OSError):
        os.rmdir(p)
