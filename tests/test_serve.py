"""`verif serve`: the OpenAI-compatible app (schema, validation, micro-batching) over real loopback HTTP,
the CLI, and the embedded model served end to end."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.server import create_app, parse_chat_request, serve_in_thread

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from verinstruct.cli import main; main()"]


class RecordingBackend:
    """Fake model: echoes the last message upper-cased; records every batch; "FAIL" fails that item and
    "CRASH" makes the whole call raise."""

    kind = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.model = "recorder"
        self.delay = delay
        self.batches: list[tuple[int, GenerationConfig]] = []
        self.scored: list[tuple[int, tuple[str, ...]]] = []

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        self.batches.append((len(batch), config))
        time.sleep(self.delay)
        if any("CRASH" in m[-1]["content"] for m in batch):
            raise RuntimeError("model exploded")
        out = []
        for m in batch:
            text = m[-1]["content"].upper()
            if "FAIL" in text:
                out.append(GenResult(None, error="item too long"))
                continue
            if "HUGE" in text:
                out.append(GenResult(None, error="prompt exceeds the context window", bad_request=True))
                continue
            lps = None
            if config.logprobs or config.top_logprobs:
                top = (("A", -0.5), ("B", -1.5), ("C", -2.5))[: config.top_logprobs]
                lps = (TokenLogprob(text, -0.5, top), TokenLogprob("!", -0.01, ()))
            out.append(
                GenResult(text, finish_reason="length", logprobs=lps, prompt_tokens=11, completion_tokens=2)
            )
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        """log P(candidate) = -len(candidate) / 10 - len(last message) / 100; "HUGE" is the item's fault."""
        self.scored.append((len(batch), tuple(candidates)))
        out = []
        for m in batch:
            if "HUGE" in m[-1]["content"].upper():
                out.append(ScoreResult(None, "prompt exceeds the context window", bad_request=True))
                continue
            n = len(m[-1]["content"])
            out.append(ScoreResult({c: -len(c) / 10 - n / 100 for c in candidates}))
        return out

    def close(self) -> None:
        pass


serving = serve_in_thread


def chat(content: str = "hello", **kw: Any) -> dict[str, Any]:
    return {"model": "recorder", "messages": [{"role": "user", "content": content}], **kw}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, RecordingBackend]]:
    backend = RecordingBackend()
    with serving(create_app(backend, batch_wait_ms=1)) as url:
        yield url, backend


def test_health_and_models(server: tuple[str, RecordingBackend]) -> None:
    url, _ = server
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["model"] == "recorder" and health["backend"] == "fake"
    models = httpx.get(f"{url}/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["recorder"]


def test_completion_schema(server: tuple[str, RecordingBackend]) -> None:
    url, backend = server
    r = httpx.post(f"{url}/v1/chat/completions", json=chat("abc", max_tokens=7, temperature=0.5, stop=["\n"]))
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "recorder"
    [choice] = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "ABC"}
    assert choice["finish_reason"] == "length" and choice["logprobs"] is None
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    assert backend.batches[-1][1] == GenerationConfig(max_tokens=7, temperature=0.5, stop=("\n",))


def test_logprobs_schema(server: tuple[str, RecordingBackend]) -> None:
    url, backend = server
    r = httpx.post(f"{url}/v1/chat/completions", json=chat("é", logprobs=True, top_logprobs=2))
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["É", "!"]
    assert content[0]["logprob"] == -0.5 and content[0]["bytes"] == list("É".encode())
    assert [(a["token"], a["logprob"]) for a in content[0]["top_logprobs"]] == [("A", -0.5), ("B", -1.5)]
    assert backend.batches[-1][1].top_logprobs == 2 and backend.batches[-1][1].logprobs
    bare = httpx.post(f"{url}/v1/chat/completions", json=chat("x", logprobs=True)).json()
    assert [t["top_logprobs"] for t in bare["choices"][0]["logprobs"]["content"]] == [[], []]


