"""Verifier with an in-memory fake backend: verdicts, per-item errors, granularity, dedupe, cache, bridge."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from verifier import (
    JudgeRequest,
    LLMBridge,
    ResultCache,
    Verifier,
    VerifierUndecided,
    build_verifier,
    load_template,
)
from verifier.backends.base import Backend, GenerationConfig, GenResult, Messages, ScoreResult


class FakeBackend:
    """Answers from the prompt text: 'GOOD' -> yes, 'BAD' -> no, 'BOOM' -> error, 'CRASH' -> raises."""

    kind = "fake"

    def __init__(self, model: str = "fake-1") -> None:
        self.model = model
        self.seen: list[str] = []

    def _content(self, m: Messages) -> str:
        return m[-1]["content"]

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        out = []
        for m in batch:
            c = self._content(m)
            self.seen.append(c)
            if "CRASH" in c:
                raise RuntimeError("server down")
            if "BOOM" in c:
                out.append(GenResult(None, "timeout"))
            elif "Text: GOOD" in c or "[Response]\nGOOD" in c:
                out.append(GenResult("<think>no no no</think>Yes", finish_reason="stop"))
            elif "REASONED" in c:
                out.append(
                    GenResult("Yes, maybe. Quoting: [[1]] if so.\nFinal answer: [[0]]", finish_reason="stop")
                )
            elif "MUMBLE" in c:
                out.append(GenResult("<think>hmm", finish_reason="length"))
            else:
                out.append(GenResult("No.", finish_reason="stop"))
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        out = []
        for m in batch:
            c = self._content(m)
            self.seen.append(c)
            if "CRASH" in c:
                raise RuntimeError("server down")
            if "BOOM" in c:
                out.append(ScoreResult(None, "timeout"))
                continue
            good = "Text: GOOD" in c or "[Response]\nGOOD" in c
            p_yes = 0.8 if good else 0.3
            lps = {}
            for cand in candidates:
                is_yes = cand in ("Yes", "[[1]]")
                is_yes_alt = cand == "yes"
                share = p_yes * (0.75 if is_yes else 0.25) if (is_yes or is_yes_alt) else (1 - p_yes) / 2
                lps[cand] = math.log(share * 0.9)  # 10% of the mass elsewhere
            out.append(ScoreResult(lps))
        return out

    def close(self) -> None:
        pass


def _verifier(mode: str = "score", **kw: object) -> Verifier:
    return Verifier(FakeBackend(), mode=mode, template=load_template("en"), **kw)  # type: ignore[arg-type]


REQS = [
    JudgeRequest("Write.", "GOOD", ("be nice", "be short")),
    JudgeRequest("Write.", "BAD", ("be nice",)),
    JudgeRequest("Write.", "BOOM", ("be nice",)),
    JudgeRequest("Write.", "GOOD", ()),
]


def test_fake_backend_satisfies_protocol() -> None:
    assert isinstance(FakeBackend(), Backend)


def test_score_mode_verdicts_and_errors_per_item() -> None:
    v = _verifier("score")
    out = v.judge_batch(REQS)
    assert [len(r) for r in out] == [2, 1, 1, 0]
    good, bad, boom = out[0][0], out[1][0], out[2][0]
    assert good.passed is True and good.prob == pytest.approx(0.8)
    assert bad.passed is False and bad.prob == pytest.approx(0.3)
    assert boom.passed is None and boom.error == "timeout"
    # the threshold moves the verdict, not the probability
    strict = _verifier("score", threshold=0.85).judge_batch(REQS[:1])[0][0]
    assert strict.passed is False and strict.prob == pytest.approx(0.8)


def test_generate_mode_parses_after_reasoning() -> None:
    v = _verifier("generate")
    out = v.judge_batch(REQS + [JudgeRequest("Write.", "MUMBLE", ("x",))])
    assert out[0][0].passed is True and out[0][0].raw == "<think>no no no</think>Yes"
    assert out[1][0].passed is False
    assert out[2][0].passed is None and out[2][0].error == "timeout"
    mumble = out[4][0]
    assert mumble.passed is None and mumble.error is not None
    assert mumble.error.startswith("unparseable") and "max_tokens=512" in mumble.error


def test_default_template_follows_the_mode() -> None:
    assert Verifier(FakeBackend(), mode="score").template.name == "en"
    gen = Verifier(FakeBackend(), mode="generate")
    assert gen.template.name == "en-reason" and gen.item_template is not None
    assert gen.item_template.name == "en-item-reason"


def test_reasoning_template_reads_the_final_line() -> None:
    v = Verifier(FakeBackend(), mode="generate")
    out = v.judge_batch([JudgeRequest("i", "REASONED", ("c",)), JudgeRequest("i", "MUMBLE", ("c",))])
    assert out[0][0].passed is False  # "Final answer: [[0]]", not the leading Yes or the quoted [[1]]
    assert "Final answer: [[1]]" in v.backend.seen[0]  # type: ignore[attr-defined]
    assert out[1][0].passed is None and "max_tokens=512" in (out[1][0].error or "")
    # the same output read with an answer-only template takes the leading word
    plain = Verifier(FakeBackend(), mode="generate", template=load_template("en"))
    assert plain.judge("i", "REASONED", "c").passed is True


def test_score_mode_refuses_reasoning_templates() -> None:
    with pytest.raises(ValueError, match="'en-reason' asks the model to reason"):
        Verifier(FakeBackend(), mode="score", template=load_template("en-reason"))
    with pytest.raises(ValueError, match="score mode reads"):
        build_verifier("transformers:default", mode="score", template="zh-reason")


def test_backend_exception_stays_with_its_chunk() -> None:
    v = _verifier("score", chunk_size=1)
    out = v.judge_batch([JudgeRequest("i", "GOOD", ("a",)), JudgeRequest("i", "CRASH", ("a",))])
    assert out[0][0].passed is True
    assert out[1][0].passed is None and "server down" in (out[1][0].error or "")


def test_item_granularity_repeats_one_verdict() -> None:
    v = _verifier("score")
    backend = v.backend
    assert isinstance(backend, FakeBackend)
    out = v.judge_batch(REQS, granularity="item")
    assert [len(r) for r in out] == [2, 1, 1, 0]
    assert out[0][0] == out[0][1] and out[0][0].passed is True
    assert "judged all 2 constraints together" in out[0][0].reason
    assert out[1][0].passed is False and out[2][0].passed is None
    assert len(backend.seen) == 3  # one prompt per non-empty item
    assert "1. be nice\n2. be short" in backend.seen[0]


def test_identical_prompts_are_sent_once() -> None:
    v = _verifier("score")
    reqs = [JudgeRequest("i", "GOOD", ("a", "a", "b"))] * 3
    out = v.judge_batch(reqs)
    assert all(r[0] == r[1] for r in out)
    assert len(v.backend.seen) == 2  # type: ignore[attr-defined]
    assert (v.stats.calls, v.stats.unique, v.stats.backend_items) == (9, 2, 2)


def test_single_item_helpers_use_the_batch_path() -> None:
    v = _verifier("score")
    assert v.judge("i", "GOOD", "a").passed is True
    assert v.judge_item("i", "BAD", ["a", "b"]).passed is False
    assert v.stats.calls == 2


def test_cache_hits_persist_and_errors_are_not_cached(tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite"
    v1 = _verifier("score", cache=ResultCache(db))
    first = v1.judge_batch(REQS)
    assert (v1.stats.cache_hits, v1.stats.cache_misses, v1.stats.errors) == (0, 4, 1)
    v1.cache.close()  # type: ignore[union-attr]
    v2 = _verifier("score", cache=ResultCache(db), threshold=0.9)
    second = v2.judge_batch(REQS)
    assert (v2.stats.cache_hits, v2.stats.cache_misses) == (3, 1)  # the error is asked again
    assert v2.backend.seen == [v2.template.render("Write.", "BOOM", "be nice")[0]["content"]]  # type: ignore[attr-defined]
    assert [r[0].prob for r in second[:2]] == [r[0].prob for r in first[:2]]
    assert second[0][0].passed is False  # raw probabilities cached, threshold applied afterwards


def test_cache_keys_separate_template_mode_and_model(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c.sqlite")
    req = [JudgeRequest("i", "GOOD", ("a",))]
    Verifier(FakeBackend(), mode="score", template=load_template("en"), cache=cache).judge_batch(req)
    variants = [
        Verifier(FakeBackend(), mode="generate", template=load_template("en"), cache=cache),
        Verifier(FakeBackend("fake-2"), mode="score", template=load_template("en"), cache=cache),
        Verifier(
            FakeBackend(),
            mode="score",
            template=load_template("---\nversion: 2\n---\n" + load_template("en").text),
            cache=cache,
        ),
        Verifier(FakeBackend(), mode="generate", template=load_template("en"), cache=cache, max_tokens=7),
    ]
    for v in variants:
        v.judge_batch(req)
        assert (v.stats.cache_hits, v.stats.cache_misses) == (0, 1)
    again = Verifier(FakeBackend(), mode="score", template=load_template("en"), cache=cache)
    again.judge_batch(req)
    assert again.stats.cache_hits == 1
    assert len(cache) == 5


def test_bridge_implements_dataset_callbacks() -> None:
    bridge = LLMBridge(_verifier("score"))
    assert bridge("llm_judge", ("i", "GOOD", "nice")) is True
    assert bridge("llm_judge", ("i", "BAD", "nice")) is False
    assert bridge("llm_score", ("i", "GOOD", ["a", "b"])) == 1
    assert bridge("llm_score", ("i", "BAD", "a; b")) == 0
    with pytest.raises(VerifierUndecided, match="timeout"):
        bridge("llm_judge", ("i", "BOOM", "nice"))
    with pytest.raises(ValueError, match="unknown LLM function 'llm_guess'"):
        bridge("llm_guess", ("i", "r", "c"))


def test_bridge_extract_returns_final_text() -> None:
    v = _verifier("generate")
    bridge = LLMBridge(v)
    assert bridge("llm_extract", ("i", "some text", "the title")) == "No."
    with pytest.raises(VerifierUndecided, match="timeout"):
        bridge("llm_extract", ("i", "BOOM", "the title"))
    assert "What to extract: the title" in v.backend.seen[0]  # type: ignore[attr-defined]
    LLMBridge(v, language="zh")("llm_extract", ("i", "other", "标题"))
    assert v.backend.seen[-1].startswith("文本：other\n抽取要求：标题")  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", ["", "default", "torch:default", "transformers:", "openai", "vllm :"])
def test_bad_specs_name_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ValueError, match="accepted forms") as e:
        build_verifier(spec)
    assert repr(spec) in str(e.value)


def test_factory_validates_before_loading() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        build_verifier("transformers:default", mode="vote")
    with pytest.raises(ValueError, match="granularity"):
        build_verifier("transformers:default", granularity="token")
    with pytest.raises(ValueError, match="needs base_url"):
        build_verifier("openai:gpt-x")


def test_verifier_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="threshold"):
        _verifier(threshold=1.5)
    with pytest.raises(ValueError, match="mode"):
        _verifier("vote")
    with pytest.raises(TypeError, match="single string"):
        JudgeRequest("i", "r", "abc")  # type: ignore[arg-type]


def test_concurrent_callers_never_enter_the_backend_together() -> None:
    """Two sandboxes (two relay threads) may share one verifier; a local model must see one batch at a time."""
    import threading
    import time

    class Exclusive(FakeBackend):
        def __init__(self) -> None:
            super().__init__()
            self.inside = 0
            self.overlaps = 0

        def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
            self.inside += 1
            if self.inside > 1:
                self.overlaps += 1
            time.sleep(0.02)
            try:
                return super().score(batch, candidates)
            finally:
                self.inside -= 1

    backend = Exclusive()
    v = Verifier(backend, mode="score", template=load_template("en"))  # type: ignore[arg-type]
    results: list[list[list[object]]] = []

    def worker(k: int) -> None:
        reqs = [JudgeRequest("Write.", "GOOD" if i % 2 else "BAD", (f"c{k}-{i}",)) for i in range(5)]
        results.append(v.judge_batch(reqs))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.overlaps == 0
    assert len(results) == 4
    assert all([vs[0].passed for vs in r] == [False, True, False, True, False] for r in results)  # type: ignore[attr-defined]
