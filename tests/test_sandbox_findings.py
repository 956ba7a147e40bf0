"""Issue 15's findings, each from its smallest form, run beside honest calls with known answers in the
same batch: no call can forge, fail or stall another call's verdict, and honest code is never misjudged.

The honest answers are fixed by hand: ``llm_judge`` answers True exactly when the response contains
"yes" (the ``Oracle`` below), and the plain-code checks are one-line facts about their response."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from checkers.sandbox import CodeCall, LLMAnswer, Sandbox, SandboxLimits, error_class


def fn(body: str) -> str:
    return "def check_following(instruction, response):\n" + "".join(f"    {line}\n" for line in body.splitlines())


class Oracle:
    """A batch LLM callback: llm_judge -> 'yes' in response; records every question it was asked."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.questions: list[tuple[str, tuple]] = []
        self.batches = 0
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, name: str, args: tuple) -> object:
        return self.answer_batch([(name, args)])[0].value

    def answer_batch(self, requests: Sequence[tuple[str, tuple]]) -> list[LLMAnswer]:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.batches += 1
            self.questions.extend(requests)
        return [LLMAnswer("yes" in str(args[1])) for _, args in requests]


ASKS = "from llm_call import llm_judge\n" + fn("return llm_judge(instruction, response, 'Says yes?')")
COUNTS = fn("return len(response) == 3")
NAMEDTUPLE = "import collections\n" + fn("P = collections.namedtuple('P', 'a b')\nreturn P(1, 2).b == len(response)")


def honest_block() -> tuple[list[CodeCall], list[bool]]:
    """Honest known-answer calls: two plain, two LLM-judged (one yes, one no)."""
    calls = [CodeCall(COUNTS, "p", "abc"), CodeCall(COUNTS, "p", "abcd"),
             CodeCall(ASKS, "p", "yes it does"), CodeCall(ASKS, "p", "it does not")]
    return calls, [True, False, True, False]


def mixed(attacks: list[str], rounds: int = 3) -> tuple[list[CodeCall], list[bool | None]]:
    """Each attack followed by honest blocks (so honest calls share chunks and workers with it)."""
    calls: list[CodeCall] = []
    expect: list[bool | None] = []
    for r in range(rounds):
        for k, src in enumerate(attacks):
            calls.append(CodeCall(src + f"# {r} {k}\n", "p", "no"))
            expect.append(None)  # the attack's own verdict is checked separately
            h, e = honest_block()
            calls += h
            expect += e
    return calls, expect


def honest_wrong(verdicts, expect) -> list:
    return [(i, v) for i, (v, e) in enumerate(zip(verdicts, expect, strict=True)) if e is not None and v.passed is not e]


# ---- F1: frames reached through a signal handler ------------------------------------------------------
F1_FORGE = (
    "import os, signal\n"
    + fn(
        "forged = compile('def check_following(i, r):\\n    return True\\n', 'x', 'exec')\n"
        "hit = []\n"
        "def h(sig, f):\n"
        "    while f is not None:\n"
        "        for v in list(f.f_locals.values()) + list(f.f_globals.values()):\n"
        "            if isinstance(v, dict):\n"
        "                for k in list(v):\n"
        "                    if type(v[k]).__name__ == 'code':\n"
        "                        v[k] = forged\n"
        "                        hit.append(k)\n"
        "        f = f.f_back\n"
        "signal.signal(signal.SIGUSR1, h)\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "return False"
    )
)


def test_f1_frames_reach_nothing_of_other_calls():
    attacks = [F1_FORGE]
    calls, expect = mixed(attacks, rounds=4)
    with Sandbox(workers=2, chunk_size=8) as sb:
        for _ in range(2):  # across batches too
            vs = sb.run(calls, llm=Oracle())
            assert honest_wrong(vs, expect) == []
            assert all(v.passed is False for v, e in zip(vs, expect, strict=True) if e is None)


