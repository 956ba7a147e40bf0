"""The OpenAI-compatible backend over real HTTP on loopback: against `verif serve`'s app with a fake model, and
against small servers that misbehave on purpose (down, slow, 5xx, garbage)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from verifier.backends.base import Backend, GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.backends.openai_backend import (
    OpenAIBackend,
    _Failure,
    continuation_logprob,
    first_token_scores,
    normalize_base_url,
)
from verifier.server import create_app, serve_in_thread

MARK = "MARK"
CANDS = ["Yes", "yes", "No", "no"]


class FakeBackend:
    """Deterministic model: answers "Yes" when the last message holds MARK, else "No"; counts what it saw."""

    kind = "fake"

    def __init__(self, model: str = "fake-judge") -> None:
        self.model = model
        self.items = 0
        self.scored: list[tuple[list[Messages], list[str]]] = []
        self.lock = threading.Lock()

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        with self.lock:
            self.items += len(batch)
        out = []
        for messages in batch:
            yes = MARK in messages[-1]["content"]
            text = "Yes" if yes else "No"
            logprobs = None
            if config.top_logprobs:
                top = (("Yes", -0.05), ("No", -3.2), (" yes", -4.1)) if yes else (("No", -0.1), ("Yes", -2.5))
                logprobs = (TokenLogprob(text, top[0][1], top[: config.top_logprobs]),)
            out.append(
                GenResult(text, finish_reason="stop", logprobs=logprobs, prompt_tokens=7, completion_tokens=1)
            )
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        """Sequence log-probabilities: fixed numbers per candidate, by whether the conversation holds MARK."""
        with self.lock:
            self.scored.append((list(batch), list(candidates)))
        out = []
        for messages in batch:
            table = SEQ_LP[MARK in messages[-1]["content"]]
            out.append(ScoreResult({c: table.get(c, -9.0) for c in candidates}))
        return out

    def close(self) -> None:
        pass


#: FakeBackend.score's log-probabilities, with / without MARK
SEQ_LP = {
    True: {"Yes": -0.05, "yes": -4.1, "No": -3.2, "no": -5.0, "[[1]]": -0.7, "[[0]]": -1.9},
    False: {"Yes": -2.5, "yes": -4.0, "No": -0.1, "no": -3.0, "[[1]]": -2.2, "[[0]]": -0.4},
}


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yield its /v1 base URL."""
    with serve_in_thread(app) as root:
        yield root + "/v1"


def canned(text: str = "Yes", *, logprobs: bool = True) -> dict[str, Any]:
    """A well-formed chat.completion body."""
    lp = None
    if logprobs:
        top = [{"token": "Yes", "logprob": -0.2}, {"token": "No", "logprob": -1.8}]
        lp = {"content": [{"token": text, "logprob": -0.2, "top_logprobs": top}]}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": lp,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def flaky_app(fail_first: int, status: int = 500, headers: dict[str, str] | None = None) -> FastAPI:
    """Fails its first ``fail_first`` requests with ``status`` (all of them if negative), then answers."""
    app = FastAPI()
    app.state.calls = 0

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        app.state.calls += 1
        if fail_first < 0 or app.state.calls <= fail_first:
            body = {"error": {"message": f"deliberate failure {app.state.calls}", "type": "server_error"}}
            return JSONResponse(body, status_code=status, headers=headers)
        return canned()

    return app


def slow_app(delay: float) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat() -> Any:
        await asyncio.sleep(delay)
        return canned()

    return app


def msgs(text: str) -> Messages:
    return [{"role": "user", "content": text}]


def fast(urls: list[str], **kw: Any) -> OpenAIBackend:
    """A backend with tiny backoff so failure tests finish quickly."""
    opts: dict[str, Any] = {"max_retries": 2, "backoff_base": 0.01, "backoff_max": 0.05, "timeout": 10.0}
    opts.update(kw)
    return OpenAIBackend("fake-judge", urls, **opts)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[str, FakeBackend]]:
    backend = FakeBackend()
    with serving(create_app(backend, batch_wait_ms=2)) as url:
        yield url, backend


# --------------------------------------------------------------------------- against `verif serve`'s app