def test_official_client_reads_the_response(server: tuple[str, RecordingBackend]) -> None:
    from openai import OpenAI

    url, _ = server
    client = OpenAI(base_url=f"{url}/v1", api_key="EMPTY", max_retries=0)
    try:
        res = client.chat.completions.create(
            model="recorder",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            max_tokens=3,
            logprobs=True,
            top_logprobs=3,
        )
        assert res.choices[0].message.content == "HI"
        assert res.choices[0].logprobs is not None and res.choices[0].logprobs.content is not None
        assert res.choices[0].logprobs.content[0].top_logprobs[2].token == "C"
        assert res.usage is not None and res.usage.total_tokens == 13
        assert [m.id for m in client.models.list()] == ["recorder"]
    finally:
        client.close()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat() | {"messages": []}, "messages"),
        (chat() | {"messages": ["hi"]}, "messages[0]"),
        (chat() | {"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        (chat() | {"messages": [{"role": "user"}]}, "messages[0].content"),
        (
            chat() | {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        (chat(n=2), "n"),
        (chat(stream=True), "stream"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(max_tokens=2.5), "max_tokens"),
        (chat(temperature="hot"), "temperature"),
        (chat(temperature=3), "temperature"),
        (chat(logprobs="yes"), "logprobs"),
        (chat(logprobs=True, top_logprobs=21), "top_logprobs"),
        (chat(top_logprobs=2), "top_logprobs"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(stop=[""]), "stop"),
    ],
)
def test_invalid_requests_get_400_naming_the_field(
    server: tuple[str, RecordingBackend], body: dict[str, Any], param: str
) -> None:
    url, _ = server
    r = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param
    assert param.split("[")[0].split(".")[0] in err["message"]


def test_body_that_is_not_json_gets_400(server: tuple[str, RecordingBackend]) -> None:
    url, _ = server
    r = httpx.post(
        f"{url}/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_text_parts_and_developer_role_are_accepted() -> None:
    req = parse_chat_request(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "rules"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            ],
            "max_completion_tokens": 9,
        }
    )
    assert req.messages == [{"role": "system", "content": "rules"}, {"role": "user", "content": "ab"}]
    assert req.config == GenerationConfig(max_tokens=9, temperature=0.0)


def test_deterministic_item_errors_get_400_and_are_not_retried(server: tuple[str, RecordingBackend]) -> None:
    """An error that is the request's own fault (bad_request) is a 400: retrying cannot help."""
    from verifier.backends.openai_backend import OpenAIBackend

    url, backend = server
    r = httpx.post(f"{url}/v1/chat/completions", json=chat("huge"))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "context window" in r.json()["error"]["message"]
    before = len(backend.batches)
    with OpenAIBackend("recorder", [url], max_retries=3, backoff_base=0.01) as b:
        [res] = b.generate([[{"role": "user", "content": "huge"}]], GenerationConfig(max_tokens=2))
        [sc] = b.score([[{"role": "user", "content": "huge"}]], ["Yes"])
    assert "HTTP 400" in (res.error or "") and len(backend.batches) == before + 1  # one try only
    assert "HTTP 400" in (sc.error or "") and "context window" in (sc.error or "")


def test_failed_items_get_500_and_leave_their_batch_alone(server: tuple[str, RecordingBackend]) -> None:
    url, _ = server

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            return list(
                await asyncio.gather(
                    *(client.post("/v1/chat/completions", json=chat(t)) for t in ["ok", "fail me"])
                )
            )

    ok, bad = asyncio.run(send())
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "OK"
    assert bad.status_code == 500
    assert bad.json()["error"] == {
        "message": "item too long",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    crash = httpx.post(f"{url}/v1/chat/completions", json=chat("CRASH"))
    assert crash.status_code == 500 and "model exploded" in crash.json()["error"]["message"]
    after = httpx.post(f"{url}/v1/chat/completions", json=chat("still alive"))  # the worker survived
    assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"] == "STILL ALIVE"


def test_concurrent_requests_are_micro_batched() -> None:
    backend = RecordingBackend(delay=0.3)
    with serving(create_app(backend, max_batch_size=4, batch_wait_ms=20)) as url:

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                greedy = [client.post("/v1/chat/completions", json=chat(f"q{i}")) for i in range(10)]
                sampled = [
                    client.post("/v1/chat/completions", json=chat(f"s{i}", temperature=1.0)) for i in range(2)
                ]
                return list(await asyncio.gather(*greedy, *sampled))

        responses = asyncio.run(send())
        health = httpx.get(f"{url}/health").json()
    texts = [r.json()["choices"][0]["message"]["content"] for r in responses]
    assert texts == [f"Q{i}" for i in range(10)] + ["S0", "S1"]
    sizes = [n for n, _ in backend.batches]
    assert sum(sizes) == 12
    assert max(sizes) > 1 and max(sizes) <= 4  # batched, and never past max_batch_size
    assert health["requests"] == 12 and health["batches"] == len(sizes) < 12
    temps = {cfg.temperature for _, cfg in backend.batches}
    assert temps == {0.0, 1.0}  # a batch never mixes configs


def test_create_app_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        create_app(RecordingBackend(), max_batch_size=0)
    with pytest.raises(ValueError, match="batch_wait_ms"):
        create_app(RecordingBackend(), batch_wait_ms=-1)


# --------------------------------------------------------------------------- the CLI


def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_cli_help_lists_the_options() -> None:
    res = _run_cli("serve", "--help")
    assert res.returncode == 0, res.stderr
    for opt in (
        "--model",
        "--host",
        "--port",
        "--max-batch-size",
        "--batch-wait-ms",
        "--backend",
        "--api-key",
        "VERIF_API_KEY",
        "--max-body-bytes",
        "--max-queue",
        "--max-tokens-limit",
    ):
        assert opt in res.stdout


def test_cli_rejects_an_unknown_backend() -> None:
    res = _run_cli("serve", "--backend", "tpu")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: --backend must be one of transformers, vllm, got 'tpu'"
    ]


def test_cli_vllm_without_vllm_says_how_to_install() -> None:
    pytest.importorskip("verifier.backends.vllm_backend")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    res = _run_cli("serve", "--backend", "vllm")
    assert res.returncode == 2
    assert "pip install vllm" in res.stderr and "Traceback" not in res.stderr


def test_cli_missing_model_path_is_a_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    res = _run_cli("serve", "--model", str(tmp_path / "no-such-model"))
    assert res.returncode == 2
    assert res.stderr.startswith("error: cannot load model") and "Traceback" not in res.stderr


def _embedded_model_or_skip() -> None:
    try:
        import verifier.backends.transformers_backend  # noqa: F401
        from verifier.embedded import locate_default_gguf

        locate_default_gguf()
    except (ImportError, FileNotFoundError) as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"embedded model unavailable: {e}")


