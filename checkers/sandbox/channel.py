"""The zygote <-> child layer (stdlib only): shared memory for results and progress, socket frames that
carry a per-child secret, and the named record of a call inside the worker.

The child is hostile code's process: it reports results and progress only in shared memory (no fd the
code could write forged results to). Frames on the call's socket (``idle``, ``run``) carry a secret the
code cannot read, so it cannot forge them; ``llm`` frames need no secret (they only ask).
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import time
from typing import Any, NamedTuple

if __package__:
    from . import protocol
else:  # loaded flat by BOOT, without importing the checkers package
    import protocol  # type: ignore[no-redef]

#: shared with the running child: index of the call in progress, its start time in monotonic ns, how the
#: child ended (0 running or crashed, DONE finished or retired after its last result, RETIRE stopped
#: before an unchecked primitive), bytes of module names it imported; then those names; then result slots
HEADER = struct.Struct("=QQQQ")
DONE, RETIRE = 1, 2
LEARN_BYTES = 4096
SHM_HEAD = HEADER.size + LEARN_BYTES
SLOT = 1024
#: calls one shared-memory block holds: longer chunks are sent to the child in pieces of this size
PIECE = 256


class Item(NamedTuple):
    """One call as the worker runs it: the parent's index, the code object (None when not sent), the
    texts, and the source's hash."""

    idx: Any
    code: Any
    prompt: str
    response: str
    hash: str


class Child:
    """A locked-down child that stays alive between pieces of work (the zygote keeps one at a time)."""

    def __init__(self, pid: int, sock: socket.socket, shm: mmap.mmap, secret: str) -> None:
        self.pid = pid
        self.sock = sock
        self.shm = shm
        self.secret = secret  # in run/idle frames: the child's dataset code cannot read it, so cannot forge them
        self.hashes: set[str] = set()  # sources whose code object the child already holds


def new_shm() -> mmap.mmap:
    shm = mmap.mmap(-1, SHM_HEAD + SLOT * PIECE)
    HEADER.pack_into(shm, 0, 0, time.monotonic_ns(), 0, 0)
    return shm


def new_secret() -> str:
    return os.urandom(16).hex()


def progress(shm: mmap.mmap) -> tuple[int, int, int, int]:
    """(call index, its start in monotonic ns, end state, bytes of learnt module names)."""
    return HEADER.unpack_from(shm, 0)


def set_progress(shm: mmap.mmap, k: int, start_ns: int, state: int, learnt: int) -> None:
    HEADER.pack_into(shm, 0, k, start_ns, state, learnt)


def write_learnt(shm: mmap.mmap, names: list[str]) -> int:
    data = ",".join(names).encode("ascii", "ignore")[:LEARN_BYTES]
    shm[HEADER.size:HEADER.size + len(data)] = data
    return len(data)


def read_learnt(shm: mmap.mmap) -> list[str]:
    n = HEADER.unpack_from(shm, 0)[3]
    if not 0 < n <= LEARN_BYTES:
        return []
    return bytes(shm[HEADER.size:HEADER.size + n]).decode("ascii", "ignore").split(",")


def clear_slots(shm: mmap.mmap, n: int) -> None:
    shm[SHM_HEAD:SHM_HEAD + SLOT * n] = bytes(SLOT * n)


def write_slot(shm: mmap.mmap, j: int, passed: bool | None, err: str | None) -> None:
    off = SHM_HEAD + j * SLOT
    if err is None and isinstance(passed, bool):
        shm[off] = 1 if passed else 2
        return
    data = (err or f"{protocol.ERR_SANDBOX}: malformed result").encode("utf-8", "replace")[: SLOT - 3]
    shm[off + 1:off + 3] = len(data).to_bytes(2, "little")
    shm[off + 3:off + 3 + len(data)] = data
    shm[off] = 3


def read_slots(shm: mmap.mmap, items: list[Item], start: int, end: int) -> list[Item]:
    out: list[Item] = []
    for k in range(start, end):
        off = SHM_HEAD + (k - start) * SLOT
        kind = shm[off]
        if kind == 0:
            break
        if kind in (1, 2):
            out.append(protocol.Result(items[k].idx, kind == 1, None))
        else:
            n = int.from_bytes(shm[off + 1:off + 3], "little")
            err = short(bytes(shm[off + 3:off + 3 + n]).decode("utf-8", "ignore"))
            out.append(protocol.Result(items[k].idx, None, err))
    return out



def short(e: Any) -> str | None:
    if e is None:
        return None
    return str(e)[:400]


def send_frame(sock_fd: int, frame: dict[str, Any]) -> None:
    protocol.write_all(sock_fd, protocol.encode(frame))
