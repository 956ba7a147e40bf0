"""One process per dataset row (``CodeCall.row``, ``Sandbox(process_per="row")``): rows share a process and
only rows do; a hostile row decides only its own verdicts; honest code gets the verdicts of the isolated
``process_per="call"`` mode whatever the grouping; a call that ends its row's process early is the one
blamed, and the calls after it in its row still get their verdicts.

Oracles are answers fixed by hand (one-line facts about the response; ``llm_judge`` answers True exactly
when the response contains "yes"), or, for code whose answer depends on its seeded ``random``, the verdicts
of ``process_per="call"`` (each call alone in a fresh process).

The pool cuts a batch into chunks of ``ceil(n / (2 * workers))`` calls and splits a row only when it is
longer than that; the batches here carry filler calls (no row key) so that each row fits in one chunk.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from checkers.sandbox import CodeCall, LLMAnswer, Sandbox, SandboxLimits, error_class


def fn(body: str, head: str = "") -> str:
    return head + "def check_following(instruction, response):\n" + "".join(f"    {ln}\n" for ln in body.splitlines())


class Oracle:
    """A batch LLM callback: llm_judge -> 'yes' in the response (its second argument)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.questions: list[tuple[str, tuple]] = []

    def __call__(self, name: str, args: tuple) -> object:
        return self.answer_batch([(name, args)])[0].value

    def answer_batch(self, requests: Sequence[tuple[str, tuple]]) -> list[LLMAnswer]:
        with self.lock:
            self.questions.extend(requests)
        return [LLMAnswer("yes" in str(args[1])) for _, args in requests]


#: len(response) == 3
COUNTS = fn("return len(response) == 3")
#: 'ok' in response
HAS_OK = fn("return 'ok' in response")
#: llm_judge: 'yes' in response
ASKS = fn("return llm_judge(instruction, response, 'Says yes?')", "from llm_call import llm_judge\n")


def fillers(k: int) -> tuple[list[CodeCall], list[bool]]:
    """``k`` calls without a row key, known answers: they make the batch long enough that no row is split."""
    calls = [CodeCall(COUNTS, "filler", "abc" if j % 2 else "abcd") for j in range(k)]
    return calls, [bool(j % 2) for j in range(k)]


def passed(vs: Sequence[Any]) -> list[bool | None]:
    return [v.passed for v in vs]


# ---- 1. calls of one row share a process; nothing else does ----------------------------------------------
#: sets a mark (the response and the pid) on an imported stdlib module and leaves a file in its cwd; True when
#: the mark it found before (the previous call's in this process) is what the instruction names, in this very
#: process, and its cwd was empty (each call of a row starts with an empty directory of its own)
MARK = fn(
    "seen = getattr(json, '_vi_row_mark', None)\n"
    "pid = getattr(json, '_vi_row_pid', os.getpid())\n"
    "json._vi_row_mark, json._vi_row_pid = response, os.getpid()\n"
    "files = os.listdir('.')\n"
    "open(response + '.left', 'w').write('x')\n"
    "return instruction == repr(seen) and pid == os.getpid() and files == []",
    "import json, os\n",
)


def test_calls_with_the_same_row_key_share_one_process_and_only_they_do():
    # rows A (3 calls) and B (2 calls) interleaved with calls without a key and a row C of one call
    a1 = CodeCall(MARK, repr(None), "a1", row="A")
    b1 = CodeCall(MARK, repr(None), "b1", row="B")
    n1 = CodeCall(MARK, repr(None), "n1")
    a2 = CodeCall(MARK, repr("a1"), "a2", row="A")
    b2 = CodeCall(MARK, repr("b1"), "b2", row="B")
    n2 = CodeCall(MARK, repr(None), "n2")
    c1 = CodeCall(MARK, repr(None), "c1", row="C")
    a3 = CodeCall(MARK, repr("a2"), "a3", row="A")
    calls = [a1, b1, n1, a2, b2, n2, c1, a3]
    fill, fill_expect = fillers(16)
    with Sandbox(workers=2, process_per="row") as sb:
        vs = sb.run(calls + fill)
    assert passed(vs) == [True] * len(calls) + fill_expect, [v.error or v.reason for v in vs]
    # the same calls in the isolated mode: every call finds nothing, so the row's later calls are False
    with Sandbox(workers=2, process_per="call") as sb:
        vs = sb.run(calls + fill)
    assert passed(vs) == [True, True, True, False, False, True, True, False] + fill_expect