def test_backend_satisfies_protocol() -> None:
    b = OpenAIBackend("m", ["http://127.0.0.1:1"])
    assert isinstance(b, Backend)
    assert b.kind == "openai" and b.model == "m"
    b.close()


def test_generate_returns_text_usage_and_logprobs(fake_server: tuple[str, FakeBackend]) -> None:
    url, _ = fake_server
    with fast([url]) as b:
        res = b.generate([msgs(f"{MARK} one"), msgs("two")], GenerationConfig(max_tokens=8, top_logprobs=2))
    assert [r.error for r in res] == [None, None]
    assert [r.text for r in res] == ["Yes", "No"]
    assert res[0].finish_reason == "stop"
    assert (res[0].prompt_tokens, res[0].completion_tokens) == (7, 1)
    assert res[0].logprobs is not None
    assert res[0].logprobs[0].token == "Yes"
    assert res[0].logprobs[0].top == (("Yes", -0.05), ("No", -3.2))
    with fast([url]) as b:
        plain = b.generate([msgs("x")], GenerationConfig(max_tokens=8))
    assert plain[0].text == "No" and plain[0].logprobs is None


def test_score_is_the_servers_sequence_log_probability(fake_server: tuple[str, FakeBackend]) -> None:
    """Default score_method: each candidate continued as an assistant message; the server's backend.score
    numbers come back exactly, for multi-token candidates sharing their first token too (that the server
    batches the candidates together is tested in test_serve.py)."""
    url, backend = fake_server
    cands = [*CANDS, "[[1]]", "[[0]]"]
    with fast([url]) as b:
        yes, no = b.score([msgs(f"{MARK} a"), msgs("b")], cands)
    assert yes.error is None and yes.method == "sequence" and no.error is None
    assert yes.logprobs == {c: SEQ_LP[True][c] for c in cands}
    assert no.logprobs == {c: SEQ_LP[False][c] for c in cands}
    # the server scored the conversation without the continued message, micro-batched
    seen = [m for batch, _ in backend.scored for m in batch]
    assert msgs(f"{MARK} a") in seen and msgs("b") in seen
    assert all(m[-1]["role"] == "user" for m in seen)


def test_first_token_scoring_refuses_candidates_sharing_their_first_token() -> None:
    top = [("[[", -0.01), ("Yes", -5.0)]
    res = first_token_scores(top, ["[[1]]", "[[0]]"])
    assert res.logprobs is None and "share their first token '[['" in (res.error or "")
    assert "score_method='sequence'" in (res.error or "")


def test_score_reads_first_token_top_logprobs(fake_server: tuple[str, FakeBackend]) -> None:
    url, _ = fake_server
    with fast([url], score_method="first_token") as b:
        yes, no = b.score([msgs(f"{MARK} a"), msgs("b")], CANDS)
    assert yes.error is None and yes.method == "first_token"
    assert yes.logprobs is not None and no.logprobs is not None
    assert yes.logprobs["Yes"] == pytest.approx(-0.05)
    assert yes.logprobs["yes"] == pytest.approx(-4.1)  # " yes" after stripping
    assert yes.logprobs["No"] == pytest.approx(-3.2)
    assert yes.logprobs["no"] <= -4.1  # absent: floor below every top-k entry
    assert no.logprobs["No"] == pytest.approx(-0.1) and no.logprobs["Yes"] == pytest.approx(-2.5)


def test_verifier_judges_through_http(fake_server: tuple[str, FakeBackend]) -> None:
    from verifier.judge import JudgeRequest, Verifier

    url, _ = fake_server
    v = Verifier(backend=fast([url]), mode="score")
    try:
        reqs = [JudgeRequest("Write a poem.", "A poem.", (f"{MARK} be short", "rhyme"))]
        [[marked, plain]] = v.judge_batch(reqs)
    finally:
        v.close()
    assert marked.passed is True and marked.prob is not None and marked.prob > 0.9
    assert plain.passed is False and plain.prob is not None and plain.prob < 0.1


