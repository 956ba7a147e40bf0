"""Row processes kept while their LLM answers are gathered (docs/sandbox.md, IPC): stopped while other rows run,
killed when they hold space or memory another row may need, and never a reason for a wrong verdict: a call
whose kept process is gone runs again in a fresh one. Oracles are answers known by construction."""

from __future__ import annotations

from collections.abc import Sequence

from checkers.sandbox import CodeCall, LLMAnswer, Sandbox, SandboxLimits


class YesJudge:
    """Answers every llm_judge 'yes' (True), a batch at a time."""

    def __call__(self, name: str, args: tuple) -> object:
        return True

    def answer_batch(self, requests: Sequence[tuple[str, tuple]]) -> list[LLMAnswer]:
        return [LLMAnswer(True) for _ in requests]


def fn(body: str, head: str = "") -> str:
    return head + "def check_following(instruction, response):\n" + "".join(f"    {line}\n" for line in body.splitlines())


#: first run: a thread that keeps writing files next to the working directory, then a question (the call is
#: deferred and its process kept); the re-run gets the answer at once
KEEPS_WRITING = fn(
    "if not getattr(os, '_vi_writer', None):\n"
    "    def write():\n"
    "        n = 0\n"
    "        while True:\n"
    "            n += 1\n"
    "            try:\n"
    "                open(os.path.join(base, 'alive%d' % n), 'w').close()\n"
    "            except OSError:\n"
    "                pass\n"
    "            time.sleep(0.001)\n"
    "    base = os.path.dirname(os.getcwd())\n"
    "    os._vi_writer = threading.Thread(target=write, daemon=True)\n"
    "    os._vi_writer.start()\n"
    "return llm_judge(instruction, response, 'ok?') is True",
    "import os, threading, time\nfrom llm_call import llm_judge\n",
)
#: True when, for 100 ms, nothing appears in the worker's private directory beyond this call's own
WATCHES = fn(
    "base = os.path.dirname(os.getcwd())\n"
    "seen = set()\n"
    "end = time.monotonic() + 0.1\n"
    "while time.monotonic() < end:\n"
    "    seen.update(os.listdir(base))\n"
    "    time.sleep(0.002)\n"
    "return seen <= {os.path.basename(os.getcwd())}",
    "import os, time\n",
)


def test_a_kept_process_is_stopped_while_other_rows_run():
    """Row A's first run leaves a thread writing files and is deferred; row B runs on the same worker while A
    is kept. A stopped process writes nothing: B sees an empty private directory. A's re-run is answered."""
    calls = [CodeCall(KEEPS_WRITING, "a", "x", row="A"), CodeCall(WATCHES, "b", "y", row="B")]
    with Sandbox(workers=1, llm=YesJudge()) as sb:
        got = sb.run(calls)
        stats = dict(sb.stats)
    assert [v.passed for v in got] == [True, True], [v.error or v.reason for v in got]
    assert stats["resumed"] == 1, stats  # A ran again in its kept process


#: first run: an unlinked file of 4 MiB kept open (space in the private tmpfs that emptying the directory
#: cannot free), then a question; True on the re-run
HOLDS_SPACE = fn(
    "if not hasattr(os, '_vi_held'):\n"
    "    f = open('big', 'wb')\n"
    "    f.write(b'x' * (4 << 20))\n"
    "    f.flush()\n"
    "    os.unlink('big')\n"
    "    os._vi_held = f\n"
    "    first = True\n"
    "else:\n"
    "    first = False\n"
    "return llm_judge(instruction, response, 'ok?') is True and first",
    "import os\nfrom llm_call import llm_judge\n",
)


def test_a_kept_process_holding_space_in_the_private_tmpfs_is_killed_and_its_call_runs_afresh():
    """The re-run returns True only in a fresh process (``first``): with a private tmpfs the kept process is
    killed for the space it holds, so the call runs afresh; without one (no mount namespace) it is resumed."""
    calls = [CodeCall(HOLDS_SPACE, "a", "x", row="A"), CodeCall(WATCHES, "b", "y", row="B")]
    with Sandbox(workers=1, llm=YesJudge()) as sb:
        got = sb.run(calls)
        tmpfs = bool(sb.isolation.get("tmpfs"))
    assert got[1].passed is True, got[1]
    assert got[0].passed is tmpfs, (tmpfs, got[0])


#: first run: 48 MiB of its own memory, then a question; True when the re-run is in a fresh process
HOLDS_MEMORY = fn(
    "first = not hasattr(os, '_vi_mem')\n"
    "if first:\n"
    "    os._vi_mem = bytearray(48 << 20)\n"
    "    for i in range(0, len(os._vi_mem), 4096):\n"
    "        os._vi_mem[i] = 1\n"
    "return llm_judge(instruction, response, 'ok?') is True and first",
    "import os\nfrom llm_call import llm_judge\n",
)


def test_kept_processes_past_their_memory_share_are_killed_and_their_calls_run_afresh():
    """Kept processes may hold twice ``memory_mb`` together (128 MiB here): of three rows keeping 48 MiB each,
    the one past that is killed and runs afresh (True); every verdict is decided, none is a crash."""
    calls = [CodeCall(HOLDS_MEMORY, f"row {k}", "x", row=f"R{k}") for k in range(3)]
    with Sandbox(workers=1, llm=YesJudge(), limits=SandboxLimits(memory_mb=64)) as sb:
        got = sb.run(calls)
        stats = dict(sb.stats)
    assert all(v.passed is not None for v in got), [v.error for v in got]
    assert sum(v.passed is True for v in got) >= 1, [v.passed for v in got]
    assert stats["processes"] >= 4, stats  # three first runs, then at least one fresh re-run