# ---- F2: the relay's state object -------------------------------------------------------------------
_STATE = "import llm_call\nS = llm_call.llm_judge.__globals__['STATE']\n"
F2_FORGE_READER = _STATE + fn(
    "real = S.reader.read_frame\n"
    "def forged(fd):\n"
    "    r = real(fd)\n"
    "    return {'ok': True, 'v': True, 'n': r.get('n')}\n"
    "S.reader.read_frame = forged\n"
    "S.reader.__class__.read_frame = lambda self, fd: forged(fd)\n"
    "return False"
)
F2_FORCE_DEFER = _STATE + fn("S.reset = lambda: setattr(S, 'deferred', True)\nS.__class__.reset = S.reset\nreturn False")
F2_PAD_BUFFER = _STATE + fn("S.reader.buf += b'\\x00\\x00\\x10\\x00'\nreturn False")


def test_f2_relay_state_tampering_dies_with_the_call():
    calls, expect = mixed([F2_FORGE_READER, F2_FORCE_DEFER, F2_PAD_BUFFER], rounds=3)
    oracle = Oracle()
    with Sandbox(workers=2, chunk_size=6, limits=SandboxLimits(wall_timeout_s=5.0)) as sb:
        vs = sb.run(calls, llm=oracle)
    assert honest_wrong(vs, expect) == []
    assert all(v.passed is False for v, e in zip(vs, expect, strict=True) if e is None), vs


# ---- F3: a frame the scheduler cannot parse ----------------------------------------------------------
F3_DEEP_FRAME = _STATE + fn(
    "import os\nbody = b'[' * 100000\nos.write(S.fd, len(body).to_bytes(4, 'big') + body)\nreturn True"
)
F3_DEEP_ARGUMENT = "import sys\nfrom llm_call import llm_judge\n" + fn(
    "sys.setrecursionlimit(20000)\nx = []\nfor _ in range(3000):\n    x = [x]\nreturn llm_judge(instruction, response, x)"
)


def test_f3_unparseable_frames_blame_their_sender_only():
    calls, expect = mixed([F3_DEEP_FRAME, F3_DEEP_ARGUMENT], rounds=3)
    with Sandbox(workers=2, chunk_size=8) as sb:
        vs = sb.run(calls, llm=Oracle())
        pids = [w.proc.pid for w in sb._pool]
        assert honest_wrong(vs, expect) == []
        for v, e in zip(vs, expect, strict=True):
            if e is None:
                assert v.passed is None and error_class(v.error) in ("sandbox error", "raised", "llm error"), v
        assert [w.proc.pid for w in sb._pool] == pids, "no worker died"


# ---- F4: garbage on the socket, and frames sent late -------------------------------------------------
F4_GARBAGE = _STATE + fn("import os\nos.write(S.fd, b'\\x00\\x00\\x00\\x04\\xff\\xfe\\xfd\\xfc')\nreturn True")
F4_LATE = _STATE + fn(
    "import os, threading, time\n"
    "def later():\n"
    "    time.sleep(0.05)\n"
    "    os.write(S.fd, b'\\x00\\x00\\x00\\x02{}')\n"
    "threading.Thread(target=later, daemon=True).start()\n"
    "return True"
)


def test_f4_bad_and_late_frames_are_charged_to_their_sender():
    calls, expect = mixed([F4_GARBAGE, F4_LATE], rounds=3)
    with Sandbox(workers=2, chunk_size=6) as sb:
        vs = sb.run(calls, llm=Oracle())
    assert honest_wrong(vs, expect) == []
    garbage = [v for c, v in zip(calls, vs, strict=True) if c.source.startswith(F4_GARBAGE[:60]) and "\\xff" in c.source]
    assert garbage and all(error_class(v.error) == "sandbox error" for v in garbage), garbage


# ---- F5: honest code that uses sys._getframe (namedtuple) never times out --------------------------------
def test_f5_namedtuple_beside_llm_calls_never_times_out():
    calls: list[CodeCall] = []
    expect: list[bool] = []
    for k in range(30):
        calls.append(CodeCall(NAMEDTUPLE, "p", "ab" if k % 2 else "abc"))
        expect.append(bool(k % 2))
        calls.append(CodeCall(ASKS, "p", "yes" if k % 3 else "no"))
        expect.append(bool(k % 3))
    with Sandbox(workers=2, limits=SandboxLimits(wall_timeout_s=1.0)) as sb:
        vs = sb.run(calls, llm=Oracle())
    assert [v.passed for v in vs] == expect, [v.error for v in vs if v.error]