def test_calls_without_a_row_key_never_share_even_with_equal_code_and_texts():
    calls = [CodeCall(MARK, repr(None), "same") for _ in range(6)]
    fill, fill_expect = fillers(16)
    with Sandbox(workers=1, process_per="row") as sb:
        vs = sb.run(calls + fill)
    assert passed(vs) == [True] * 6 + fill_expect, [v.error for v in vs]


# ---- 2. a hostile row beside honest rows, through the user's commands ------------------------------------
#: F1 (issue 15): a signal handler's frame walk; every code object it can reach is replaced by `return True`,
#: and so is the code of every source the runner was handed for this process (its ``codes`` cache is filled
#: with the forgery for each hash it was shipped): every later call of the process returns True
F1_FORGE = fn(
    "forged = compile('def check_following(i, r):\\n    return True\\n', 'x', 'exec')\n"
    "def h(sig, f):\n"
    "    while f is not None:\n"
    "        loc = f.f_locals\n"
    "        if isinstance(loc.get('codes'), dict) and isinstance(loc.get('shipped'), dict):\n"
    "            for k in list(loc['shipped']):\n"
    "                loc['codes'][k] = forged\n"
    "        for v in list(loc.values()) + list(f.f_globals.values()):\n"
    "            if isinstance(v, dict):\n"
    "                for k in list(v):\n"
    "                    if type(v[k]).__name__ == 'code':\n"
    "                        v[k] = forged\n"
    "        f = f.f_back\n"
    "signal.signal(signal.SIGUSR1, h)\n"
    "os.kill(os.getpid(), signal.SIGUSR1)\n"
    "return False",
    "import os, signal\n",
)
_STATE = "import llm_call\nS = llm_call.llm_judge.__globals__['STATE']\n"
#: F2: the relay's state: forge every later LLM answer, force deferral on every later call
F2_FORGE_READER = fn(
    "real = S.reader.read_frame\n"
    "def forged(fd):\n"
    "    r = real(fd)\n"
    "    return {'ok': True, 'v': True, 'n': r.get('n')}\n"
    "S.reader.read_frame = forged\n"
    "S.reader.__class__.read_frame = lambda self, fd: forged(fd)\n"
    "return False",
    _STATE,
)
F2_FORCE_DEFER = fn("S.reset = lambda: setattr(S, 'deferred', True)\nS.__class__.reset = S.reset\nreturn False", _STATE)
#: len(response) < 6
SHORT = fn("return len(response) < 6")


