"""Normal behaviour of the dataset-code sandbox: verdicts, prompt passing, caching, LLM routing, errors."""

from __future__ import annotations

import pytest

from checkers.sandbox import ERROR_CLASSES, CodeCall, Sandbox, SandboxLimits, error_class

WORDS_LT_5 = "def check_following(instruction, response):\n    return len(response.split()) < 5\n"
ECHO_PROMPT = "def check_following(instruction, response):\n    return instruction == 'Write a haiku.'\n"
LLM_JUDGE = (
    "from llm_call import llm_judge, llm_extract, llm_score\n"
    "def check_following(instruction, response):\n"
    "    return llm_judge(instruction, response, 'Is it polite?')\n"
)
LLM_EXTRACT = (
    "from llm_call import llm_extract\n"
    "def check_following(instruction, response):\n"
    "    return llm_extract(instruction, response, 'the title') == 'Spring'\n"
)
SWALLOWS_LLM = (
    "from llm_call import llm_judge\n"
    "def check_following(instruction, response):\n"
    "    try:\n        return llm_judge(instruction, response, 'x')\n    except BaseException:\n        return False\n"
)
COUNTER = "n = 0\ndef check_following(instruction, response):\n    global n\n    n += 1\n    return n == 1\n"


def ret(expr: str) -> str:
    return f"def check_following(instruction, response):\n    return {expr}\n"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2) as s:
        yield s


def test_verdicts_in_order(sb):
    calls = [CodeCall(WORDS_LT_5, "p", r) for r in ("a b", "a b c d e f", "", "one two three four five")]
    assert [v.passed for v in sb.run(calls)] == [True, False, True, False]
    assert all(v.error is None for v in sb.run(calls))


def test_prompt_is_passed_not_the_word_instruction(sb):
    v1, v2 = sb.run([CodeCall(ECHO_PROMPT, "Write a haiku.", "x"), CodeCall(ECHO_PROMPT, "instruction", "x")])
    assert (v1.passed, v2.passed) == (True, False)


def test_bool_like_returns(sb):
    calls = [CodeCall(ret(e), "p", "r") for e in ("1", "0", "True", "2", "'yes'", "None", "[True]", "1.0")]
    vs = sb.run(calls)
    assert [v.passed for v in vs[:3]] == [True, False, True]
    for v in vs[3:]:
        assert v.passed is None and error_class(v.error) == "bad return", v
    assert "returned int 2" in vs[3].error and "returned str 'yes'" in vs[4].error and "returned NoneType" in vs[5].error


def test_numpy_bool_accepted(sb):
    pytest.importorskip("numpy")
    vs = sb.run([CodeCall("import numpy as np\n" + ret("np.bool_(len(response) > 1)"), "p", r) for r in ("ab", "a")])
    assert [v.passed for v in vs] == [True, False]


def test_errors_are_classified(sb):
    calls = [
        CodeCall("def check_following(instruction, response)\n    return True\n", "p", "r"),
        CodeCall("def other(a, b):\n    return True\n", "p", "r"),
        CodeCall("check_following = 3\n", "p", "r"),
        CodeCall("import not_a_module_xyz\n" + ret("True"), "p", "r"),
        CodeCall(ret("int('x')"), "p", "r"),
        CodeCall("raise KeyError('top')\n", "p", "r"),
        CodeCall(ret("True"), None, "r"),  # type: ignore[arg-type]
    ]
    vs = sb.run(calls)
    classes = [error_class(v.error) for v in vs]
    assert classes == ["syntax error", "no check_following", "no check_following", "import error", "raised", "raised",
                       "bad input"]
    assert all(v.passed is None for v in vs)
    assert "not_a_module_xyz" in vs[3].error and vs[4].error.startswith("raised ValueError: invalid literal")
    assert "item 6" in vs[6].error and "prompt" in vs[6].error
    assert all(c in ERROR_CLASSES for c in classes)


def test_llm_without_callback_needs_verifier(sb):
    vs = sb.run([CodeCall(LLM_JUDGE, "p", "r"), CodeCall(SWALLOWS_LLM, "p", "r")])
    for v in vs:
        assert v.passed is None and error_class(v.error) == "needs LLM verifier", v
    assert "llm_judge" in vs[0].error


def test_llm_callback_routing():
    seen: list[tuple[str, tuple]] = []

    def llm(name: str, args: tuple):
        seen.append((name, args))
        if name == "llm_judge":
            return "please" in args[1]
        if name == "llm_extract":
            return "Spring" if "spring" in args[1] else ""
        raise AssertionError(name)

    calls = [CodeCall(LLM_JUDGE, "Be polite.", "please sit"), CodeCall(LLM_JUDGE, "Be polite.", "sit"),
             CodeCall(LLM_EXTRACT, "Title it.", "spring poem"), CodeCall(WORDS_LT_5, "p", "a")]
    with Sandbox(workers=2, llm=llm) as s:
        vs = s.run(calls)
    assert [v.passed for v in vs] == [True, False, True, True]
    assert ("llm_judge", ("Be polite.", "please sit", "Is it polite?")) in seen
    assert ("llm_extract", ("Title it.", "spring poem", "the title")) in seen


