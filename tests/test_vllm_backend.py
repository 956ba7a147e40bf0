"""The vLLM backend: request shaping and result mapping on CPU through a fake ``vllm`` module shaped like the
real one (LLM.chat / LLM.generate -> RequestOutput/CompletionOutput/Logprob, prompt_logprobs), plus a real run
when vLLM and a GPU exist."""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from verifier.backends.base import Backend, GenerationConfig, Messages

MARK = "MARK"
VOCAB = {1: "Yes", 2: "No", 3: " yes", 4: "!", 5: "Maybe", 6: "."}


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


class SamplingParams:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw


#: how the fake tokenizer splits answers; other text is one token per character (1000 + code point)
WORDS = {"Yes": [1], "No": [2], "yes": [11], "no": [12], "[[1]]": [7, 8, 9], "[[0]]": [7, 10, 9]}
#: the fake model's log-probability of each answer token, after a prompt with / without MARK
ANSWER_LP = {
    True: {1: -0.1, 11: -4.0, 2: -2.5, 12: -5.0, 7: -0.05, 8: -0.3, 10: -1.5, 9: -0.02},
    False: {1: -1.9, 11: -5.0, 2: -0.2, 12: -4.0, 7: -0.05, 8: -2.0, 10: -0.4, 9: -0.03},
}


class FakeTokenizer:
    chat_template = "fake"

    def decode(self, ids: list[int]) -> str:
        return "".join(VOCAB[i] for i in ids)

    def apply_chat_template(self, messages: Messages, tokenize: bool, add_generation_prompt: bool) -> str:
        assert not tokenize and add_generation_prompt
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def __call__(self, text: str, add_special_tokens: bool = True) -> types.SimpleNamespace:
        assert not add_special_tokens
        return types.SimpleNamespace(input_ids=WORDS.get(text) or [1000 + ord(ch) for ch in text])


def prompt_text(ids: list[int]) -> str:
    return "".join(chr(t - 1000) for t in ids if t >= 1000)