def test_scorer_hostile_row_with_f1_and_f2_forges_no_honest_row():
    """F1 and F2 in one row of a Scorer batch (the ``verif score`` path with an LLM verifier: a fake
    backend says No exactly when the judged text contains BAD): honest rows with the same id, with the
    same instruction but other code, with LLM-judged code and soft constraints keep their known verdicts."""
    from verifier import Verifier, load_template
    from verifier.backends.base import GenResult
    from verinstruct import Scorer
    from verinstruct.schema import CodeCheck, Constraint, Instance, LLMCheck

    class Judge:
        kind = "fake"
        model = "fake-judge"

        def generate(self, batch, config):
            return [GenResult("No" if any("BAD" in m["content"] for m in msgs) else "Yes") for msgs in batch]

        def close(self):
            pass

    asks = fn("return llm_judge(instruction, response, 'Is it kind?')", "from llm_call import llm_judge\n")
    honest = (Constraint("h", "hard", "has ok", CodeCheck(HAS_OK)), Constraint("j", "hard", "kind", CodeCheck(asks)),
              Constraint("s", "soft", "be kind", LLMCheck()))
    attack = tuple(Constraint(f"x{n}", "hard", "attack", CodeCheck(src))
                   for n, src in enumerate((F1_FORGE, F2_FORGE_READER, F2_FORCE_DEFER)))
    instances, responses, expect = [], [], []
    for k in range(10):
        same_prompt = f"Answer kindly ({k})."  # rows with equal instruction and code share a process
        # the hostile row also holds the honest code, so its own honest-looking checks share its process
        instances.append(Instance("dup", same_prompt, attack + honest[:2]))
        responses.append("ok BAD")
        expect.append(None)
        for rid, prompt in (("dup", same_prompt), ("dup", f"task {k}"), (f"r{k}", f"task {k}")):
            instances.append(Instance(rid, prompt, honest))
            good = (k + len(instances)) % 2 == 0
            responses.append("ok fine" if good else "not BAD")
            expect.append([good, good, good])
    v = Verifier(backend=Judge(), mode="generate", template=load_template("en"))
    with Scorer(v, sandbox_workers=2) as scorer:
        scored = scorer.score_batch(instances, responses)
    for k, (s, e) in enumerate(zip(scored, expect, strict=True)):
        got = [c.verdict.passed for c in s.constraints]
        if e is None:
            # F1 runs first in its row's process and returns False; what it forges after it is its own row
            assert got[0] is False, (k, [c.verdict for c in s.constraints])
        else:
            assert got == e, (k, [c.verdict for c in s.constraints])


# ---- 3. honest code: the same verdicts however the calls are grouped ---------------------------------------
#: a module-level counter in the dataset code: fresh globals for every call, so it is always 1
GLOBAL_COUNTER = "CALLS = 0\nSEEN = []\n" + fn(
    "global CALLS\nCALLS += 1\nSEEN.append(response)\nreturn CALLS == 1 and SEEN == [response] and 'ok' in response")
NAMEDTUPLE = fn("P = collections.namedtuple('P', 'a b')\nreturn P(1, 3).b == len(response)", "import collections\n")
#: writes its response to a file in its cwd and reads it back
WRITES_FILE = fn(
    "with open('answer.txt', 'w') as f:\n    f.write(response)\n"
    "with open('answer.txt') as f:\n    back = f.read()\n"
    "return back == response and 'ok' in back")
#: the answer depends on the call's seeded random: its oracle is the isolated mode
RANDOM = fn("return random.random() < 0.5 and random.randrange(10) != 3", "import random\n")
#: two llm_judge questions, the second depending on the call's seeded random: two rounds of deferral
ASKS_TWICE = fn(
    "a = llm_judge(instruction, response, 'first')\n"
    "b = llm_judge(instruction, response, 'q%d' % random.randrange(10**9))\n"
    "return a and b",
    "import random\nfrom llm_call import llm_judge\n")


def _honest_batch() -> tuple[list[CodeCall], list[bool | None]]:
    """Rows of a GRPO-like batch: each row is one instruction's code run on several responses; ``None``
    where the answer depends on the call's random (decided by the isolated mode)."""
    calls: list[CodeCall] = []
    expect: list[bool | None] = []
    for r in range(6):
        row = f"row{r}"
        for resp in ("ok yes", "no", "yes ok!", "abc"):
            for src, known in ((GLOBAL_COUNTER, "ok" in resp), (NAMEDTUPLE, len(resp) == 3),
                               (WRITES_FILE, "ok" in resp), (RANDOM, None), (ASKS, "yes" in resp),
                               (ASKS_TWICE, "yes" in resp)):
                calls.append(CodeCall(src, f"instruction {r}", resp, row=row))
                expect.append(known)
    return calls, expect