def test_llm_callback_error_is_undecided():
    def llm(name: str, args: tuple):
        raise ValueError("verifier down")

    with Sandbox(workers=1, llm=llm) as s:
        (v,) = s.run([CodeCall(LLM_JUDGE, "p", "r")])
    assert v.passed is None and error_class(v.error) == "llm error" and "verifier down" in v.error


def test_each_call_gets_fresh_globals_and_compiles_once(sb):
    # module-level state is re-created per call: every call sees n == 1
    vs = sb.run([CodeCall(COUNTER, "p", str(i)) for i in range(20)])
    assert [v.passed for v in vs] == [True] * 20


def test_compile_cache_keyed_by_source():
    # a source compiled once is reused: a later batch with the same source still works, and a different
    # source with the same function name is not confused with it
    with Sandbox(workers=1) as s:
        a = s.run([CodeCall(ret("True"), "p", "r")] * 3)
        b = s.run([CodeCall(ret("False"), "p", "r")] * 3 + [CodeCall(ret("True"), "p", "r")])
    assert [v.passed for v in a] == [True] * 3
    assert [v.passed for v in b] == [False, False, False, True]


def test_pool_reused_across_batches_and_close_idempotent():
    s = Sandbox(workers=2)
    pids = [w.proc.pid for w in s._pool]
    for _ in range(3):
        assert [v.passed for v in s.run([CodeCall(WORDS_LT_5, "p", "a")] * 10)] == [True] * 10
    assert sorted(w.proc.pid for w in s._pool) == sorted(pids)
    assert s.run([]) == []
    s.close()
    s.close()
    with pytest.raises(RuntimeError):
        s.run([CodeCall(WORDS_LT_5, "p", "a")])


def test_timeout_does_not_disturb_neighbours():
    loop = "def check_following(instruction, response):\n    while True:\n        pass\n"
    calls = [CodeCall(WORDS_LT_5, "p", "a"), CodeCall(loop, "p", "a"), CodeCall(WORDS_LT_5, "p", "a b c d e f g")]
    with Sandbox(workers=1, limits=SandboxLimits(wall_timeout_s=0.5)) as s:
        vs = s.run(calls)
    assert [v.passed for v in vs] == [True, None, False]
    assert vs[1].error == "timeout: after 0.5s wall clock"


def test_isolation_report(sb):
    iso = sb.isolation
    assert iso["workers"] == 2 and iso["limits"]["wall_timeout_s"] == 30.0
    for key in ("namespaces", "landlock", "seccomp", "privileges", "probe"):
        assert key in iso


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers"):
        Sandbox(workers=0)
    with pytest.raises(ValueError, match="wall_timeout_s"):
        SandboxLimits(wall_timeout_s=0)


def test_slow_llm_callback_does_not_starve_other_workers(monkeypatch):
    """A slow, non-thread-safe plain LLM callback (2.5 s per call, longer than the 2 s wall clock) while other
    workers run pure code: every verdict is decided and right, no call or worker times out, the callback is
    never entered twice at once, and a request asked twice in the run is answered once."""
    import threading
    import time

    from checkers.sandbox import pool

    monkeypatch.setattr(pool, "_BACKSTOP_SLACK_S", 1.0)  # a tight parent backstop: callback time must not eat it
    active, peak, seen = [0], [0], []
    lock = threading.Lock()

    def llm(name: str, args: tuple):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(2.5)
        with lock:
            active[0] -= 1
            seen.append(args)
        return "yes" in args[1]

    twice = ("from llm_call import llm_judge\ndef check_following(instruction, response):\n"
             "    return llm_judge(instruction, response, 'a') and llm_judge(instruction, response, 'b')\n")
    llm_sources = [LLM_JUDGE, twice, LLM_JUDGE.replace("polite", "kind")]
    llm_items = (20, 21, 22, 23, 100, 101)  # several workers ask at once
    calls, expect = [], []
    for i in range(200):
        if i in llm_items:
            src = llm_sources[i % 3] + f"# item {i}\n"  # its own source, so its own chunk
            resp = "yes" if i % 2 or i % 3 == 1 else "no"  # the source that asks twice gets "yes"
            calls.append(CodeCall(src, "p", resp))
            expect.append(resp == "yes")
        else:
            n = i // 5 % 9
            calls.append(CodeCall(ret(f"len(response) == {n}") + f"# group {i // 5}\n", "p", "x" * (i % 7)))
            expect.append(i % 7 == n)
    with Sandbox(workers=4, llm=llm, limits=SandboxLimits(wall_timeout_s=2.0), chunk_size=1) as s:
        vs = s.run(calls)
    assert [v.error for v in vs] == [None] * len(calls)
    assert [v.passed for v in vs] == expect
    assert peak[0] == 1
    # 8 requests, 5 distinct: (yes, a), (yes, b), (yes, polite), (yes, kind), (no, kind)
    assert sorted(seen) == sorted({a for a in seen}) and len(seen) == 5