def test_many_concurrent_items_keep_their_order(fake_server: tuple[str, FakeBackend]) -> None:
    url, _ = fake_server
    batch = [msgs(f"{MARK} {i}" if i % 3 == 0 else f"item {i}") for i in range(60)]
    with fast([url], concurrency=8) as b:
        res = b.generate(batch, GenerationConfig(max_tokens=4))
    assert [r.text for r in res] == ["Yes" if i % 3 == 0 else "No" for i in range(60)]


def test_sync_and_async_calls_work_inside_a_running_loop(fake_server: tuple[str, FakeBackend]) -> None:
    url, _ = fake_server
    b = fast([url])

    async def inside() -> tuple[list[GenResult], list[GenResult], list[ScoreResult]]:
        sync = b.generate([msgs(MARK)], GenerationConfig(max_tokens=4))  # caller already in a loop
        agen = await b.agenerate([msgs("x")], GenerationConfig(max_tokens=4))
        ascore = await b.ascore([msgs(MARK)], CANDS)
        return sync, agen, ascore

    try:
        sync, agen, ascore = asyncio.run(inside())
    finally:
        b.close()
    assert sync[0].text == "Yes" and agen[0].text == "No"
    assert ascore[0].logprobs is not None and ascore[0].logprobs["Yes"] > ascore[0].logprobs["No"]
    with pytest.raises(RuntimeError, match="closed"):
        b.generate([msgs("x")], GenerationConfig())


def test_load_is_spread_over_two_servers() -> None:
    a, c = FakeBackend(), FakeBackend()
    app_a, app_c = create_app(a, batch_wait_ms=0), create_app(c, batch_wait_ms=0)
    with serving(app_a) as url_a, serving(app_c) as url_c, fast([url_a, url_c]) as b:
        res = b.generate([msgs(f"q{i}") for i in range(20)], GenerationConfig(max_tokens=4))
    assert all(r.error is None for r in res)
    assert a.items + c.items == 20
    assert a.items >= 5 and c.items >= 5


