"""Tamper detection for a sandbox child that runs many calls in sequence (stdlib + ctypes only).

A forked child runs a whole chunk of calls (many sources) to amortise the fork. Each call already gets
fresh globals and a fresh copy of builtins; this module makes sure one call cannot silently change what
the next call sees through the process's shared state:

* **Watched dicts** (the real ``builtins`` dict, ``sys.modules``, every loaded module's ``__dict__`` and
  the ``__dict__`` of every class found in those modules) are fingerprinted by CPython's per-dict
  version tag (PEP 509: bumped by every mutation), read in bulk through one memoryview. After a call,
  a changed tag triggers an exact comparison against a reference copy: a pre-existing key rebound or
  removed is tampering, and so is a new key, except new ``sys.modules`` entries and submodules bound on
  their parent package (legitimate imports; a child that imported new modules is retired after the call).
* **Process settings** a call may change are compared and restored: recursion limit, switch interval,
  int-str digit limit, ``warnings.filters``, signal handlers, interval timers, the signal mask, and files
  left in the working directory. Threads left running and changed rlimits cannot be undone: tampering.
* **An audit hook** (PEP 578, installed once per child, cannot be removed) watches for primitives that
  reach past the checks above (frames, ``gc`` object walking, ``ctypes``, function code/defaults
  swaps, trace hooks, cwd or environment changes). When a call uses one and more calls follow in the
  same child, the child exits at once (before the primitive runs) and the supervisor re-runs that call
  alone in a fresh child; new audit hooks are refused.
"""

from __future__ import annotations

import _signal
import _thread
import contextlib
import ctypes
import gc
import operator
import os
import resource
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

ERR_TAMPERED = "tampered"
#: exit status of a child that stopped itself before a primitive the guard cannot check
RETIRE_EXIT = 75

#: audit events after which the rest of a chunk cannot be trusted to run in the same process
TAINT_EVENTS = frozenset({
    "sys._getframe", "sys._current_frames", "object.__getattr__", "object.__setattr__", "object.__delattr__",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    "os.chdir", "os.fchdir", "os.putenv", "os.unsetenv", "sys._current_exceptions",
})
_TAINT_PREFIXES = ("ctypes.", "cpython.")
_RLIMITS = tuple(getattr(resource, n) for n in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
                                                "RLIMIT_STACK", "RLIMIT_DATA", "RLIMIT_CORE") if hasattr(resource, n))
_SIGNALS = tuple(s for s in range(1, 32) if s not in (_signal.SIGKILL, _signal.SIGSTOP))
_TIMERS = (_signal.ITIMER_REAL, _signal.ITIMER_VIRTUAL, _signal.ITIMER_PROF)
_NOT_INSTANCES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                  types.MethodWrapperType, types.WrapperDescriptorType, type)
_VERSION_OFFSET = 3 * ctypes.sizeof(ctypes.c_ssize_t)  # PyDictObject: refcnt, type, ma_used, ma_version_tag


def _tags_supported() -> bool:
    """CPython 3.6-3.13 keep ma_version_tag after ma_used; check the layout before trusting it."""
    if sys.implementation.name != "cpython" or not (3, 6) <= sys.version_info[:2] <= (3, 13):
        return False
    try:
        for n in (0, 3, 17):
            d = {i: i for i in range(n)}
            used = ctypes.c_ssize_t.from_address(id(d) + _VERSION_OFFSET - 8).value
            tag = ctypes.c_uint64.from_address(id(d) + _VERSION_OFFSET)
            before = tag.value
            d["x"] = 1
            if used != n or tag.value == before:
                return False
    except (ValueError, OSError):
        return False
    return True


TAGS = _tags_supported()


_CONSTANT_TYPES = (str, int, float, bytes, bool, type(None))


