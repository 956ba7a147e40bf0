"""Scorer: one long-lived engine used concurrently; batched LLM relay; lifecycle; load-independent verdicts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from checkers.sandbox import CodeCall, Sandbox, SandboxLimits
from verifier import Verifier
from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult
from verifier.prompts import load_template
from verinstruct import Scorer
from verinstruct.convert import from_verif, row_to_instance
from verinstruct.schema import CodeCheck, Constraint, Instance, LLMCheck
from verinstruct.scoring import score_batch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
ROWS = [json.loads(line) for line in FIXTURES.read_text().splitlines()]
SAMPLE = [json.loads(line) for line in (ROOT / "examples" / "verinstruct_sample.jsonl").read_text().splitlines()]
LLM_ROWS = [r for r in ROWS if any("llm_" in f for f in r["functions"])]


class FakeBackend:
    """Answers No when the judged text contains 'BAD', else Yes, after ``latency`` seconds per call (any
    batch size); records the size of every batch."""

    kind = "fake"
    model = "fake-judge"

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.batches: list[int] = []

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        time.sleep(self.latency)
        self.batches.append(len(batch))
        return [GenResult("No" if any("BAD" in m["content"] for m in msgs) else "Yes") for msgs in batch]

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        """Log-probabilities that vary with the text (P(yes) anywhere in (0, 1)), low for 'BAD'."""
        time.sleep(self.latency)
        self.batches.append(len(batch))
        out = []
        for msgs in batch:
            text = "\n".join(m["content"] for m in msgs)
            ly, ln = -(len(text) % 7) / 3 - (3.0 if "BAD" in text else 0.0), -(len(text) % 5) / 3
            out.append(ScoreResult({c: ly if ("es" in c or "1" in c) else ln for c in candidates}))
        return out

    def close(self) -> None:
        pass


def _verifier(latency: float = 0.0) -> Verifier:
    return Verifier(backend=FakeBackend(latency), mode="generate", template=load_template("en"))


def _responses(tag: str) -> list[str]:
    """Fixture responses made distinct per caller, some judged BAD by the fake verifier."""
    return [f"{r['response']} [{tag}]" + (" BAD" if (k + len(tag)) % 3 == 0 else "") for k, r in enumerate(ROWS)]


def _summary(scored: Sequence) -> list:
    return [s.to_dict() for s in scored]


def _as_code(inst: Instance) -> Instance:
    """The instance with recognised llm code turned back into code checks (run in the sandbox)."""
    cons = tuple(Constraint(c.name, c.kind, c.text, CodeCheck(c.check.source), c.tag, c.text_source)
                 if isinstance(c.check, LLMCheck) and c.check.call else c for c in inst.constraints)
    return Instance(inst.id, inst.prompt, cons, inst.messages, inst.source)


INSTANCES = [from_verif(r) for r in ROWS]


def test_code_checks_and_llm_judging_of_one_batch_overlap() -> None:
    """The sandbox run and the soft-constraint judge call of one batch are in progress at the same time:
    each waits for the other to have started (sequential phases would leave one of them waiting in vain)."""
    code_started, soft_started = threading.Event(), threading.Event()
    saw: dict[str, bool] = {}

    class Watching(Verifier):
        def judge_batch(self, requests, granularity=None):  # type: ignore[no-untyped-def,override]
            if not soft_started.is_set():
                soft_started.set()
                saw["code while judging"] = code_started.wait(10)
            return Verifier.judge_batch(self, requests, granularity)

    v = Watching(backend=FakeBackend(), mode="generate", template=load_template("en"))
    src = "def check_following(instruction, response):\n    return 'ok' in response\n"
    inst = Instance("x", "task", (Constraint("h", "hard", "has ok", CodeCheck(src)),
                                  Constraint("s", "soft", "be kind", LLMCheck())))
    with Scorer(v, sandbox_workers=1) as scorer:
        box = scorer.sandbox
        run = box.run

        def watched_run(calls, llm=None):  # type: ignore[no-untyped-def]
            code_started.set()
            saw["judging while code"] = soft_started.wait(10)
            return run(calls, llm)

        box.run = watched_run  # type: ignore[method-assign]
        (s,) = scorer.score_batch([inst], ["ok fine"])
    assert saw == {"code while judging": True, "judging while code": True}
    assert [c.verdict.passed for c in s.constraints] == [True, True]


def test_llm_calls_of_dataset_code_reach_the_verifier_in_batches_with_the_same_verdicts() -> None:
    """Every row whose code calls llm_*: far fewer verifier calls than requests, and exactly the verdicts
    of the one-request-at-a-time path with code and LLM phases in sequence."""
    insts = [_as_code(from_verif(r)) for r in LLM_ROWS] * 4
    resps = [r["response"] + f" v{k}" + (" BAD" if k % 4 == 0 else "") for k, r in enumerate(LLM_ROWS * 4)]
    new_v = _verifier(latency=0.05)
    with Scorer(new_v, sandbox_workers=2) as scorer:
        new = scorer.score_batch(insts, resps)
    old_v = _verifier()
    with Sandbox(workers=2, llm=__import__("verifier").LLMBridge(old_v), llm_replays=0, llm_batch_size=1) as box:
        old = score_batch(insts, resps, sandbox=box, verifier=old_v, concurrent=False)
    assert _summary(new) == _summary(old)
    assert all(c.verdict.passed is not None for s in new for c in s.constraints)
    requests = new_v.stats.unique
    calls = len(new_v.backend.batches)  # type: ignore[attr-defined]
    assert requests >= 3 * calls and max(new_v.backend.batches) >= 10, new_v.backend.batches  # type: ignore[attr-defined]
    assert len(old_v.backend.batches) >= requests - 1  # type: ignore[attr-defined]


def test_recognised_llm_code_gives_the_verdicts_of_running_it_without_the_sandbox() -> None:
    """Fixture functions that only return llm_judge / llm_score with literal text become llm checks: the
    same decisions and P(yes) as running the code through the relay, and the sandbox never sees them."""
    insts = [from_verif(r) for r in LLM_ROWS]
    recognised = [c for i in insts for c in i.constraints if isinstance(c.check, LLMCheck) and c.check.call]
    assert {c.check.call for c in recognised} == {"llm_judge", "llm_score"}  # type: ignore[union-attr]
    resps = [r["response"] + (" BAD" if k % 3 == 0 else "") for k, r in enumerate(LLM_ROWS)]
    v = Verifier(backend=FakeBackend(), mode="score")
    with Scorer(v, sandbox_workers=2) as scorer:
        box = scorer.sandbox
        run, seen = box.run, []

        def recording_run(calls, llm=None):  # type: ignore[no-untyped-def]
            seen.extend(c.source for c in calls)
            return run(calls, llm)

        box.run = recording_run  # type: ignore[method-assign]
        direct = scorer.score_batch(insts, resps)
        assert not {c.check.source for c in recognised} & set(seen)  # type: ignore[union-attr]
        ran = scorer.score_batch([_as_code(i) for i in insts], resps)
    got = [[(c.verdict.passed, c.verdict.prob) for c in s.constraints] for s in direct]
    want = [[(c.verdict.passed, c.verdict.prob) for c in s.constraints] for s in ran]
    assert got == want
    probs = [p for row in got for _, p in row if p is not None]
    assert len(probs) >= len(recognised) and len({round(p, 6) for p in probs}) > 2


def test_sixteen_asyncio_tasks_each_get_their_own_results() -> None:
    tags = [f"task{k}" for k in range(16)]
    with Scorer(_verifier(), sandbox_workers=2) as scorer:
        expected = {t: _summary(scorer.score_batch(INSTANCES, _responses(t))) for t in tags}

        async def main() -> dict[str, list]:
            async def one(t: str) -> tuple[str, list]:
                return t, _summary(await scorer.ascore_batch(INSTANCES, _responses(t)))

            return dict(await asyncio.gather(*(one(t) for t in tags)))

        got = asyncio.run(main())
    assert got == expected
    assert len({json.dumps(v) for v in expected.values()}) > 1  # the tasks' inputs differ, so must their results


def test_many_threads_at_once_each_get_their_own_results() -> None:
    tags = [f"thread{k}" for k in range(8)]
    with Scorer(_verifier(), sandbox_workers=2) as scorer:
        expected = {t: _summary(scorer.score_batch(INSTANCES, _responses(t))) for t in tags}
        got: dict[str, list] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(tags))

        def one(t: str) -> None:
            try:
                barrier.wait()
                got[t] = _summary(scorer.score_batch(INSTANCES, _responses(t)))
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=one, args=(t,)) for t in tags]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert errors == [] and got == expected


SLEEPS = "import time\ndef check_following(instruction, response):\n    time.sleep(20)\n    return True\n"


def test_close_during_run_stops_it_and_leaves_no_process(descendants) -> None:
    before = descendants()
    scorer = Scorer(None, sandbox_workers=2)
    inst = Instance("x", "task", (Constraint("h", "hard", "sleeps", CodeCheck(SLEEPS)),))
    box = scorer.sandbox
    assert descendants() - before
    result: list = []
    th = threading.Thread(target=lambda: result.append(scorer.score_batch([inst] * 4, ["a", "b", "c", "d"])))
    th.start()
    time.sleep(1.5)  # the calls are running now
    t0 = time.monotonic()
    scorer.close()
    th.join(15)
    assert not th.is_alive() and time.monotonic() - t0 < 10
    assert descendants() - before == set()
    (scored,) = result
    assert {s.constraints[0].verdict.error for s in scored} == {"sandbox error: the sandbox was closed during the run"}
    with pytest.raises(RuntimeError, match="after close"):
        scorer.score_batch([inst], ["a"])
    with pytest.raises(RuntimeError, match="after close"):
        box.run([CodeCall(SLEEPS, "p", "r")])


def test_functional_form_wires_a_sandbox_built_without_llm() -> None:
    row = next(r for r in ROWS if r["id"] == "vi-001")
    v = _verifier()
    with Sandbox(workers=1) as box:
        (s,) = score_batch([from_verif(row)], [row["response"]], sandbox=box, verifier=v)
    assert [c.verdict.passed for c in s.constraints] == [True, True, True]
    assert v.stats.calls >= 1


def test_verifier_with_the_wrong_number_of_rows_gives_undecided_verdicts() -> None:
    class Short(Verifier):
        def judge_batch(self, requests, granularity=None):  # type: ignore[no-untyped-def,override]
            return Verifier.judge_batch(self, requests, granularity)[:-1]

    insts = [Instance(f"i{k}", "task", (Constraint("s", "soft", "be kind", LLMCheck()),)) for k in range(3)]
    v = Short(backend=FakeBackend(), mode="generate", template=load_template("en"))
    with Scorer(v) as scorer:
        out = scorer.score_batch(insts, ["a", "b", "c"])
    assert [s.constraints[0].verdict.passed for s in out] == [None] * 3
    assert out[0].constraints[0].verdict.error == "verifier failed: RuntimeError: 2 results for 3 requests"


def test_slow_verifier_does_not_time_out_llm_calling_checks() -> None:
    """5 s per verifier answer, far beyond the calls' 2 s wall-clock backstop: every LLM-calling check is
    decided, through the batched relay (no wait at all) and through a plain one-at-a-time callback (the
    wait is credited back)."""
    row = next(r for r in ROWS if r["id"] == "vi-001")
    insts = [_as_code(from_verif(row))] * 2  # its llm_judge code runs in the sandbox
    assert insts[0].constraints[2].check_type == "code"
    resps = [row["response"], row["response"] + " BAD"]
    limits = SandboxLimits(wall_timeout_s=2.0)
    with Scorer(_verifier(latency=5.0), sandbox_workers=1, limits=limits) as scorer:
        out = scorer.score_batch(insts, resps)
    assert [[c.verdict.passed for c in s.constraints] for s in out] == [[True, True, True], [True, True, False]]

    calls = [CodeCall(row["functions"][2], row["prompt"], r) for r in resps]

    def slow(name: str, args: tuple) -> bool:
        time.sleep(3.0)
        return "BAD" not in args[1]

    with Sandbox(workers=1, llm=slow, limits=limits, llm_replays=0) as box:
        vs = box.run(calls)
    assert [(v.passed, v.error) for v in vs] == [(True, None), (False, None)]


_BUSY = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


#: a check that computes for 1.2 s of its own CPU time: within the 2 s CPU limit however long that takes
CPU_HEAVY = ("import time\ndef check_following(instruction, response):\n    t0 = time.process_time()\n"
             "    while time.process_time() - t0 < 1.2:\n        pass\n    return len(response) > 0\n")


def test_verdicts_do_not_change_under_cpu_load() -> None:
    """The quick-start rows (fake verifier), plus two checks computing for 1.2 s of CPU each, scored while
    two busy-loop processes per core run give the verdicts of an idle machine (no wall-clock timeouts)."""
    heavy = Instance("heavy", "task", (Constraint("h", "hard", "computes", CodeCheck(CPU_HEAVY)),))
    insts = [row_to_instance(r, f"line {k}") for k, r in enumerate(SAMPLE, start=1)] + [heavy, heavy]
    resps = [r["response"] for r in SAMPLE] + ["a", "b"]

    def verdicts() -> list[tuple]:
        with Scorer(_verifier(), sandbox_workers=2) as scorer:
            return [(c.verdict.passed, c.verdict.error) for s in scorer.score_batch(insts, resps) for c in s.constraints]

    idle = verdicts()
    assert all(p is not None for p, _ in idle)
    busy = [subprocess.Popen([sys.executable, "-c", _BUSY.format(s=120)])
            for _ in range(2 * len(os.sched_getaffinity(0)))]
    try:
        time.sleep(0.5)
        loaded = [verdicts() for _ in range(2)]
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert loaded == [idle, idle]


def test_scorer_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        Scorer(mode="fast")
    with pytest.raises(ValueError, match="granularity"):
        Scorer(granularity="row")
    with pytest.raises(TypeError, match="spec string"):
        Scorer(_verifier(), base_url="http://x")
    with Scorer() as scorer:
        (s,) = scorer.score_batch([INSTANCES[0]], [ROWS[0]["response"]])
        assert s.id == INSTANCES[0].id


def test_scorer_names_verifier_mode_apart_from_checker_mode() -> None:
    from verinstruct import Scorer

    with pytest.raises(ValueError, match="verifier_mode='generate'"):
        Scorer("openai:judge", mode="generate", base_url="http://127.0.0.1:9/v1")
    with Scorer("openai:judge", verifier_mode="generate", base_url="http://127.0.0.1:9/v1") as s:
        assert s.verifier is not None and s.verifier.mode == "generate" and s.mode == "strict"
    with pytest.raises(TypeError, match="verifier_mode only apply"):
        Scorer(None, verifier_mode="generate")
