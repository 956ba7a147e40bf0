"""What runs in the locked-down child (stdlib only): each call in fresh globals, the guard's checks after
each call, results to shared memory; a persistent child then waits for its next piece of work."""

from __future__ import annotations

import mmap
import os
import resource
import signal
import time
from typing import Any

if __package__:
    from . import channel, codeship, guard, llm_stub, protocol
else:  # loaded flat by BOOT, without importing the checkers package
    import channel  # type: ignore[no-redef]
    import codeship  # type: ignore[no-redef]
    import guard  # type: ignore[no-redef]
    import llm_stub  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]

#: a persistent child retires after this many calls (bounds its CPU hard limit and any slow drift)
MAX_CALLS_PER_CHILD = 4096


def child_main(fd: int, shm: mmap.mmap, items: list[channel.Item], persist: bool, secret: str,
               clean_builtins: dict, lim: dict, watch: guard.Watch, rundir: str) -> int:
    """Runs in the locked-down child: each call executes its source in fresh globals; after each call
    the guard checks shared state. Results and progress go to shared memory only (no fd the code could
    write forged results to). A persistent child then signals that it is idle and waits for its next
    piece of work, until a call ends it or its lifetime budget (calls, CPU, memory growth) is spent."""
    llm_stub.STATE.fd = fd
    st = llm_stub.STATE
    llm_reader = st.reader
    cpu = int(lim["cpu_seconds"] + 0.999)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    check = guard.Guard(watch, rundir)
    imported: list[str] = []
    last = [False]
    final = [not persist]  # True once nothing may run in this process after the current piece
    codes: dict[str, Any] = {it.hash: it.code for it in items}
    reader = protocol.FrameReader()  # ours, reachable by dataset code only through frames or gc (audited)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    served = 0

    def note_imports() -> int:
        return channel.write_learnt(shm, imported)

    def on_event(event: str, args: tuple) -> None:
        if event == "import":
            if len(imported) < 64 and isinstance(args[0], str):
                imported.append(args[0])
            return
        if last[0]:  # alone in this process's shared memory: let the primitive run, serve nothing afterwards
            final[0] = True
            return
        k = channel.HEADER.unpack_from(shm, 0)[0]  # more calls follow in this process: stop before the primitive
        channel.HEADER.pack_into(shm, 0, k, 0, channel.RETIRE, note_imports())
        os._exit(guard.RETIRE_EXIT)

    guard.install_audit_hook(on_event)
    pack_into, now = channel.HEADER.pack_into, time.monotonic_ns
    while True:
        end = len(items)
        for k in range(end):
            _, code, prompt, response, _h = items[k]
            last[0] = end == 1  # only a call alone in its shared memory may use a primitive
            ru = resource.getrusage(resource.RUSAGE_SELF)
            resource.setrlimit(resource.RLIMIT_CPU, (min(int(ru.ru_utime + ru.ru_stime) + cpu + 1, hard), hard))
            imported.clear()
            pack_into(shm, 0, k, now(), 0, 0)
            if code is None:
                passed, err = None, f"{protocol.ERR_SANDBOX}: code object not sent"
            else:
                passed, err = run_one(code, prompt, response, clean_builtins)
            try:
                tampered = check.check()
            except BaseException as e:  # noqa: BLE001 - e.g. a patched builtin our checks rely on
                tampered = f"broke the sandbox's checks ({type(e).__name__})"
            if tampered is not None:
                check.restore_builtins()
            if tampered is None and (st.fd != fd or st.reader is not llm_reader):
                tampered = "changed the LLM relay state"
            if tampered is not None:
                passed, err = None, f"{protocol.ERR_TAMPERED}: {tampered}"
            try:
                channel.write_slot(shm, k, passed, err)
            except Exception as e:  # noqa: BLE001
                channel.write_slot(shm, k, None, f"{protocol.ERR_SANDBOX}: {type(e).__name__}")
            if tampered is not None or check.new_modules:
                # the rest runs in a fresh process; modules it imported may be preloaded there
                last[0] = True
                pack_into(shm, 0, k + 1, now(), channel.DONE, note_imports() if check.new_modules else 0)
                return 0
        served += end
        last[0] = False  # from here on, a primitive (say, a late finalizer) retires this child at once
        ru = resource.getrusage(resource.RUSAGE_SELF)
        if (final[0] or served >= MAX_CALLS_PER_CHILD or hard - (ru.ru_utime + ru.ru_stime) < 2 * cpu + 2
                or ru.ru_maxrss - rss0 > (int(lim["memory_mb"]) << 10) // 4):
            pack_into(shm, 0, end, now(), channel.DONE, 0)
            return 0
        # persistent: state carries over to the next piece exactly as between two calls of this one, and
        # the same per-call checks guard it
        pack_into(shm, 0, end, now(), channel.DONE, 0)
        try:
            channel.send_frame(fd, {"t": "idle", "s": secret})
            while True:
                fr = reader.read_frame(fd)
                if isinstance(fr, dict) and fr.get("t") == "run" and fr.get("s") == secret:
                    break
            for h, shipped in fr["codes"].items():
                codes[h] = codeship.unship(shipped)
            items = [channel.Item(idx, codes.get(h), prompt, response, h) for idx, h, prompt, response in fr["items"]]
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            return 0


def run_one(code: Any, prompt: str, response: str, clean_builtins: dict) -> tuple[bool | None, str | None]:
    st = llm_stub.STATE
    st.reset()
    g: dict[str, Any] = {"__name__": "__dataset_check__", "__builtins__": dict(clean_builtins)}
    try:
        exec(code, g)  # noqa: S102 - this is the sandboxed process
        fn = g.get("check_following")
        if not callable(fn):
            return None, f"{protocol.ERR_NO_FUNC}: the source defines no callable check_following"
        out = fn(prompt, response)
    except BaseException as e:  # noqa: BLE001
        return None, _llm_error(st) or _exc_error(e)
    llm = _llm_error(st)
    if llm:
        return None, llm
    try:
        return _to_bool(out)
    except BaseException as e:  # noqa: BLE001
        return None, f"{protocol.ERR_BAD_RETURN}: {type(e).__name__} while reading the result"


def _llm_error(st: Any) -> str | None:
    if st.deferred:  # whatever the code made of it: this run's result waits for the batched answer
        return protocol.DEFERRED
    if st.needed:
        return f"{protocol.ERR_NEEDS_LLM}: {st.needed} and no LLM callback is configured"
    if st.failed:
        return f"{protocol.ERR_LLM}: {st.failed}"
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
        return None, f"{protocol.ERR_BAD_RETURN}: returned int {out if abs(out) < 10**12 else '(large)'}, expected bool"
    detail = ""
    if t is str:
        detail = f" of length {len(out)}" if len(out) > 40 else f" {out!r}"
    elif out is None:
        detail = ""
    return None, f"{protocol.ERR_BAD_RETURN}: returned {t.__name__}{detail}, expected bool"


def _exc_error(e: BaseException) -> str:
    name = type(e).__name__
    try:
        msg = str(e)[:200]
    except BaseException:  # noqa: BLE001
        msg = "<unprintable>"
    if isinstance(e, ImportError):
        return f"{protocol.ERR_IMPORT}: {msg}"
    if isinstance(e, MemoryError):
        return f"{protocol.ERR_MEMORY}: MemoryError (limit reached)"
    if isinstance(e, SystemExit):
        return f"{protocol.ERR_EXITED}: sys.exit({msg})"
    return f"{protocol.ERR_RAISED} {name}: {msg}" if msg else f"{protocol.ERR_RAISED} {name}"


def describe_exit(status: int, lim: dict) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return f"{protocol.ERR_TIMEOUT}: used more than {lim['cpu_seconds']:g}s CPU time"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "?"
        return f"{protocol.ERR_CRASH}: killed by signal {sig} ({name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"{protocol.ERR_EXITED}: process exited with code {code} before returning"