def test_honest_verdicts_do_not_depend_on_grouping_or_order():
    calls, expect = _honest_batch()
    with Sandbox(workers=2, process_per="call", llm=Oracle()) as sb:
        isolated = sb.run(calls)
    assert all(v.error is None for v in isolated), [v.error for v in isolated if v.error]
    assert [e if e is not None else v.passed for v, e in zip(isolated, expect, strict=True)] == passed(isolated)
    assert any(v.passed for v, e in zip(isolated, expect, strict=True) if e is None)
    assert not all(v.passed for v, e in zip(isolated, expect, strict=True) if e is None)
    order = list(range(len(calls)))
    shuffled = order[:]
    random.Random(15).shuffle(shuffled)
    with Sandbox(workers=2, process_per="row", llm=Oracle()) as sb:
        for perm in (order, order[::-1], shuffled):
            vs = sb.run([calls[i] for i in perm])
            got = [None] * len(calls)
            for j, i in enumerate(perm):
                got[i] = vs[j].passed
            assert got == passed(isolated), [v.error for v in vs if v.error]


# ---- 4. a call that ends its row's process is blamed, and only it ------------------------------------------
_LIMITS = SandboxLimits(cpu_seconds=1, wall_timeout_s=2.0, llm_max_requests=3)
CRASHERS: dict[str, tuple[str, str]] = {
    "os._exit": (fn("os._exit(3)", "import os\n"), "exited"),
    "segfault": (fn("ctypes.string_at(0)", "import ctypes\n"), "worker crashed"),
    "cpu": (fn("while True:\n    pass"), "timeout"),
    "wall": (fn("time.sleep(60)\nreturn True", "import time\n"), "timeout"),
    "llm requests": (fn("for k in range(20):\n    try:\n        llm_judge(instruction, response, f'q{k}')\n"
                        "    except BaseException:\n        pass\nreturn True", "from llm_call import llm_judge\n"),
                     "llm budget"),
}


@pytest.mark.parametrize("kind", sorted(CRASHERS))
def test_a_crash_inside_a_row_is_charged_to_its_call_only(kind: str):
    crasher, cls = CRASHERS[kind]
    calls: list[CodeCall] = []
    expect: list[bool | None] = []
    for r in range(2):
        row = f"row{r}"
        calls += [CodeCall(COUNTS, "p", "abc", row=row), CodeCall(crasher, "p", "abc", row=row),
                  CodeCall(COUNTS, "p", "abcd", row=row), CodeCall(ASKS, "p", "yes", row=row),
                  CodeCall(HAS_OK, "p", "ok", row=row)]
        expect += [True, None, False, True, True]
        calls += [CodeCall(COUNTS, "q", "abc", row=f"other{r}"), CodeCall(ASKS, "q", "no", row=f"other{r}")]
        expect += [True, False]
    fill, fill_expect = fillers(14)
    with Sandbox(workers=2, limits=_LIMITS, llm=Oracle()) as sb:
        vs = sb.run(calls + fill)
    for k, (v, e) in enumerate(zip(vs, expect + fill_expect, strict=True)):
        if e is None:
            assert v.passed is None and error_class(v.error) == cls, (k, v)
        else:
            assert v.passed is e and v.error is None, (k, v)


# ---- 5. what one call leaves behind reaches its row at most -----------------------------------------------
#: a thread that outlives its call: it marks the shared modules, burns CPU and writes forged result frames
#: (`{"t": "res", "p": true}`) on the row's socket for a while
LEAVES_THREAD = fn(
    "def loop():\n"
    "    frame = json.dumps({'t': 'res', 'p': True, 'e': None}).encode()\n"
    "    for _ in range(200):\n"
    "        json._vi_row_mark = 'thread'\n"
    "        try:\n"
    "            os.write(S.fd, len(frame).to_bytes(4, 'big') + frame)\n"
    "        except OSError:\n"
    "            pass\n"
    "        t = time.time() + 0.005\n"
    "        while time.time() < t:\n"
    "            pass\n"
    "threading.Thread(target=loop, daemon=True).start()\n"
    "return False",
    _STATE + "import json, os, threading, time\n",
)
#: raises its own CPU soft limit to the row's hard limit (a later call of its row may get more CPU time)
RAISES_CPU_LIMIT = fn(
    "soft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))\n"
    "signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
    "return False",
    "import resource, signal\n",
)
SPINS = fn("while True:\n    pass")
#: False when anything of another call is visible in this process
UNTOUCHED = fn("return getattr(json, '_vi_row_mark', None) is None and len(response) == 3", "import json\n")