def test_verif_serve_runs_the_embedded_model_end_to_end(unused_port: int) -> None:
    """`verif serve` in a subprocess with the real default model; the openai backend and the Verifier use it."""
    _embedded_model_or_skip()
    from verifier.backends.openai_backend import OpenAIBackend
    from verifier.judge import JudgeRequest, Verifier

    port = unused_port
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--device", "cpu", "--log-level", "warning"],
        env=os.environ | {"VERIF_API_KEY": "k3y"},  # --api-key from the environment
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"verif serve exited with {proc.returncode}: {out[-2000:]}")
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("verif serve did not answer /health within 240 s")
                time.sleep(0.5)
        assert health["status"] == "ok" and health["backend"] == "transformers"
        model = health["model"]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401
        key = {"api_key": "k3y"}
        with OpenAIBackend(model, [f"http://127.0.0.1:{port}"], timeout=120, max_retries=1, **key) as b:
            question = [{"role": "user", "content": "Is the sky blue? Answer Yes or No."}]
            gen = b.generate([question, question], GenerationConfig(max_tokens=8, top_logprobs=3))
            scored = b.score([question], ["Yes", "No"])
        assert [g.error for g in gen] == [None, None]
        assert gen[0].text == gen[1].text and gen[0].text  # greedy: deterministic
        assert gen[0].logprobs and len(gen[0].logprobs[0].top) == 3
        assert all(lp <= 0 for t in gen[0].logprobs for _, lp in t.top)
        assert scored[0].error is None and scored[0].method == "sequence"
        assert scored[0].logprobs is not None and set(scored[0].logprobs) == {"Yes", "No"}

        v = Verifier(
            backend=OpenAIBackend(model, [f"http://127.0.0.1:{port}"], timeout=120, **key), mode="score"
        )
        try:
            [[verdict]] = v.judge_batch([JudgeRequest("Say hi.", "Hi!", ("Be polite.",))])
        finally:
            v.close()
        assert verdict.error is None and verdict.prob is not None and 0.0 <= verdict.prob <= 1.0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- scoring a continued message


