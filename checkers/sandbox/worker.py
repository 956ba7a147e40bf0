"""Sandbox worker entry point (stdlib only): started by the parent as ``python -s [-P] -c BOOT``.

It enters the namespaces it can (a user namespace first when not root), then runs the zygote, which
talks frames (``protocol``) with the parent on stdin/stdout. The layers, one module each:

* ``protocol``: parent <-> zygote, length-prefixed JSON frames over pipes; error classes; LLM functions;
* ``scheduler``: the worker's main process: compiles, hands calls to the zygote, supervises, relays LLM;
* ``zygote``: a clean process forked before any work, which forks one locked-down process per call;
* ``runner``: what runs in the call's process; ``codeship``: compiled code shipped marshalled;
* ``isolation``: namespaces, Landlock, seccomp, rlimits.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

if __package__:
    from . import isolation, protocol, scheduler
else:  # loaded flat by BOOT, without importing the checkers package
    import isolation  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]
    import scheduler  # type: ignore[no-redef]


def main() -> None:
    inp = sys.stdin.fileno()
    cfg = protocol.FrameReader().read_frame(inp)
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
    z = scheduler.Scheduler(cfg, iso)
    z.setup()
    z.serve()
    os._exit(0)


if __name__ == "__main__":
    main()