def test_what_a_call_leaves_running_reaches_no_other_row():
    # Inside the culprit's own row later calls may be affected (the forged frames can decide them, the
    # thread's CPU can time them out, the raised limit lets a spinning call run until the row's hard limit):
    # they share the process by design, so nothing is asserted about them. Every other row is untouched.
    calls: list[CodeCall] = []
    expect: list[bool | None] = []
    for r in range(3):
        calls += [CodeCall(LEAVES_THREAD, "p", "x", row=f"t{r}"), CodeCall(UNTOUCHED, "p", "abcd", row=f"t{r}"),
                  CodeCall(COUNTS, "p", "abcd", row=f"t{r}")]
        expect += [None, None, None]
        if r == 0:  # spinning until the row's hard limit costs a few CPU seconds: once is enough
            calls += [CodeCall(RAISES_CPU_LIMIT, "p", "x", row="c"), CodeCall(SPINS, "p", "x", row="c")]
            expect += [None, None]
        calls += [CodeCall(UNTOUCHED, "p", "abc", row=f"h{r}"), CodeCall(UNTOUCHED, "p", "abcd", row=f"h{r}"),
                  CodeCall(COUNTS, "p", "abcd", row=f"h{r}"), CodeCall(UNTOUCHED, "p", "abc")]
        expect += [True, False, False, True]
    fill, fill_expect = fillers(12)
    with Sandbox(workers=2, limits=SandboxLimits(cpu_seconds=1, wall_timeout_s=10.0)) as sb:
        vs = sb.run(calls + fill)
        again = sb.run([c for c, e in zip(calls, expect, strict=True) if e is not None] + fill)
    for k, (v, e) in enumerate(zip(vs, expect + fill_expect, strict=True)):
        if e is not None:
            assert v.passed is e and v.error is None, (k, v)
    assert [v.passed for v in again] == [e for e in expect if e is not None] + fill_expect
    spun = [v for c, v in zip(calls, vs, strict=False) if c.source == SPINS]
    assert all(v.passed is None for v in spun), spun  # it ends (at the row's hard limit), never passes



#: about 0.8 s of CPU time, then True: three of them are more than one call's allowance (cpu_seconds=1 gives
#: 1 to 2 s)
BURNS = fn("t = time.process_time() + 0.8\nwhile time.process_time() < t:\n    pass\nreturn True", "import time\n")


def test_each_call_of_a_row_has_its_own_cpu_allowance():
    calls = [CodeCall(BURNS, "p", str(k), row="r") for k in range(3)] + [CodeCall(SPINS, "p", "x", row="r"),
                                                                         CodeCall(COUNTS, "p", "abc", row="r")]
    fill, fill_expect = fillers(10)
    with Sandbox(workers=1, limits=SandboxLimits(cpu_seconds=1)) as sb:
        vs = sb.run(calls + fill)
    assert passed(vs[:3]) == [True] * 3, [v.error for v in vs[:3]]
    assert vs[3].passed is None and error_class(vs[3].error) == "timeout", vs[3]
    assert passed(vs[4:]) == [True] + fill_expect


#: three llm_judge questions: the most one call may ask under llm_max_requests=3
ASKS_THREE = fn("return all(llm_judge(instruction, response, f'q{k}') for k in range(3))", "from llm_call import llm_judge\n")