def scoring(content: str, answer: str, **kw: Any) -> dict[str, Any]:
    body = chat(content) | {
        "add_generation_prompt": False,
        "continue_final_message": True,
        "prompt_logprobs": 0,
        "max_tokens": 1,
    }
    body["messages"] = [*body["messages"], {"role": "assistant", "content": answer}]
    return body | kw


def test_scoring_request_returns_the_continuations_log_probability(server: tuple[str, RecordingBackend]) -> None:
    url, backend = server
    r = httpx.post(f"{url}/v1/chat/completions", json=scoring("abcd", "[[1]]"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == ""
    [head, entry] = body["prompt_logprobs"]
    assert head is None
    assert entry == {"-1": {"logprob": pytest.approx(-0.5 - 0.04), "rank": None, "decoded_token": "[[1]]"}}
    assert backend.scored[-1] == (1, ("[[1]]",))


def test_concurrent_scoring_requests_share_backend_calls() -> None:
    backend = RecordingBackend()
    # the batch closes when its 4 requests are in (a long wait only bounds a loaded machine's stragglers)
    with serving(create_app(backend, max_batch_size=4, batch_wait_ms=3000)) as url:

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                reqs = [scoring(q, a) for q in ("q1", "q22") for a in ("Yes", "No")]
                return list(await asyncio.gather(*(client.post("/v1/chat/completions", json=b) for b in reqs)))

        responses = asyncio.run(send())
    lps = [list(r.json()["prompt_logprobs"][1].values())[0]["logprob"] for r in responses]
    assert lps == pytest.approx([-0.3 - 0.02, -0.2 - 0.02, -0.3 - 0.03, -0.2 - 0.03])
    # one call: each conversation once, every candidate (in arrival order)
    assert [(n, set(c)) for n, c in backend.scored] == [(2, {"Yes", "No"})]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (scoring("x", "Yes", prompt_logprobs=1), "prompt_logprobs"),
        (scoring("x", "Yes", continue_final_message=False), "prompt_logprobs"),
        (scoring("x", "Yes", add_generation_prompt=True), "prompt_logprobs"),
        (chat("x", continue_final_message=True), "continue_final_message"),
        (chat("x", add_generation_prompt=False), "add_generation_prompt"),
        (chat("x", continue_final_message="yes"), "continue_final_message"),
        (chat("x", prompt_logprobs=0, continue_final_message=True, add_generation_prompt=False), "messages[0]"),
        (scoring("x", ""), "messages[1]"),
    ],
)
def test_bad_scoring_requests_get_400(server: tuple[str, RecordingBackend], body: dict[str, Any], param: str) -> None:
    url, _ = server
    r = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


# --------------------------------------------------------------------------- guards


