"""Public value types of the sandbox: the call to run and the resource limits (stdlib only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: (function name: "llm_judge" | "llm_score" | "llm_extract", positional args) -> result; may raise
LLMCallback = Callable[[str, tuple], Any]

#: modules imported once in each worker before any dataset code runs, so calls do not pay for them
DEFAULT_PRELOAD: tuple[str, ...] = (
    "re", "json", "string", "math", "collections", "collections.abc", "itertools", "functools",
    "unicodedata", "datetime", "textwrap", "difflib", "statistics", "random", "typing", "copy", "operator",
    "fractions", "decimal", "html", "csv", "io", "hashlib", "base64", "heapq", "bisect", "enum",
    "dataclasses", "calendar", "numbers", "keyword", "ast", "tokenize", "urllib.parse",
    # optional; also lets the per-call tamper check gather dict version tags in C
    "numpy",
)


@dataclass(frozen=True)
class CodeCall:
    """One dataset check: ``source`` defines check_following(instruction, response)."""

    source: str
    prompt: str
    response: str


@dataclass(frozen=True)
class SandboxLimits:
    """Per-call limits. Kernel limits (rlimits) apply to the forked process that runs the call."""

    #: CPU seconds per call (RLIMIT_CPU; SIGXCPU at the soft limit, SIGKILL one second later)
    cpu_seconds: float = 2.0
    #: address space the code may add, in MiB: RLIMIT_AS = the preloaded worker's own size + this
    memory_mb: int = 512
    #: RLIMIT_NPROC (threads count too); the kernel does not enforce it for uid 0, seccomp does the work there
    max_processes: int = 32
    #: largest file the code may write, MiB (RLIMIT_FSIZE)
    file_size_mb: int = 16
    #: open file descriptors (RLIMIT_NOFILE)
    open_files: int = 64
    #: wall-clock seconds per call, enforced from outside (time spent in LLM callbacks not counted)
    wall_timeout_s: float = 2.0
    #: size of the private tmpfs each worker writes to, MiB (when a mount namespace is available)
    tmpfs_mb: int = 64
    #: sources longer than this are refused before compiling
    max_source_chars: int = 200_000

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "max_processes", "file_size_mb", "open_files", "wall_timeout_s",
                     "tmpfs_mb", "max_source_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}")