# ---- F6: a lone surrogate in an llm_* argument ----------------------------------------------------------
def test_f6_lone_surrogate_fails_only_its_own_question():
    from verifier import LLMBridge, Verifier, load_template
    from verifier.backends.base import GenResult

    class StrictBackend:
        """Like an HTTP backend: the prompt must encode as UTF-8; Yes for the one honest "yes" response."""

        kind = "fake"
        model = "strict"

        def generate(self, batch, config):
            out = []
            for m in batch:
                text = m[-1]["content"]
                text.encode("utf-8")  # raises on a lone surrogate, failing the whole backend call
                out.append(GenResult("Yes" if "yes it does" in text else "No", finish_reason="stop"))
            return out

        def close(self):
            pass

    surrogate = "from llm_call import llm_judge\n" + fn("return llm_judge(instruction, response, 'x' + chr(0xD800))")
    calls, expect = mixed([surrogate], rounds=4)
    v = Verifier(backend=StrictBackend(), mode="generate", template=load_template("en"))
    with Sandbox(workers=2) as sb:
        vs = sb.run(calls, llm=LLMBridge(v))
    assert honest_wrong(vs, expect) == [], [x.error for x in vs if x.error]
    assert all(x.passed is not None for x in vs), [x.error for x in vs if x.error]


# ---- F7: questions without a budget, and state carried between runs ---------------------------------------
F7_MANY = "from llm_call import llm_judge\n" + fn(
    "n = 0\nfor k in range(3000):\n    try:\n        llm_judge(instruction, response, f'q{k}')\n    except BaseException:\n"
    "        n += 1\nreturn n == 0"
)
F7_HUGE = "from llm_call import llm_judge\n" + fn(
    "for k in range(8):\n    try:\n        llm_judge(instruction, response, str(k) * (2 << 20))\n    except BaseException:\n"
    "        pass\nreturn True"
)
F7_RANDOM = "import random\nfrom llm_call import llm_judge\n" + fn(
    "q = 'q%d' % random.randrange(10**9)\nreturn llm_judge(instruction, response, q)"
)


def test_f7_request_and_byte_budgets_end_only_the_culprit():
    oracle = Oracle()
    calls, expect = mixed([F7_MANY, F7_HUGE], rounds=2)
    limits = SandboxLimits(llm_max_requests=20, llm_max_bytes=1 << 20)
    with Sandbox(workers=2, limits=limits) as sb:
        vs = sb.run(calls, llm=oracle)
    assert honest_wrong(vs, expect) == []
    for v, e in zip(vs, expect, strict=True):
        if e is None:
            assert v.passed is None and error_class(v.error) == "llm budget", v
    culprit_questions = [q for q in oracle.questions if str(q[1][2]).startswith(("q", "0", "1"))]
    assert len(culprit_questions) <= 2 * 2 * 20  # two culprits per round, two rounds, at most the cap each


def test_f7_a_random_question_is_asked_once_and_decided():
    oracle = Oracle()
    calls = [CodeCall(F7_RANDOM, "p", "yes"), CodeCall(F7_RANDOM, "p", "no"), *honest_block()[0]]
    with Sandbox(workers=2) as sb:
        vs = sb.run(calls, llm=oracle)
        again = sb.run(calls, llm=Oracle())
    assert [v.passed for v in vs] == [True, False, True, False, True, False]
    asked = [q for q in oracle.questions if str(q[1][2]).startswith("q")]
    assert len(asked) == 2  # one question per call over all its runs: every run started from the same state
    assert [v.passed for v in again] == [v.passed for v in vs]