def test_unknown_model_gets_openai_style_404(server: tuple[str, RecordingBackend]) -> None:
    url, _ = server
    r = httpx.post(f"{url}/v1/chat/completions", json=chat() | {"model": "gpt-5"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert err["type"] == "invalid_request_error" and "gpt-5" in err["message"] and "recorder" in err["message"]
    assert set(err) == {"message", "type", "param", "code"}


def test_api_key_is_required_except_for_health() -> None:
    from openai import AuthenticationError, OpenAI

    from verifier.backends.openai_backend import OpenAIBackend

    with serving(create_app(RecordingBackend(), api_key="s3cret")) as url:
        assert httpx.get(f"{url}/health").status_code == 200  # open for probes
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(f"{url}/v1/chat/completions", json=chat(), headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
            assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 401
        ok = httpx.post(f"{url}/v1/chat/completions", json=chat("hi"), headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        client = OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(AuthenticationError):
            client.models.list()
        client.close()
        with OpenAIBackend("recorder", [url], api_key="s3cret") as b:
            [res] = b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_tokens=2))
        assert res.text == "HI"
        with OpenAIBackend("recorder", [url], api_key="wrong", max_retries=3) as b:
            [res] = b.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_tokens=2))
        assert "HTTP 401" in (res.error or "") and "after" not in (res.error or "")  # not retried


