"""The relay's state machine (checkers.sandbox.relay.Gather) on its own: deferral and batching, the
fallback to waiting, per-call budgets. No processes: requests are fed as the scheduler would send them."""

from __future__ import annotations

from checkers.sandbox import LLMAnswer, SandboxLimits
from checkers.sandbox.relay import Gather


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def llm(name: str, args: tuple) -> object:
    return True


def gather(n: int = 4, replays: int = 16, clock: Clock | None = None, **limits: object) -> Gather:
    return Gather(llm, n, replays, None, 1, SandboxLimits(**limits), clock=clock or Clock())  # type: ignore[arg-type]


def ask(g: Gather, idx: int, q: str, w: object = "w") -> dict | None:
    return g.request(w, "llm_judge", ["p", "r", q], idx)


def answer_all(g: Gather, value: object = True) -> list:
    """Answer everything pending, as the relay thread would."""
    keys = list(g.pending)
    g.pending.clear()
    return g.absorb([(k, LLMAnswer(value)) for k in keys])


def test_unknown_question_defers_then_rerun_is_answered_at_once():
    g = gather()
    g.started(0)
    assert ask(g, 0, "a") == {"type": "llm_reply", "ok": False, "defer": True}
    assert g.deferred(0) is True
    assert g.ready() == []  # its answer is not in
    answer_all(g)
    assert g.ready() == [0]
    g.started(0)
    assert ask(g, 0, "a") == {"type": "llm_reply", "ok": True, "v": True}


def test_k_questions_in_a_row_take_k_plus_one_runs():
    g = gather()
    runs = 0
    for k in range(3):
        g.started(0)
        runs += 1
        for j in range(k):
            assert ask(g, 0, f"q{j}")["ok"] is True
        assert ask(g, 0, f"q{k}")["defer"] is True  # a new question after the known ones: still deferred
        g.deferred(0)
        answer_all(g)
        assert g.ready() == [0]
    g.started(0)
    runs += 1
    assert all(ask(g, 0, f"q{j}")["ok"] for j in range(3))
    assert runs == 4


def test_after_the_replays_the_call_waits_for_its_answer():
    g = gather(replays=1)
    g.started(0)
    ask(g, 0, "a")
    g.deferred(0)
    answer_all(g)
    g.ready()
    g.started(0)
    assert ask(g, 0, "a")["ok"] is True
    assert ask(g, 0, "b", w="worker") is None  # replays spent: wait
    assert g.blocked and answer_all(g) == [("worker", {"type": "llm_reply", "ok": True, "v": True})]


def test_a_rerun_that_asks_something_else_waits_instead_of_deferring_again():
    g = gather()
    g.started(0)
    ask(g, 0, "first run's question")
    g.deferred(0)
    answer_all(g)
    g.ready()
    g.started(0)
    assert ask(g, 0, "another question in its place", w="worker") is None  # not deterministic: wait
    assert g.reruns[0] == 1


def test_distinct_question_cap_names_the_limit_and_spares_other_calls():
    g = gather(llm_max_requests=3)
    g.started(0)
    g.started(1)
    replies = [ask(g, 0, f"q{k}") for k in range(5)]
    assert [r.get("defer") for r in replies[:3]] == [True, True, True]
    assert replies[3] == {"type": "llm_reply", "ok": False,
                          "e": "llm budget: more than 3 distinct llm_* requests (SandboxLimits.llm_max_requests)"}
    assert replies[4]["e"] == replies[3]["e"]  # stays ended
    assert g.expired(0) == replies[3]["e"]
    assert ask(g, 1, "q0")["defer"] is True and g.expired(1) is None
    assert ask(g, 0, "q0")["ok"] is False  # even a question it asked before


def test_byte_cap_counts_distinct_questions_over_reruns():
    g = gather(llm_max_bytes=100)
    g.started(0)
    assert ask(g, 0, "x" * 40)["defer"] is True
    g.deferred(0)
    answer_all(g)
    g.ready()
    g.started(0)
    assert ask(g, 0, "x" * 40)["ok"] is True  # the same question again costs nothing
    assert "llm_max_bytes" in ask(g, 0, "y" * 40)["e"]


def test_total_budget_runs_from_the_first_question_and_covers_parked_calls():
    clock = Clock()
    g = gather(clock=clock, call_budget_s=10.0)
    g.started(0)
    g.started(1)
    clock.t += 50  # a call that asks nothing has no budget running
    assert g.expired(1) is None
    ask(g, 0, "a")
    g.deferred(0)
    clock.t += 5
    assert g.expire_parked() == []
    assert g.next_deadline([0]) == 160.0
    clock.t += 6
    (idx, err), = g.expire_parked()
    assert idx == 0 and "call_budget_s" in err and err.startswith("timeout:")
    assert 0 not in g.parked


def test_requests_of_no_known_call_are_refused():
    g = gather(n=2)
    assert g.request("w", "llm_judge", ["p", "r", "q"], 7)["ok"] is False
    assert g.request("w", "llm_judge", ["p", "r", "q"], "0")["ok"] is False
    assert g.request("w", "rm -rf", ["p"], 0)["e"] == "malformed LLM request"


def test_no_callback_means_needs_llm():
    g = Gather(None, 1, 16, None)
    assert g.request("w", "llm_judge", ["p", "r", "q"], 0) == {"type": "llm_reply", "ok": False, "needs": True}


def test_a_dead_worker_blames_no_call_of_several_and_a_lone_call_on_its_second_strike():
    from collections import deque

    from checkers.sandbox.pool import blame

    out: list = [None] * 8
    todo: deque = deque([[7]])
    strikes: dict = {}
    blame([2, 3, 4], out, todo, "sandbox worker exited (code -9)", strikes)
    assert out == [None] * 8 and list(todo) == [[2], [3], [4], [7]]  # each re-run alone, first
    blame([3], out, todo, "sandbox worker exited (code -9)", strikes)
    assert out[3] is None and todo[0] == [3]  # once more: the worker may have died of something else
    blame([3], out, todo, "sandbox worker exited (code -9)", strikes)
    assert out[3].passed is None and out[3].error == "worker crashed: sandbox worker exited (code -9)"
    blame([4], out, todo, "worker stopped answering", strikes, timeout=True)
    blame([4], out, todo, "worker stopped answering", strikes, timeout=True)
    assert out[4].error == "timeout: worker stopped answering"
