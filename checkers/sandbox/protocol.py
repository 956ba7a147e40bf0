"""Wire format and error classes shared by the parent and the sandbox workers (stdlib only).

Frames are a 4-byte big-endian length followed by UTF-8 JSON. JSON, not pickle, because frames that
carry values produced by untrusted code must never be able to run code when decoded.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, NamedTuple

#: largest frame either side accepts (a chunk of long responses fits easily)
MAX_FRAME = 64 * 1024 * 1024

# Error classes: every undecided verdict's error starts with one of these, then ": " and details
# ("raised" is followed by the exception type: "raised ValueError: bad value").
ERR_BAD_INPUT = "bad input"
ERR_SOURCE_TOO_LARGE = "source too large"
ERR_SYNTAX = "syntax error"
ERR_IMPORT = "import error"
ERR_NO_FUNC = "no check_following"
ERR_RAISED = "raised"
ERR_EXITED = "exited"
ERR_BAD_RETURN = "bad return"
ERR_TIMEOUT = "timeout"
ERR_MEMORY = "memory limit"
ERR_CRASH = "worker crashed"
ERR_NEEDS_LLM = "needs LLM verifier"
ERR_LLM = "llm error"
ERR_SANDBOX = "sandbox error"
ERR_LLM_BUDGET = "llm budget"

ERROR_CLASSES = (
    ERR_BAD_INPUT,
    ERR_SOURCE_TOO_LARGE,
    ERR_SYNTAX,
    ERR_IMPORT,
    ERR_NO_FUNC,
    ERR_RAISED,
    ERR_EXITED,
    ERR_BAD_RETURN,
    ERR_TIMEOUT,
    ERR_MEMORY,
    ERR_CRASH,
    ERR_NEEDS_LLM,
    ERR_LLM,
    ERR_SANDBOX,
    ERR_LLM_BUDGET,
)

#: the LLM functions dataset code may call (module ``llm_call``) and their parameters: the one list of them
LLM_PARAMS: dict[str, tuple[str, str, str]] = {
    "llm_judge": ("instruction", "response", "constraint"),
    "llm_extract": ("instruction", "response", "specific_prompt"),
    "llm_score": ("instruction", "response", "checkers"),
}
LLM_FUNCTIONS: tuple[str, ...] = tuple(LLM_PARAMS)

#: internal result of a call stopped at an LLM request whose answer is being gathered into a batch: the
#: parent re-runs the call once the answer is in (never a verdict)
DEFERRED = "llm deferred"



class Call(NamedTuple):
    """One call of a chunk, parent -> scheduler (a JSON list on the wire). Consecutive calls with the same
    ``unit`` run in one process, one after another (calls of one dataset row)."""

    idx: int
    hash: str
    prompt: str
    response: str
    unit: int


class Result(NamedTuple):
    """One call's outcome, zygote -> parent: a bool, or None and the error (a JSON list on the wire)."""

    idx: Any
    passed: bool | None
    error: str | None


_LEN = struct.Struct(">I")
_NONE: Any = object()
#: what ``FrameReader.pop`` returns when no complete frame is buffered (a frame may be JSON null)
NO_FRAME: Any = _NONE


def error_class(error: str | None) -> str | None:
    """The stable leading token of an undecided verdict's error, for grouping and matching: one of
    ERROR_CLASSES when the error starts with one, else the text before the first ':' or ' (' (errors from
    the verifier or the registry); None for None."""
    if error is None:
        return None
    for cls in ERROR_CLASSES:
        if error.startswith(cls) and error[len(cls) : len(cls) + 1] in (":", " ", ""):
            return cls
    head = error.split(":", 1)[0].split(" (", 1)[0].strip()
    return head[:40] or "error"


def decode(body: bytes) -> Any:
    """One frame's JSON. Every way a hostile body can fail (invalid UTF-8, bad JSON, nesting deeper than
    the interpreter's recursion limit) is a ValueError, charged to whoever sent it."""
    try:
        return json.loads(body.decode("utf-8", "surrogatepass"))
    except RecursionError:
        raise ValueError("frame nested too deeply") from None
    except MemoryError:
        raise ValueError("frame too large to decode") from None


def encode(obj: Any) -> bytes:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    if len(body) > MAX_FRAME:
        raise ValueError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _LEN.pack(len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class FrameTooLarge(ValueError):
    """A frame's announced length is over the reader's limit."""


class FrameReader:
    """Incremental decoder: feed bytes, pop complete frames. Raises ValueError on a bad frame."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> None:
        self.buf += data

    def pop(self) -> Any:
        """The next complete frame, or _NONE when more bytes are needed."""
        buf = self.buf
        if len(buf) < 4:
            return _NONE
        (n,) = _LEN.unpack_from(buf, 0)
        if n > self.max_frame:
            raise FrameTooLarge(f"frame of {n} bytes exceeds {self.max_frame}")
        if len(buf) - 4 < n:
            return _NONE
        body = bytes(buf[4 : 4 + n])
        del buf[: 4 + n]
        return decode(body)

    def frames(self) -> list[Any]:
        out = []
        while (f := self.pop()) is not _NONE:
            out.append(f)
        return out

    def read_frame(self, fd: int) -> Any:
        """Block until one frame is available on fd; EOFError at end of stream."""
        while (f := self.pop()) is _NONE:
            data = os.read(fd, 1 << 20)
            if not data:
                raise EOFError("stream closed")
            self.feed(data)
        return f