def test_oversized_body_gets_413() -> None:
    backend = RecordingBackend()
    with serving(create_app(backend, max_body_bytes=2000)) as url:
        big = chat("x" * 3000)
        r = httpx.post(f"{url}/v1/chat/completions", json=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert "2000 bytes" in r.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
            yield b'{"model": "recorder", "messages": [{"role": "user", "content": "'
            for _ in range(30):
                yield b"y" * 100
            yield b'"}]}'

        r = httpx.post(f"{url}/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert httpx.post(f"{url}/v1/chat/completions", json=chat("small")).status_code == 200
    assert all(n == 1 for n, _ in backend.batches) and len(backend.batches) == 1


def test_max_tokens_above_the_limit_gets_400() -> None:
    with serving(create_app(RecordingBackend(), max_tokens_limit=64)) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=chat(max_tokens=65))
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
        assert "limit of 64" in r.json()["error"]["message"]
        assert httpx.post(f"{url}/v1/chat/completions", json=chat(max_tokens=64)).status_code == 200


def test_full_queue_gets_503_with_retry_after_and_the_client_waits_and_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import re

    from verifier.backends.openai_backend import OpenAIBackend

    backend = RecordingBackend(delay=1.0)
    with serving(create_app(backend, max_queue=1, batch_wait_ms=0, retry_after_s=1)) as url:

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                first = asyncio.ensure_future(client.post("/v1/chat/completions", json=chat("a")))
                for _ in range(200):  # until the first is admitted: the queue is then full
                    if (await client.get("/health")).json()["pending"] == 1:
                        break
                    await asyncio.sleep(0.02)
                second = await client.post("/v1/chat/completions", json=chat("b"))
                return [await first, second]

        ok, busy = asyncio.run(send())
        assert ok.status_code == 200
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "server_busy"
        # the openai backend retries a 503 and waits at least Retry-After (its own backoff is far shorter)
        caplog.set_level(logging.WARNING, logger="verifier.backends.openai_backend")
        with OpenAIBackend("recorder", [url], concurrency=4, backoff_base=0.01, backoff_max=5.0) as b:
            res = b.generate([[{"role": "user", "content": f"q{i}"}] for i in range(2)], GenerationConfig())
    assert [r.text for r in res] == ["Q0", "Q1"]
    waits = [float(w) for w in re.findall(r"HTTP 503.*retrying in ([0-9.]+)s", caplog.text)]
    assert waits and all(w >= 1.0 for w in waits)


def test_create_app_rejects_bad_guard_settings() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        create_app(RecordingBackend(), max_queue=0)
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(RecordingBackend(), max_body_bytes=0)


# ---- closed by default (issue 16): one auth dependency, no docs, slow-loris and nesting guards ------------


def test_docs_and_schema_are_not_served_and_every_route_needs_the_key() -> None:
    """Before: /docs, /redoc and /openapi.json answered without a key (auth was called by hand per route)."""
    with serving(create_app(RecordingBackend(), api_key="s3cret")) as url:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            r = httpx.get(url + path)
            assert r.status_code in (401, 404), (path, r.status_code)
            assert "openapi" not in r.text.lower() and "swagger" not in r.text.lower()
            r = httpx.get(url + path, headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 404, path
        app = create_app(RecordingBackend(), api_key="s3cret")
        # every route the app has (a future one included) goes through the app-level key dependency
        assert len(app.router.dependencies) == 1
        assert httpx.get(f"{url}/health").status_code == 200


def test_cli_refuses_a_network_host_without_a_key() -> None:
    res = _run_cli("serve", "--host", "0.0.0.0")
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error: verif serve --host 0.0.0.0") and "--api-key" in line and "--no-auth" in line


def test_deeply_nested_body_gets_400_not_500() -> None:
    """Before: '[' * 100000 raised RecursionError in the parser, a 500."""
    with serving(create_app(RecordingBackend())) as url:
        for body in ("[" * 100_000 + "]" * 100_000, '{"model": ' + "[" * 40 + "]" * 40 + "}"):
            r = httpx.post(f"{url}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "too_deep"
        assert httpx.post(f"{url}/v1/chat/completions", json=chat("ok")).status_code == 200  # still serving


def _half_open(url: str, data: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=60)
    s.sendall(data)
    return s


def _read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (headers, then Content-Length bytes of body), however it is segmented."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_half_open_request_is_closed_by_the_header_timeout() -> None:
    """Before: a request that never finishes its headers held its connection 30 s and more (slow-loris).
    The server must close it (recv sees EOF) long before the client's own 60 s socket timeout."""
    with serving(create_app(RecordingBackend(), header_timeout_s=0.3)) as url:
        s = _half_open(url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        try:
            assert s.recv(1024) == b""  # closed by the server, nothing answered
        finally:
            s.close()
        assert httpx.get(f"{url}/health").status_code == 200


def test_slow_body_gets_408() -> None:
    with serving(create_app(RecordingBackend(), body_timeout_s=0.3)) as url:
        s = _half_open(url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 1000\r\n\r\n{\"model\": ")
        try:
            reply = _read_response(s)
        finally:
            s.close()
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"request_timeout" in reply


def test_connections_beyond_the_cap_get_503() -> None:
    with serving(create_app(RecordingBackend(), max_connections=2)) as url:
        held = [_half_open(url, b"GET /health HTTP/1.1\r\nHost: x\r\n") for _ in range(2)]
        try:
            r = httpx.get(f"{url}/health")
            assert r.status_code == 503
        finally:
            for s in held:
                s.close()


def test_serve_verifier_recipe_needs_a_key_beyond_loopback_and_binds_what_it_says() -> None:
    """Before: rl/recipes/serve_verifier.sh bound 0.0.0.0 with no key. DRY_RUN=1 prints the command it runs."""
    script = REPO / "rl" / "recipes" / "serve_verifier.sh"
    env = {k: v for k, v in os.environ.items() if k not in ("VERIF_API_KEY", "HOST")} | {"DRY_RUN": "1"}
    for engine in ("vllm", "sglang", "verif"):
        res = subprocess.run(["bash", str(script)], env=env | {"ENGINE": engine}, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 2 and "VERIF_API_KEY" in res.stderr and not res.stdout
        res = subprocess.run(["bash", str(script)], env=env | {"ENGINE": engine, "VERIF_API_KEY": "k3y"},
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "--host 0.0.0.0" in res.stdout and "--port 8000" in res.stdout
        # the key reaches the engine (vLLM and verif serve read it from the environment, not the command line)
        assert ("--api-key k3y" in res.stdout) == (engine == "sglang")
        assert ("VLLM_API_KEY=***" in res.stdout) == (engine == "vllm")
        assert "VERIF_API_KEY=***" in res.stdout
        res = subprocess.run(["bash", str(script)], env=env | {"ENGINE": engine, "HOST": "127.0.0.1"},
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "--host 127.0.0.1" in res.stdout