def test_bounded_concurrency() -> None:
    app = FastAPI()
    state = {"now": 0, "max": 0}

    @app.post("/v1/chat/completions")
    async def chat() -> Any:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.05)
        state["now"] -= 1
        return canned()

    with serving(app) as url, fast([url], concurrency=3) as b:
        res = b.generate([msgs(str(i)) for i in range(12)], GenerationConfig(max_tokens=2))
    assert all(r.text == "Yes" for r in res)
    assert 2 <= state["max"] <= 3


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    app = FastAPI()
    seen: list[str | None] = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        seen.append(request.headers.get("authorization"))
        return canned()

    monkeypatch.delenv("VERIF_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with serving(app) as url:
        with fast([url]) as b:
            b.generate([msgs("x")], GenerationConfig(max_tokens=2))
        with fast([url], api_key="sk-arg") as b:
            b.generate([msgs("x")], GenerationConfig(max_tokens=2))
        monkeypatch.setenv("VERIF_API_KEY", "verif-key")  # verif serve's variable wins over OpenAI's
        with fast([url]) as b:
            b.generate([msgs("x")], GenerationConfig(max_tokens=2))
        monkeypatch.delenv("VERIF_API_KEY")
        monkeypatch.delenv("OPENAI_API_KEY")
        with fast([url]) as b:
            b.generate([msgs("x")], GenerationConfig(max_tokens=2))
    assert seen == ["Bearer sk-from-env", "Bearer sk-arg", "Bearer verif-key", "Bearer EMPTY"]


# --------------------------------------------------------------------------- failures


def test_server_down_gives_an_error_per_item_quickly(unused_port: int) -> None:
    with fast([f"http://127.0.0.1:{unused_port}/v1"], max_retries=2) as b:
        gen = b.generate([msgs("a"), msgs("b"), msgs("c")], GenerationConfig(max_tokens=2))
        sc = b.score([msgs("a")], CANDS)
    assert all(r.text is None and r.error is not None for r in gen)
    assert "connection error" in (gen[0].error or "") and "after 3 attempts" in (gen[0].error or "")
    assert sc[0].logprobs is None and "connection error" in (sc[0].error or "")


def test_dead_url_is_failed_over_and_then_skipped(caplog: pytest.LogCaptureFixture, unused_port: int) -> None:
    good = FakeBackend()
    dead = f"http://127.0.0.1:{unused_port}/v1"  # connection refused
    caplog.set_level(logging.WARNING, logger="verifier.backends.openai_backend")
    with (
        serving(create_app(good, batch_wait_ms=0)) as url,
        fast([dead, url], fail_threshold=1, cooldown=60) as b,
    ):
        first = b.generate([msgs(str(i)) for i in range(6)], GenerationConfig(max_tokens=2))
        assert all(r.error is None for r in first)
        dead_ep = next(ep for ep in b._endpoints if ep.url == dead)
        assert dead_ep.skip_until > time.monotonic()  # cooling down
        retries = sum("retrying" in r.getMessage() for r in caplog.records)
        second = b.generate([msgs(str(i)) for i in range(6)], GenerationConfig(max_tokens=2))
    assert all(r.error is None for r in second)
    assert good.items == 12
    assert retries >= 1 and "skipping it" in caplog.text
    assert (
        sum("retrying" in r.getMessage() for r in caplog.records) == retries
    )  # no new tries on the dead URL


def test_timeout_gives_an_error_per_item() -> None:
    with serving(slow_app(1.5)) as url, fast([url], timeout=0.3, max_retries=1) as b:
        res = b.generate([msgs("a"), msgs("b")], GenerationConfig(max_tokens=2))
    assert all(r.text is None for r in res)
    assert all("timed out after 0.3s" in (r.error or "") for r in res)


def test_timeout_on_one_server_retries_on_the_other() -> None:
    with serving(slow_app(1.5)) as slow, serving(flaky_app(0)) as ok, fast([slow, ok], timeout=0.3) as b:
        res = b.generate([msgs(str(i)) for i in range(4)], GenerationConfig(max_tokens=2))
    assert [r.text for r in res] == ["Yes"] * 4


def test_transient_500s_are_retried_until_success() -> None:
    app = flaky_app(fail_first=3)
    with serving(app) as url, fast([url], max_retries=3, score_method="first_token") as b:
        res = b.generate([msgs("only")], GenerationConfig(max_tokens=2))
        assert res[0].error is None and res[0].text == "Yes"
        assert app.state.calls == 4
        sc = b.score([msgs("again")], CANDS)
    assert sc[0].logprobs is not None and sc[0].logprobs["Yes"] == pytest.approx(-0.2)


def test_429_is_retried() -> None:
    app = flaky_app(fail_first=1, status=429, headers={"Retry-After": "0"})
    with serving(app) as url, fast([url]) as b:
        res = b.generate([msgs("x")], GenerationConfig(max_tokens=2))
    assert res[0].text == "Yes" and app.state.calls == 2


def test_persistent_500s_give_an_error_per_item() -> None:
    app = flaky_app(fail_first=-1)
    with serving(app) as url, fast([url], max_retries=2) as b:
        res = b.generate([msgs("a"), msgs("b")], GenerationConfig(max_tokens=2))
    assert all(r.text is None for r in res)
    assert all("HTTP 500" in (r.error or "") and "deliberate failure" in (r.error or "") for r in res)
    assert app.state.calls == 6  # 2 items x 3 attempts


def test_client_errors_are_not_retried() -> None:
    app = flaky_app(fail_first=-1, status=400)
    with serving(app) as url, fast([url], max_retries=3) as b:
        res = b.generate([msgs("a")], GenerationConfig(max_tokens=2))
    assert res[0].text is None and "HTTP 400" in (res[0].error or "")
    assert app.state.calls == 1


def garbage_app() -> FastAPI:
    """Answers according to the last message: each kind of broken 200 response, or a good one."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        kind = (await request.json())["messages"][-1]["content"]
        if kind == "invalid-json":
            return Response("this is {not json", media_type="application/json")
        if kind == "html":
            return Response("<html>gateway says hi</html>", media_type="text/html")
        if kind == "no-choices":
            return {"id": "x", "object": "chat.completion", "choices": []}
        if kind == "missing":
            return {"id": "x"}
        if kind == "list":
            return [1, 2, 3]
        if kind == "no-logprobs":
            return canned(logprobs=False)
        if kind == "null-content":
            body = canned()
            body["choices"][0]["message"]["content"] = None
            return body
        if kind == "bad-logprob":
            body = canned()
            body["choices"][0]["logprobs"]["content"][0]["top_logprobs"] = [
                {"token": "Yes", "logprob": "high"}
            ]
            return body
        if kind == "no-candidate":
            body = canned()
            body["choices"][0]["logprobs"]["content"][0]["top_logprobs"] = [
                {"token": "Maybe", "logprob": -0.1}
            ]
            body["choices"][0]["logprobs"]["content"][0]["token"] = "Maybe"
            return body
        return canned()

    return app


KINDS = [
    "invalid-json",
    "html",
    "no-choices",
    "missing",
    "list",
    "no-logprobs",
    "null-content",
    "bad-logprob",
]


def test_garbage_responses_are_errors_for_their_items_only() -> None:
    with serving(garbage_app()) as url, fast([url], score_method="first_token") as b:
        gen = b.generate([msgs(k) for k in [*KINDS, "ok"]], GenerationConfig(max_tokens=2, top_logprobs=2))
        plain = b.generate([msgs("no-logprobs"), msgs("missing")], GenerationConfig(max_tokens=2))
        scores = b.score([msgs(k) for k in [*KINDS, "no-candidate", "ok"]], CANDS)
    by_kind = dict(zip([*KINDS, "ok"], gen, strict=True))
    assert by_kind["ok"].text == "Yes" and by_kind["ok"].error is None
    for kind in KINDS:
        assert by_kind[kind].text is None and by_kind[kind].error, kind
    assert "not valid JSON" in (by_kind["invalid-json"].error or "")
    assert "no choices" in (by_kind["no-choices"].error or "")
    assert "no logprobs" in (by_kind["no-logprobs"].error or "")
    assert "no message content" in (by_kind["null-content"].error or "")
    # without logprobs asked for, a response without them is fine
    assert plain[0].text == "Yes" and plain[1].error is not None
    sc = dict(zip([*KINDS, "no-candidate", "ok"], scores, strict=True))
    assert sc["ok"].logprobs is not None and sc["ok"].error is None
    for kind in [*KINDS, "no-candidate"]:
        if kind == "null-content":  # score only reads logprobs; the message text does not matter
            continue
        assert sc[kind].logprobs is None and sc[kind].error, kind
    assert "Maybe" in (sc["no-candidate"].error or "")


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="base_urls"):
        OpenAIBackend("m", [])
    with pytest.raises(ValueError, match="base URL"):
        OpenAIBackend("m", ["localhost:8000"])
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIBackend("m", ["http://h:1"], concurrency=0)
    with pytest.raises(ValueError, match="candidates"):
        OpenAIBackend("m", ["http://h:1"]).score([msgs("x")], [])
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("https://api.example.com/v1/") == "https://api.example.com/v1"
    assert OpenAIBackend("m", "http://a:1, http://b:2/v1").base_urls == ["http://a:1/v1", "http://b:2/v1"]
    assert OpenAIBackend("m", ["http://h:1"]).generate([], GenerationConfig()) == []


# --------------------------------------------------------------------------- first-token matching


def test_variants_of_a_lone_candidate_are_summed() -> None:
    res = first_token_scores(
        [("Yes", math.log(0.5)), (" yes", math.log(0.2)), ("No", math.log(0.1))], ["yes", "no"]
    )
    assert res.logprobs is not None
    assert res.logprobs["yes"] == pytest.approx(math.log(0.7))
    assert res.logprobs["no"] == pytest.approx(math.log(0.1))


def test_candidates_differing_by_case_are_kept_apart() -> None:
    top = [("Yes", math.log(0.5)), (" yes", math.log(0.2)), ("YES", math.log(0.05)), ("No", math.log(0.1))]
    res = first_token_scores(top, CANDS)
    assert res.logprobs is not None
    assert res.logprobs["Yes"] == pytest.approx(math.log(0.5))
    assert res.logprobs["yes"] == pytest.approx(math.log(0.2))
    assert res.logprobs["No"] == pytest.approx(math.log(0.1))
    # "no" is absent: at most the mass outside the top-k (0.15) and at most the smallest entry (0.05)
    assert res.logprobs["no"] == pytest.approx(math.log(0.05))


def test_floor_is_the_mass_outside_the_top_k_when_smaller() -> None:
    res = first_token_scores([("Yes", math.log(0.6)), ("Sure", math.log(0.39))], ["Yes", "No"])
    assert res.logprobs is not None
    assert res.logprobs["No"] == pytest.approx(math.log(0.01))


def test_multi_token_candidate_matches_its_first_token() -> None:
    res = first_token_scores([("Pass", -0.3), ("Fail", -1.5)], ["Passed", "Failed"])
    assert res.logprobs == {"Passed": -0.3, "Failed": -1.5}


def test_no_candidate_in_top_k_is_an_error() -> None:
    res = first_token_scores([("Maybe", -0.1), ("\n", -3.0)], ["Yes", "No"])
    assert res.logprobs is None and res.method == "first_token"
    assert "'Maybe'" in (res.error or "")


def _continued(*tokens: tuple[str, float], head: int = 2) -> dict[str, Any]:
    """A vLLM-style response to a continued assistant message: prompt_logprobs, one token per position."""
    body = canned()
    entries: list[Any] = [None] + [{str(100 + i): {"logprob": -1.0, "decoded_token": "x"}} for i in range(head)]
    entries += [{str(200 + i): {"logprob": lp, "rank": 1, "decoded_token": t}} for i, (t, lp) in enumerate(tokens)]
    body["prompt_logprobs"] = entries
    return body


def test_continuation_logprob_sums_the_tokens_that_spell_the_candidate() -> None:
    assert continuation_logprob(_continued(("[[", -0.1), ("1", -0.5), ("]]", -0.2)), "[[1]]") == pytest.approx(-0.8)
    assert continuation_logprob(_continued(("Yes", -0.3)), "Yes") == pytest.approx(-0.3)
    # verif serve's one entry spanning the whole continued message
    one = canned() | {"prompt_logprobs": [None, {"-1": {"logprob": -2.5, "rank": None, "decoded_token": "No"}}]}
    assert continuation_logprob(one, "No") == -2.5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (canned(), "no prompt_logprobs"),
        (canned() | {"prompt_logprobs": [None]}, "malformed"),
        (canned() | {"prompt_logprobs": [None, {"1": {"logprob": "high", "decoded_token": "Yes"}}]}, "malformed"),
        (canned() | {"prompt_logprobs": [None, {"1": {"logprob": -1.0}, "2": {"logprob": -2.0}}]}, "one token"),
        (_continued(("Ye", -0.1), ("ss", -0.1)), "do not spell"),
        (_continued(("\nYes", -0.1)), "do not spell"),
        ({"error": {"message": "boom"}}, "boom"),
    ],
)
def test_continuation_logprob_rejects_what_does_not_spell_the_candidate(body: Any, message: str) -> None:
    with pytest.raises(_Failure, match=message):
        continuation_logprob(body, "Yes")


def test_cached_first_token_scores_are_not_read_back_as_sequence_scores(
    fake_server: tuple[str, FakeBackend], tmp_path: Any
) -> None:
    from verifier.cache import ResultCache
    from verifier.judge import JudgeRequest, Verifier

    url, _ = fake_server
    reqs = [JudgeRequest("Write.", "Text.", (f"{MARK} short",))]
    probs = []
    for method in ("first_token", "sequence", "sequence"):
        v = Verifier(backend=fast([url], score_method=method), cache=ResultCache(tmp_path / "c.sqlite"))
        try:
            [[verdict]] = v.judge_batch(reqs)
            probs.append((verdict.prob, v.stats.cache_hits))
        finally:
            v.close()
    (ft, ft_hits), (seq, seq_hits), (again, again_hits) = probs
    assert (ft_hits, seq_hits, again_hits) == (0, 0, 1)
    assert seq == again and ft != seq


def test_a_server_refusing_continuation_scoring_gets_a_hint() -> None:
    app = flaky_app(fail_first=-1, status=400)
    with serving(app) as url, fast([url]) as b:
        [res] = b.score([msgs("x")], CANDS)
    assert res.logprobs is None and "HTTP 400" in (res.error or "")
    assert "score_method='first_token'" in (res.error or "")