@pytest.mark.parametrize("waits", [False, True], ids=["deferred", "answered-while-waiting"])
def test_each_call_of_a_row_has_its_own_llm_budget(waits: bool):
    """Four calls of one row each ask the most questions a call may (12 in the row): every one is decided,
    whether its answers come by deferral and re-runs or while it waits."""
    calls = [CodeCall(ASKS_THREE, "p", r, row="r") for r in ("yes", "no", "yes!", "it says yes")]
    fill, fill_expect = fillers(10)
    kw: dict[str, Any] = {"llm_replays": 0, "llm_batch_size": 1} if waits else {}
    with Sandbox(workers=1, limits=SandboxLimits(llm_max_requests=3), llm=Oracle(), **kw) as sb:
        vs = sb.run(calls + fill)
    assert passed(vs) == [True, False, True, True] + fill_expect, [v.error for v in vs if v.error]


#: blocks 1.5 s without using CPU: two of them are more than one call's wall_timeout_s=2.5
SLEEPS = fn("time.sleep(1.5)\nreturn len(response) == 3", "import time\n")


def test_each_call_of_a_row_has_its_own_wall_clock_deadline():
    calls = [CodeCall(SLEEPS, "p", r, row="r") for r in ("abc", "ab", "abc")]
    fill, fill_expect = fillers(10)
    with Sandbox(workers=1, limits=SandboxLimits(wall_timeout_s=2.5)) as sb:
        vs = sb.run(calls + fill)
    assert passed(vs) == [True, False, True] + fill_expect, [v.error for v in vs if v.error]


# ---- found while writing these tests: each fails on the sandbox of commit 532e291 -------------------------
#: honest code that changes state the process keeps: a file it appends to in its cwd, the decimal context
APPENDS = fn("with open('log.txt', 'a') as f:\n    f.write(response + '\\n')\nwith open('log.txt') as f:\n"
             "    return f.read().splitlines() == [response]")
SETS_PRECISION = fn("decimal.getcontext().prec = 6\nreturn str(decimal.Decimal(1) / decimal.Decimal(7)) == '0.142857'",
                    "import decimal\n")
#: the decimal module's default context: 28 significant digits
DEFAULT_PRECISION = fn("return str(decimal.Decimal(1) / decimal.Decimal(7)) == '0.' + '142857' * 4 + '1429'",
                       "import decimal\n")
#: turns warnings into errors for the rest of the call, as a strict checker might
WARNINGS_ARE_ERRORS = fn("warnings.simplefilter('error')\nreturn True", "import warnings\n")
WARNS = fn("warnings.warn('deprecated phrasing')\nreturn 'ok' in response", "import warnings\n")


def test_honest_code_that_changes_process_state_gets_the_isolated_verdicts():
    """A row's calls share its process, but each must start from the state a call of its own would: the
    verdict of honest code must not depend on which calls of its row ran before it (nor, since the pool
    splits rows of small batches, on the batch's size). Every answer here is True by hand; in row mode the
    second APPENDS finds the first one's line, DEFAULT_PRECISION gets 6 digits, WARNS raises."""
    calls = []
    for r in range(3):
        calls += [CodeCall(APPENDS, "p", "a", row=f"r{r}"), CodeCall(APPENDS, "p", "b", row=f"r{r}"),
                  CodeCall(SETS_PRECISION, "p", "x", row=f"r{r}"), CodeCall(DEFAULT_PRECISION, "p", "x", row=f"r{r}"),
                  CodeCall(WARNINGS_ARE_ERRORS, "p", "x", row=f"r{r}"), CodeCall(WARNS, "p", "ok", row=f"r{r}")]
    fill, fill_expect = fillers(24)
    for mode in ("call", "row"):
        with Sandbox(workers=1, process_per=mode) as sb:
            vs = sb.run(calls + fill)
        assert passed(vs) == [True] * len(calls) + fill_expect, (mode, [(v.passed, v.error) for v in vs[:len(calls)]])