class _BatchLLM:
    """A batch-capable callback that records the size of every batch (and is never entered twice at once)."""

    def __init__(self, delay: float = 0.2) -> None:
        import threading

        self.delay, self.batches, self.active, self.lock = delay, [], 0, threading.Lock()

    @staticmethod
    def value(name: str, args: tuple):
        return "yes" in args[1] if name == "llm_judge" else "Spring"

    def __call__(self, name: str, args: tuple):
        return self.value(name, args)

    def answer_batch(self, requests):
        import time

        from checkers.sandbox import LLMAnswer

        with self.lock:
            self.active += 1
            assert self.active == 1
        time.sleep(self.delay)
        self.batches.append(len(requests))
        with self.lock:
            self.active -= 1
        return [LLMAnswer(self.value(n, a), prob=0.9 if self.value(n, a) is True else 0.2) for n, a in requests]


TWICE = ("from llm_call import llm_judge\ndef check_following(instruction, response):\n"
         "    first = llm_judge(instruction, response, 'a')\n"
         "    return llm_judge(instruction, response, 'b' if first else 'c') or len(response) > 40\n")


def _llm_calls(n: int) -> list[CodeCall]:
    calls = []
    for i in range(n):
        resp = ("yes " if i % 3 else "no ") + "x" * (i % 50)
        calls.append(CodeCall([LLM_JUDGE, TWICE, SWALLOWS_LLM][i % 3], f"prompt {i % 5}", resp))
    return calls


def test_llm_requests_of_a_whole_run_reach_the_verifier_in_batches():
    """Requests from every call of a run are gathered into a few batches (not one call per request), and the
    verdicts equal those of answering one request at a time while each call waits."""
    calls = _llm_calls(96)
    batch = _BatchLLM()
    with Sandbox(workers=2, llm=batch) as s:
        got = s.run(calls)
    one = _BatchLLM(delay=0.0)
    with Sandbox(workers=2, llm=one.__call__, llm_replays=0, llm_batch_size=1) as s:
        ref = s.run(calls)
    assert [(v.passed, v.error) for v in got] == [(v.passed, v.error) for v in ref]
    assert all(v.error is None for v in got)
    distinct = len({(c.prompt, c.response, q) for c in calls for q in ("a", "b", "c", "Is it polite?", "x")
                    if (c.source is LLM_JUDGE) == (q == "Is it polite?") and (c.source is SWALLOWS_LLM) == (q == "x")
                    and not (c.source is TWICE and q == ("c" if "yes" in c.response else "b"))})
    assert sum(batch.batches) == distinct  # each distinct request asked once
    assert len(batch.batches) <= 8 and max(batch.batches) >= 16, batch.batches


def test_verdict_that_is_one_llm_answer_keeps_its_prob():
    with Sandbox(workers=1, llm=_BatchLLM(delay=0.0)) as s:
        vs = s.run([CodeCall(LLM_JUDGE, "p", "yes"), CodeCall(LLM_JUDGE, "p", "no"), CodeCall(TWICE, "p", "yes"),
                    CodeCall(ret("not __import__('llm_call').llm_judge(instruction, response, 'q')"), "p", "yes")])
    assert [(v.passed, v.prob) for v in vs] == [(True, 0.9), (False, 0.2), (True, None), (False, None)]


def test_a_forked_child_never_closes_the_parents_workers(sb):
    """TRL/accelerate and user code fork: the child's copy of the Sandbox is dropped (its finaliser runs) and
    its run() refuses at once, while the parent's workers and folders stay intact and keep answering."""
    import gc
    import os

    assert [v.passed for v in sb.run([CodeCall(WORDS_LT_5, "p", "a b")])] == [True]
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            try:
                sb.run([CodeCall(WORDS_LT_5, "p", "a b")])
            except RuntimeError as e:
                code = 0 if "forked child" in str(e) else 3
            sb.close()  # what __del__ does when the child drops its copy
            gc.collect()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [v.passed for v in sb.run([CodeCall(WORDS_LT_5, "p", r) for r in ("a b", "a b c d e f")])] == [True, False]