def _same_constant(a: Any, b: Any, depth: int = 0) -> bool:
    """True for an equal immutable value of a plain type, e.g. time.tzname re-set by time.tzset()."""
    t = type(a)
    if t is not type(b) or depth > 3:
        return False
    if t in _CONSTANT_TYPES:
        return a == b
    if t is tuple:
        return len(a) == len(b) and all(_same_constant(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    return False


def _heap_dict(cls: type) -> dict | None:
    """The real dict behind a heap type's mappingproxy (static types cannot be changed from Python)."""
    if not cls.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE
        return None
    for ref in gc.get_referents(cls.__dict__):
        if type(ref) is dict:
            return ref
    return None


class Watch:
    """The set of watched dicts with reference copies; built in the zygote, refreshed there when needed."""

    def __init__(self) -> None:
        self.dicts: list[dict] = []
        self.names: list[str] = []
        self.refs: list[dict] = []
        self.additions_ok: list[bool] = []
        self.ids: set[int] = set()
        self._get: Callable[[Any], tuple] | None = None
        self._mv: memoryview | None = None
        self.tags: Any = ()
        self.n_modules = -1

    def _add(self, d: dict, name: str, additions_ok: bool) -> None:
        if id(d) in self.ids:
            return
        self.ids.add(id(d))
        self.dicts.append(d)
        self.names.append(name)
        self.refs.append(dict(d))
        self.additions_ok.append(additions_ok)

    def add_modules(self, names: Any) -> None:
        for mname in names:
            mod = sys.modules.get(mname)
            if not isinstance(mod, types.ModuleType):
                continue
            md = mod.__dict__
            self._add(md, mname, True)
            for key, value in list(md.items()):
                if isinstance(value, type):
                    if getattr(value, "__module__", None) == mname:
                        cd = _heap_dict(value)
                        if cd is not None:
                            self._add(cd, f"{mname}.{key}", False)
                elif not isinstance(value, _NOT_INSTANCES) and not getattr(type(value), "_guard_skip", False):
                    try:
                        idict = object.__getattribute__(value, "__dict__")
                    except AttributeError:
                        continue
                    if type(idict) is dict:  # a module-level object, e.g. json._default_decoder
                        self._add(idict, f"{mname}.{key}", False)

    def build(self) -> None:
        import builtins

        self._add(builtins.__dict__, "builtins", False)  # index 0
        self._add(sys.modules, "sys.modules", True)  # index 1: any new entry is a new import
        self.add_modules(list(sys.modules))
        self.n_modules = len(sys.modules)
        self._index()
        self.tags = self.read()

    def _index(self) -> None:
        if not TAGS:
            self._get = None
            return
        addrs = [id(d) + _VERSION_OFFSET for d in self.dicts]
        lo, hi = min(addrs), max(addrs) + 8
        buf = (ctypes.c_char * (hi - lo)).from_address(lo)
        self._buf = buf
        offsets = [(a - lo) // 8 for a in addrs]
        np = sys.modules.get("numpy")  # gathers ~1000 tags in a few microseconds; only if already loaded
        if np is not None:
            try:
                self._np_arr = np.frombuffer(buf, dtype=np.uint64)
                self._np_idx = np.array(offsets, dtype=np.intp)
                self._get = self._np_read
                return
            except Exception:  # noqa: BLE001 - fall back to the stdlib gather
                pass
        self._mv = memoryview(buf).cast("B").cast("Q")
        self._get = operator.itemgetter(*offsets)

    def _np_read(self, _: Any) -> bytes:
        return self._np_arr[self._np_idx].tobytes()

    def _items(self, tags: Any) -> Any:
        """Per-dict tags from what read() returned (bytes in the numpy path)."""
        if isinstance(tags, bytes):
            return memoryview(tags).cast("Q").tolist()
        return tags

    def read(self) -> Any:
        if self._get is not None:
            return self._get(self._mv)
        return tuple(tuple(d.values()) for d in self.dicts)  # no version tags: compare values by identity

    def refresh(self) -> None:
        """In the zygote before a fork: re-copy dicts that changed since the last snapshot (trusted code)."""
        if len(sys.modules) != self.n_modules:
            self.add_modules([m for m in list(sys.modules) if id(getattr(sys.modules[m], "__dict__", None)) not in self.ids])
            self.n_modules = len(sys.modules)
            self._index()
        tags = self.read()
        if tags != self.tags:
            for i, (a, b) in enumerate(zip(self._items(tags), self._items(self.tags), strict=False)):
                if a is not b and a != b:
                    self.refs[i] = dict(self.dicts[i])
            self.tags = self.read()

    def changed(self) -> str | None:
        """First rebinding/removal found since the snapshot (None when only allowed additions happened,
        which are then accepted: their keys join the reference)."""
        tags = self.read()
        if tags == self.tags:
            return None
        for i, (a, b) in enumerate(zip(self._items(tags), self._items(self.tags), strict=True)):
            if a is b or a == b:
                continue
            d, ref = self.dicts[i], self.refs[i]
            for key, value in ref.items():
                if key not in d:
                    return f"{self.names[i]}: removed {str(key)[:60]}"
                if d[key] is not value and not _same_constant(d[key], value):
                    return f"{self.names[i]}: changed {str(key)[:60]}"
            if len(d) != len(ref):
                for key, value in d.items():
                    # allowed: new entries in sys.modules, and submodules bound on their parent by an import
                    if key not in ref and not (self.additions_ok[i] and (i == 1 or isinstance(value, types.ModuleType))):
                        return f"{self.names[i]}: added {str(key)[:60]}"
        self.accept_additions(tags)
        return None

    def accept_additions(self, tags: Any) -> None:
        """After a clean check: new keys are fine, remember the current tags and copies."""
        for i, (a, b) in enumerate(zip(self._items(tags), self._items(self.tags), strict=True)):
            if a is not b and a != b:
                self.refs[i] = dict(self.dicts[i])
        self.tags = tags


class Guard:
    """Runs in the child: snapshot once, then check (and restore) after every call."""

    def __init__(self, watch: Watch, workdir: str) -> None:
        watch.refresh()  # no dataset code has run yet: what fork itself changed (e.g. threading locks) is fine
        self.watch = watch
        self.workdir = workdir
        self.cwd = os.getcwd()
        self.rlimits = [resource.getrlimit(r) for r in _RLIMITS]
        self.recursion = sys.getrecursionlimit()
        self.switch = sys.getswitchinterval()
        self.digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
        self.filters = list(warnings.filters)
        self.handlers = [_signal.getsignal(s) for s in _SIGNALS]
        self.mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, [])
        self.n_modules = len(sys.modules)
        self.path = (list(sys.path), list(sys.meta_path), list(sys.path_hooks))
        self.new_modules = False
        import builtins

        self.bdict = builtins.__dict__
        self.bref = dict(self.bdict)
        # bound now, before any dataset code: a call that patches these modules cannot run code in check()
        self._collect, self._count, self._getrlimit, self._getcwd = gc.collect, _thread._count, resource.getrlimit, os.getcwd

    def restore_builtins(self) -> None:
        """Put the real builtins back (after tampering was reported) so the child can finish its report."""
        d, ref = self.bdict, self.bref
        for key in [k for k in d if k not in ref]:
            del d[key]
        d.update(ref)

    def check(self) -> str | None:
        """After a call: restore what can be restored; describe tampering that cannot be undone."""
        self._collect()  # run finalizers of the call's garbage now, not during the next call
        what = self.watch.changed()
        if what:
            return f"modified shared {what}"
        if self._count():
            return "left a thread running"
        if [self._getrlimit(r) for r in _RLIMITS] != self.rlimits:
            return "changed a resource limit"
        if self._getcwd() != self.cwd:
            return "changed the working directory"
        if (sys.path, sys.meta_path, sys.path_hooks) != self.path:
            return "changed the import path or import hooks"
        if len(sys.modules) != self.n_modules:
            self.new_modules = True  # new modules are not watched yet: the caller retires this child
        self._restore()
        return None

    def _restore(self) -> None:
        if sys.getrecursionlimit() != self.recursion:
            sys.setrecursionlimit(self.recursion)
        if sys.getswitchinterval() != self.switch:
            sys.setswitchinterval(self.switch)
        if self.digits is not None and sys.get_int_max_str_digits() != self.digits:
            sys.set_int_max_str_digits(self.digits)
        if warnings.filters != self.filters:
            warnings.filters[:] = self.filters
            warnings._filters_mutated()  # type: ignore[attr-defined]
        for which in _TIMERS:
            if _signal.getitimer(which) != (0.0, 0.0):
                _signal.setitimer(which, 0.0)
        for s, h in zip(_SIGNALS, self.handlers, strict=True):
            if _signal.getsignal(s) is not h:
                _signal.signal(s, h)
        if _signal.pthread_sigmask(_signal.SIG_BLOCK, []) != self.mask:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, self.mask)
        with os.scandir(self.workdir) as it:
            left = next(it, None) is not None
        if left:
            _clear_dir(self.workdir)


def _clear_dir(path: str) -> None:
    """Remove everything under path (a call's leftover files), keeping path itself."""
    for root, dirs, files in os.walk(path, topdown=False):
        for f in files:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, f))
        for d in dirs:
            p = os.path.join(root, d)
            with contextlib.suppress(OSError):
                os.unlink(p) if os.path.islink(p) else os.rmdir(p)


def install_audit_hook(on_event: Callable[[str, tuple], None]) -> None:
    """Refuse new audit hooks; call on_event(event, args) for module imports and before any primitive
    the checks cannot see through."""
    taint, prefixes = TAINT_EVENTS, _TAINT_PREFIXES

    def hook(event: str, args: tuple) -> None:
        if event == "sys.addaudithook":
            raise RuntimeError("audit hooks are not allowed in the sandbox")
        if event == "import" or event in taint or event.startswith(prefixes):
            on_event(event, args)

    sys.addaudithook(hook)
