"""Public value types of the sandbox: the call to run, LLM answers and the resource limits (stdlib only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: (function name: one of ``protocol.LLM_FUNCTIONS``, positional args) -> result; may raise.
#: A plain callback is called one request at a time (it need not be thread-safe).
LLMCallback = Callable[[str, tuple], Any]


@dataclass(frozen=True, slots=True)
class LLMAnswer:
    """The answer to one ``llm_*`` request: its value, or why there is none; ``prob`` is the verifier's
    P(yes) for llm_judge / llm_score when it has one (kept on verdicts that are exactly that answer)."""

    value: Any = None
    error: str | None = None
    prob: float | None = None

    @classmethod
    def from_exception(cls, e: BaseException) -> LLMAnswer:
        return cls(error=f"{type(e).__name__}: {str(e)[:200]}")


@runtime_checkable
class BatchLLM(Protocol):
    """An LLM callback that also answers many requests at once (``verifier.bridge.LLMBridge`` is one).
    The sandbox gathers the requests of every call in a run and sends them through ``answer_batch``."""

    def __call__(self, name: str, args: tuple) -> Any: ...

    def answer_batch(self, requests: Sequence[tuple[str, tuple]]) -> Sequence[LLMAnswer]: ...

#: modules imported once in each worker before any dataset code runs, so calls do not pay for them
DEFAULT_PRELOAD: tuple[str, ...] = (
    "re", "json", "string", "math", "collections", "collections.abc", "itertools", "functools",
    "unicodedata", "datetime", "textwrap", "difflib", "statistics", "random", "typing", "copy", "operator",
    "fractions", "decimal", "html", "csv", "io", "hashlib", "base64", "heapq", "bisect", "enum",
    "dataclasses", "calendar", "numbers", "keyword", "ast", "tokenize", "urllib.parse",
)
# numpy is not preloaded: every call forks the zygote, and numpy's heap nearly doubles the cost of a fork
# (1.8 vs 1.0 ms of CPU on the 2-core VM). The first call that imports it teaches the zygote to preload it.


@dataclass(frozen=True)
class CodeCall:
    """One dataset check: ``source`` defines check_following(instruction, response).

    ``row`` names the dataset row the code comes from. Calls with the same ``row`` may run one after
    another in one process (forked for that row alone), which costs one fork per row instead of one per
    call; calls without it get a process each. Give the same key only to calls whose code comes from the
    same row (the Scorer uses a hash of the instruction and the row's code): whatever one call does in the
    shared process can reach the others of its row, never a call of another row.
    """

    source: str
    prompt: str
    response: str
    row: str | None = None


@dataclass(frozen=True)
class SandboxLimits:
    """Per-call limits. Kernel limits (rlimits) apply to the forked process that runs the call.

    Verdicts do not depend on machine load: a call's own CPU time decides ``timeout`` (``cpu_seconds``),
    and ``wall_timeout_s`` is only a generous backstop for code that blocks without using CPU (sleeps,
    waits on a pipe). Time spent waiting for LLM answers counts toward neither: with a batch-capable
    callback the call does not wait at all (it is re-run once its answers are in), and with a plain
    callback the wait is credited back to the call.
    """

    #: CPU seconds per call: exceeding them is the ``timeout`` verdict. Enforced by RLIMIT_CPU, which the
    #: kernel counts in whole seconds, so a call gets between ``cpu_seconds`` and ``cpu_seconds + 1``
    cpu_seconds: float = 2.0
    #: address space the code may add, in MiB: RLIMIT_AS = the preloaded worker's own size + this
    memory_mb: int = 512
    #: RLIMIT_NPROC (threads count too); the kernel does not enforce it for uid 0, seccomp does the work there
    max_processes: int = 32
    #: largest file the code may write, MiB (RLIMIT_FSIZE)
    file_size_mb: int = 16
    #: open file descriptors (RLIMIT_NOFILE)
    open_files: int = 64
    #: wall-clock backstop per call, enforced from outside (LLM waiting not counted): long enough that a
    #: call within its CPU limit finishes on a heavily loaded machine; only code that blocks without
    #: computing (sleep, a read that never returns) runs into it
    wall_timeout_s: float = 30.0
    #: size of the private tmpfs each worker writes to, MiB (when a mount namespace is available)
    tmpfs_mb: int = 64
    #: sources longer than this are refused before compiling
    max_source_chars: int = 200_000
    #: ``llm_*`` requests one call may make (per run, and distinct questions over all its re-runs): beyond
    #: it the call ends ``llm budget``
    llm_max_requests: int = 64
    #: total bytes of one call's ``llm_*`` requests (per run, and over the distinct questions of all its
    #: re-runs): beyond it the call ends ``llm budget``
    llm_max_bytes: int = 8 << 20
    #: total wall-clock budget of one call from its first ``llm_*`` request to its verdict, waiting for answers
    #: and re-runs included: beyond it the call ends ``timeout`` (a stalled verifier cannot hold a row forever)
    call_budget_s: float = 900.0

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "max_processes", "file_size_mb", "open_files", "wall_timeout_s",
                     "tmpfs_mb", "max_source_chars", "llm_max_requests", "llm_max_bytes", "call_budget_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}")