class FakeLLM:
    """Answers Yes when the last message holds MARK, No otherwise, "Maybe" for "UNSURE"; refuses "TOO LONG"."""

    instances: list[FakeLLM] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model = model
        self.kwargs = kwargs
        self.calls: list[tuple[list[Messages], SamplingParams]] = []
        self.decoded = True
        FakeLLM.instances.append(self)

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def _step(self, chosen: int, k: int) -> dict[int, Logprob]:
        ranked = {1: -0.1, 2: -2.5, 3: -4.0} if chosen == 1 else {2: -0.2, 1: -1.9, 3: -5.0}
        if chosen == 5:
            ranked = {5: -0.05, 6: -3.0}
        if chosen == 4:
            ranked = {4: -0.01, 6: -5.0}
        items = sorted(ranked.items(), key=lambda kv: -kv[1])
        out = {
            t: Logprob(lp, r + 1, VOCAB[t] if self.decoded else None) for r, (t, lp) in enumerate(items[:k])
        }
        if chosen not in out:  # vLLM adds the sampled token to the top-k
            rank = [t for t, _ in items].index(chosen) + 1
            out[chosen] = Logprob(ranked[chosen], rank, VOCAB[chosen] if self.decoded else None)
        return out

    def generate(
        self, prompts: list[dict[str, list[int]]], sampling_params: SamplingParams, use_tqdm: bool = True
    ) -> list[Any]:
        """Only what ``score`` uses: token-id prompts and their prompt_logprobs (the prompt token only)."""
        self.calls.append((prompts, sampling_params))  # type: ignore[arg-type]
        assert sampling_params.kw["prompt_logprobs"] == 0
        outs = []
        for i, p in enumerate(prompts):
            ids = p["prompt_token_ids"]
            text = prompt_text(ids)
            if "TOO LONG" in text:
                raise ValueError("prompt is longer than the maximum model length")
            table = ANSWER_LP[MARK in text]
            steps: list[dict[int, Logprob] | None] = [None]
            steps += [{t: Logprob(table.get(t, -1.0), 1, None)} for t in ids[1:]]
            comp = CompletionOutput(0, "!", [4], None, None, "length")
            out = RequestOutput(str(i), None, ids, [comp])
            out.prompt_logprobs = steps  # type: ignore[attr-defined]
            outs.append(out)
        return outs

    def chat(
        self, messages: list[Messages], sampling_params: SamplingParams, use_tqdm: bool = True
    ) -> list[Any]:
        assert isinstance(messages, list) and all(isinstance(m, list) for m in messages)
        self.calls.append((messages, sampling_params))
        sp = sampling_params.kw
        if any("TOO LONG" in conv[-1]["content"] for conv in messages):
            raise ValueError("prompt is longer than the maximum model length")
        outs = []
        for i, conv in enumerate(messages):
            content = conv[-1]["content"]
            first = 5 if "UNSURE" in content else 1 if MARK in content else 2
            ids = [first, 4][: sp["max_tokens"]]
            k = sp.get("logprobs")
            lps = [self._step(t, k) for t in ids] if k is not None else None
            text = "".join(VOCAB[t] for t in ids)
            finish = "length" if len(ids) == sp["max_tokens"] else "stop"
            comp = CompletionOutput(0, text, ids, None, lps, finish)
            outs.append(RequestOutput(str(i), None, list(range(len(content))), [comp]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    mod = types.ModuleType("vllm")
    mod.LLM = FakeLLM  # type: ignore[attr-defined]
    mod.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", mod)
    FakeLLM.instances.clear()
    yield mod


def msgs(text: str) -> Messages:
    return [{"role": "system", "content": "judge"}, {"role": "user", "content": text}]


def make(**kw: Any) -> Any:
    from verifier.backends.vllm_backend import VLLMBackend

    return VLLMBackend("org/tiny-model", **kw)


def test_engine_is_built_with_prefix_caching(fake_vllm: types.ModuleType) -> None:
    b = make(gpu_memory_utilization=0.5)
    assert isinstance(b, Backend) and b.kind == "vllm" and b.model == "org/tiny-model"
    [llm] = FakeLLM.instances
    assert llm.model == "org/tiny-model"
    assert llm.kwargs == {"enable_prefix_caching": True, "gpu_memory_utilization": 0.5}
    make(enable_prefix_caching=False, max_logprobs=5)
    assert FakeLLM.instances[1].kwargs == {"enable_prefix_caching": False, "max_logprobs": 5}


def test_generate_is_one_call_per_batch_and_maps_outputs(fake_vllm: types.ModuleType) -> None:
    b = make(seed=7)
    res = b.generate(
        [msgs(f"{MARK} x"), msgs("y")], GenerationConfig(max_tokens=5, temperature=0.3, stop=("\n",))
    )
    [llm] = FakeLLM.instances
    assert len(llm.calls) == 1
    batch, params = llm.calls[0]
    assert batch == [msgs(f"{MARK} x"), msgs("y")]
    assert params.kw == {"max_tokens": 5, "temperature": 0.3, "logprobs": None, "stop": ["\n"], "seed": 7}
    assert [r.text for r in res] == ["Yes!", "No!"]
    assert res[0].finish_reason == "stop" and res[0].error is None
    assert (res[0].prompt_tokens, res[0].completion_tokens) == (len(f"{MARK} x"), 2)
    assert res[0].logprobs is None
    assert b.generate([], GenerationConfig()) == []


def test_generate_with_top_logprobs(fake_vllm: types.ModuleType) -> None:
    b = make()
    [r] = b.generate([msgs("n")], GenerationConfig(max_tokens=2, top_logprobs=2))
    assert FakeLLM.instances[0].calls[0][1].kw["logprobs"] == 2
    assert r.logprobs is not None and [t.token for t in r.logprobs] == ["No", "!"]
    assert r.logprobs[0].logprob == -0.2
    assert r.logprobs[0].top == (("No", -0.2), ("Yes", -1.9))
    assert r.logprobs[1].top == (("!", -0.01), (".", -5.0))
    [bare] = b.generate([msgs("n")], GenerationConfig(max_tokens=1, logprobs=True))
    assert FakeLLM.instances[0].calls[1][1].kw["logprobs"] == 0
    assert bare.logprobs is not None and bare.logprobs[0].token == "No" and bare.logprobs[0].top == ()
    assert bare.logprobs[0].logprob == -0.2


def test_undecoded_tokens_are_decoded_with_the_tokenizer(fake_vllm: types.ModuleType) -> None:
    b = make()
    FakeLLM.instances[0].decoded = False
    [r] = b.generate([msgs(MARK)], GenerationConfig(max_tokens=1, top_logprobs=3))
    assert r.logprobs is not None and r.logprobs[0].top == (("Yes", -0.1), ("No", -2.5), (" yes", -4.0))


def test_a_bad_prompt_fails_only_itself(fake_vllm: types.ModuleType) -> None:
    b = make()
    res = b.generate([msgs("a"), msgs("TOO LONG"), msgs(MARK)], GenerationConfig(max_tokens=1))
    assert [r.text for r in res] == ["No", None, "Yes"]
    assert "maximum model length" in (res[1].error or "")
    assert len(FakeLLM.instances[0].calls) == 4  # the batch, then item by item
    assert res[1].bad_request and not res[0].bad_request  # vLLM refuses a bad prompt with ValueError
    scores = b.score([msgs("TOO LONG"), msgs(MARK)], ["Yes", "No"])
    assert scores[0].logprobs is None and "maximum model length" in (scores[0].error or "")
    assert scores[0].bad_request
    assert scores[1].logprobs is not None


def test_score_is_the_exact_log_probability_of_each_whole_candidate(fake_vllm: types.ModuleType) -> None:
    b = make(seed=3)
    yes, no = b.score([msgs(MARK), msgs("x")], ["Yes", "yes", "No", "no", "[[1]]", "[[0]]"])
    [llm] = FakeLLM.instances
    assert len(llm.calls) == 1  # one engine call: every (item, candidate) row together
    prompts, params = llm.calls[0]
    assert params.kw == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "seed": 3}
    tok = FakeTokenizer()
    head = tok(tok.apply_chat_template(msgs(MARK), False, True), add_special_tokens=False).input_ids
    assert prompts[0] == {"prompt_token_ids": head + [1]}  # the prompt, then the candidate's tokens
    assert prompts[4] == {"prompt_token_ids": head + [7, 8, 9]}
    assert yes.method == "sequence" and yes.error is None and yes.logprobs is not None
    assert yes.logprobs["Yes"] == -0.1 and yes.logprobs["no"] == -5.0
    assert yes.logprobs["[[1]]"] == pytest.approx(-0.05 - 0.3 - 0.02)
    assert no.logprobs is not None and no.logprobs["[[0]]"] == pytest.approx(-0.05 - 0.4 - 0.03)
    with pytest.raises(ValueError, match="candidates"):
        b.score([msgs("x")], [])


@pytest.mark.parametrize("template", ["en", "en-item", "zh-item"])
def test_judge_verdicts_through_the_vllm_backend(fake_vllm: types.ModuleType, template: str) -> None:
    """Item templates answer [[1]]/[[0]]: both start with "[[", and the verdict still follows the model."""
    from verifier.judge import JudgeRequest, Verifier
    from verifier.prompts import load_template

    v = Verifier(backend=make(), mode="score", template=load_template(template))
    gran = "item" if "item" in template else "constraint"
    [[marked], [plain]] = v.judge_batch(
        [JudgeRequest("Q", "A", (f"{MARK} be brief",)), JudgeRequest("Q", "A", ("rhyme",))], gran
    )
    assert marked.passed is True and plain.passed is False
    lp = ANSWER_LP[True]
    if gran == "constraint":
        p_yes, p_no = math.exp(lp[1]) + math.exp(lp[11]), math.exp(lp[2]) + math.exp(lp[12])
    else:
        p_yes, p_no = math.exp(lp[7] + lp[8] + lp[9]), math.exp(lp[7] + lp[10] + lp[9])
    assert marked.prob == pytest.approx(p_yes / (p_yes + p_no), abs=1e-12)


def test_missing_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from verifier.backends.vllm_backend import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match=r"pip install vllm.*GPU|GPU.*pip install vllm"):
        VLLMBackend("org/tiny-model")