#: the value of the call's numpy.random: the error message carries it
NUMPY_DRAW = fn("raise ValueError(repr(float(numpy.random.rand())))", "import numpy\n")


def test_numpy_random_is_seeded_for_the_call_that_imports_it():
    """numpy.random is seeded from (code, prompt, response) for every call, also the first one that imports
    numpy in a worker (numpy is not preloaded): the same call draws the same number in any sandbox, in
    either mode. Before numpy is imported there is nothing to seed, so the importing call drew from the OS."""
    pytest.importorskip("numpy")
    calls = [CodeCall(NUMPY_DRAW, "p", f"response {k % 4}", row=f"r{k % 3}") for k in range(12)]
    fill, _ = fillers(12)
    runs = []
    for mode in ("call", "call", "row", "row"):
        with Sandbox(workers=1, process_per=mode) as sb:
            runs.append([v.error for v in sb.run(calls + fill)[: len(calls)]])
    assert all(error_class(e) == "raised" for e in runs[0]), runs[0]
    assert len(set(runs[0])) == 4  # four distinct (prompt, response) pairs, four draws
    assert runs[1:] == [runs[0]] * 3, runs


GARBAGE = fn("import os\nos.write(S.fd, b'\\x00\\x00\\x00\\x04\\xff\\xfe\\xfd\\xfc')\nreturn True", _STATE)
OVERSIZED = fn("import os\nos.write(S.fd, b'\\x7f\\xff\\xff\\xff')\nreturn True", _STATE)


@pytest.mark.parametrize(("culprit", "classes"), [(GARBAGE, ("sandbox error",)), (OVERSIZED, ("llm budget", "sandbox error"))],
                         ids=["garbage", "oversized"])
def test_a_bad_frame_read_with_the_previous_result_is_charged_to_its_sender(culprit: str, classes: tuple[str, ...]):
    """The culprit writes a bad frame as soon as it starts, right after the previous call of its row sent its
    result: when the scheduler reads both at once, the previous call's result must still count (it was
    charged with the bad frame: about 1 in 8 on an idle 2-core machine). Many rows, so that it happens."""
    calls: list[CodeCall] = []
    expect: list[bool | None] = []
    for r in range(20):
        calls += [CodeCall(COUNTS, "p", "abc", row=f"r{r}"), CodeCall(culprit, "p", "x", row=f"r{r}"),
                  CodeCall(COUNTS, "p", "ab", row=f"r{r}")]
        expect += [True, None, False]
    fill, fill_expect = fillers(20)
    with Sandbox(workers=1) as sb:
        for _ in range(3):
            vs = sb.run(calls + fill)
            for k, (v, e) in enumerate(zip(vs, expect + fill_expect, strict=True)):
                if e is None:
                    assert v.passed is None and error_class(v.error) in classes, (k, v)
                else:
                    assert v.passed is e and v.error is None, (k, v)


@pytest.mark.parametrize("row", [["r"], {"r": 1}, 1, True, 1.0, b"r"], ids=["list", "dict", "int", "bool", "float", "bytes"])
def test_a_row_key_that_is_not_a_string_is_that_items_bad_input(row: object):
    """CodeCall.row is a string (or None): anything else is that item's ``bad input`` naming the field, like
    the other fields; the run goes on. Accepted as keys, 1, True and 1.0 are one row (equal hashes), and an
    unhashable key (a list) made Sandbox.run raise TypeError for the whole batch."""
    fill, fill_expect = fillers(8)
    calls = [CodeCall(COUNTS, "p", "abc", row=row), *fill, CodeCall(COUNTS, "p", "abc", row="fine")]  # type: ignore[arg-type]
    with Sandbox(workers=1) as sb:
        vs = sb.run(calls)
    assert vs[0].passed is None and error_class(vs[0].error) == "bad input" and "CodeCall.row" in vs[0].error, vs[0]
    assert passed(vs[1:]) == fill_expect + [True]