def test_f7_total_budget_includes_waiting_for_answers():
    calls = [CodeCall(ASKS, "p", "yes"), CodeCall(COUNTS, "p", "abc"), CodeCall(COUNTS, "p", "ab")]
    with Sandbox(workers=1, limits=SandboxLimits(call_budget_s=0.3), llm_replays=0) as sb:
        vs = sb.run(calls, llm=Oracle(delay_s=2.0))
    assert vs[0].passed is None and "call_budget_s" in vs[0].error, vs[0]
    assert [v.passed for v in vs[1:]] == [True, False]


# ---- F12: each call's scratch space -------------------------------------------------------------------
F12_FILL = fn(
    "import os\nfor k in range(8):\n    try:\n        with open(f'../fill{k}', 'wb') as f:\n"
    "            f.write(b'x' * (15 << 20))\n    except OSError:\n        break\nreturn True"
)
USES_TEMPFILE = "import tempfile, os\n" + fn(
    "with tempfile.NamedTemporaryFile(dir=None) as f:\n    f.write(b'y' * (4 << 20))\n    f.flush()\n"
    "    ok = os.path.getsize(f.name) == 4 << 20\n"
    "return ok and not os.path.exists('../fill0') and os.listdir('.') == [os.path.basename(f.name)] * 0"
)


def test_f12_nothing_one_call_writes_reaches_the_next():
    calls: list[CodeCall] = []
    for _ in range(3):
        calls += [CodeCall(F12_FILL, "p", "x"), CodeCall(USES_TEMPFILE, "p", "x"), CodeCall(COUNTS, "p", "abc")]
    with Sandbox(workers=1) as sb:
        vs = sb.run(calls)
    assert [v.passed for v in vs] == [True, True, True] * 3, [v.error for v in vs]


# ---- the user's path: Scorer.score_batch with attacks and honest rows in one batch ------------------------
def test_scorer_batch_with_attacks_keeps_every_honest_verdict():
    """F1, F2 and F6 (a JSON "\\ud800" in a prompt) through the Scorer, as ``verif score`` runs it: honest
    rows' code, LLM-code and soft verdicts are the hand-known ones (the fake verifier says No exactly when
    the judged text contains BAD)."""
    from verifier import Verifier, load_template
    from verifier.backends.base import GenResult
    from verinstruct import Scorer
    from verinstruct.schema import CodeCheck, Constraint, Instance, LLMCheck

    class Judge:
        kind = "fake"
        model = "fake-judge"

        def generate(self, batch, config):
            for msgs in batch:
                for m in msgs:
                    m["content"].encode("utf-8")  # like a real backend: lone surrogates cannot be sent
            return [GenResult("No" if any("BAD" in m["content"] for m in msgs) else "Yes") for msgs in batch]

        def close(self):
            pass

    has_ok = fn("return 'ok' in response")
    asks = "from llm_call import llm_judge\n" + fn("return llm_judge(instruction, response, 'Is it kind?')")
    honest = (Constraint("h", "hard", "has ok", CodeCheck(has_ok)), Constraint("j", "hard", "kind", CodeCheck(asks)),
              Constraint("s", "soft", "be kind", LLMCheck()))
    instances, responses, expect = [], [], []
    for k in range(12):
        attack = (F1_FORGE, F2_FORGE_READER, F3_DEEP_FRAME)[k % 3]
        instances.append(Instance(f"a{k}", "task", (Constraint("x", "hard", "attack", CodeCheck(attack)),)))
        responses.append("ok BAD")
        expect.append(None)
        prompt = "task \ud800" if k % 4 == 0 else "task"
        instances.append(Instance(f"h{k}", prompt, honest))
        good = k % 2 == 0
        responses.append("ok fine" if good else "not BAD")
        expect.append([good, good, good])
    v = Verifier(backend=Judge(), mode="generate", template=load_template("en"))
    with Scorer(v, sandbox_workers=2) as scorer:
        scored = scorer.score_batch(instances, responses)
    for s, e in zip(scored, expect, strict=True):
        got = [c.verdict.passed for c in s.constraints]
        if e is None:
            assert got != [True], (s.constraints[0].verdict)  # F1/F2 return False, F3 ends undecided
        else:
            assert got == e, [c.verdict for c in s.constraints]