def test_default_model_resolves_to_a_local_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import verifier.embedded as embedded
    from verifier.backends.vllm_backend import DEFAULT_MODEL, resolve_model

    assert resolve_model("org/x") == "org/x"
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(embedded, "locate_default_gguf", lambda: tmp_path / "m.gguf")
    monkeypatch.setattr(embedded, "dequantised_dir", lambda gguf: tmp_path)
    assert resolve_model("default") == str(tmp_path)

    def missing() -> Path:
        raise embedded.EmbeddedModelMissing("not installed")

    monkeypatch.setattr(embedded, "locate_default_gguf", missing)
    assert resolve_model("default") == DEFAULT_MODEL


def _real_vllm_or_skip() -> None:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError as e:
        pytest.skip(f"vllm not installed: {e}")
    if not torch.cuda.is_available():
        pytest.skip("vllm needs a CUDA GPU")


@pytest.mark.gpu
@pytest.mark.slow
def test_real_vllm_generates_and_scores() -> None:
    _real_vllm_or_skip()
    from verifier.backends.vllm_backend import VLLMBackend

    b = VLLMBackend("default", gpu_memory_utilization=0.3, max_model_len=2048)
    try:
        q = [{"role": "user", "content": "Is the sky blue? Answer Yes or No."}]
        gen = b.generate([q, q], GenerationConfig(max_tokens=8, top_logprobs=3))
        assert gen[0].error is None and gen[0].text == gen[1].text
        [s] = b.score([q], ["Yes", "No"])
        assert s.error is None and s.logprobs is not None
    finally:
        b.close()
