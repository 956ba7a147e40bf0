"""The reward service (`verif rl serve`, rl/service.py) and its clients (rl/remote.py), over loopback HTTP.

Oracles: the in-process reward (``rl.reward.BatchedReward`` on the same ground truths that `verif rl prepare`
writes), OpenRLHF 0.11.2's own client code (``openrlhf/utils/agent.py``, ``SingleTurnAgentExecutor``: the
payload it builds, the way it reads the answer, and ``samples_generator`` turning it into tensors), and
counts (every sample answered once, in order).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rl_fakes as fakes

from rl.prepare import verl_row
from rl.remote import RemoteReward, RewardClient, RewardServiceError, compute_score, compute_score_async
from rl.reward import BatchedReward, RewardOptionError, instance_for
from rl.service import EOS_MARKERS, create_reward_app, openrlhf_response
from verifier.http_guard import Guards, serve_in_thread
from verinstruct.dataset import read_instances
from verinstruct.reward import PARTS
from verinstruct.schema import Instance
from verinstruct.scorer import Scorer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = HERE / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
IFEVAL = REPO.parent / "shared" / "data" / "ifeval"
PART_KEYS = PARTS


def ground_truth(inst: Instance) -> str:
    """What `verif rl prepare` puts in reward_model.ground_truth."""
    return verl_row(inst, 0)["reward_model"]["ground_truth"]


def fixture_samples() -> list[tuple[Instance, str, str]]:
    """(instance, ground truth, response): each fixture row with its own response, a judge-refused variant
    (the fake judge says no to BAD) and an open <think> (a format failure)."""
    rows = [json.loads(x) for x in FIXTURES.read_text().splitlines() if x.strip()]
    insts = read_instances(FIXTURES)
    out = []
    for row, inst in zip(rows, insts, strict=True):
        gt = ground_truth(inst)
        for resp in (row["response"], row["response"] + "\nBAD", "<think>unfinished " + row["response"]):
            out.append((inst, gt, resp))
    return out


def in_process(samples: list[tuple[Instance, str, str]], judge_url: str | None, **options: Any) -> list[dict[str, Any]]:
    """The in-process reward's parts for the same ground truths (parsed as verl's reward function does)."""
    kw: dict[str, Any] = {"verifier": "openai:fake-judge", "base_url": judge_url} if judge_url else {"verifier": "none"}
    reward = BatchedReward(log_batches=False, **kw, **options)
    try:
        insts = [instance_for(gt, None) for _, gt, _ in samples]
        return [r.to_dict(None) for r in reward.score_batch(insts, [r for _, _, r in samples])]
    finally:
        reward.close()


def parts(result: dict[str, Any]) -> dict[str, Any]:
    assert result["error"] is None, result["error"]
    return {k: result[k] for k in PART_KEYS}


@pytest.fixture(scope="module")
def judge() -> Iterator[tuple[str, Any]]:
    with fakes.judge_server() as (url, j):
        yield url, j


@pytest.fixture(scope="module")
def service(judge: tuple[str, Any]) -> Iterator[str]:
    scorer = Scorer("openai:fake-judge", base_url=[judge[0]])
    app = create_reward_app(scorer, guards=Guards(api_key="k3y", command="verif rl serve"), close_scorer=True)
    with serve_in_thread(app) as url:
        yield url


def test_service_rewards_equal_the_in_process_reward_on_the_fixtures(service: str, judge: tuple[str, Any]) -> None:
    samples = fixture_samples()
    items = [{"ground_truth": gt, "response": r, "id": f"s{k}"} for k, (_, gt, r) in enumerate(samples)]
    for options in ({}, {"formula": "mean", "undecided": "mask"}, {"formula": "prob"}):
        got = RewardClient(service, api_key="k3y", options=options).score(items)
        assert [g["id"] for g in got] == [f"s{k}" for k in range(len(samples))]
        expected = in_process(samples, judge[0], **options)
        assert [parts(g) for g in got] == expected, options
    # the fixtures exercise every part: judged soft constraints, code checks, refusals and format failures
    assert {e["format_ok"] for e in expected} == {0, 1} and any(e["soft_total"] for e in expected)
    assert len({e["score"] for e in expected}) > 2


def test_service_rewards_equal_the_in_process_reward_on_ifeval(service: str) -> None:
    insts = read_instances(IFEVAL / "input_data.jsonl", format="ifeval")
    rows = [json.loads(x) for x in (IFEVAL / "responses_gpt4.jsonl").read_text().splitlines() if x.strip()]
    # the authors' two files are in the same order (one prompt differs in whitespace between them)
    assert sum(i.prompt == r["prompt"] for i, r in zip(insts, rows, strict=True)) >= 540
    samples = [(i, ground_truth(i), r["response"]) for i, r in zip(insts, rows, strict=True)]
    got = RewardClient(service, api_key="k3y", chunk_size=100).score(
        [{"ground_truth": gt, "response": r} for _, gt, r in samples])
    assert [parts(g) for g in got] == in_process(samples, None)


def test_a_bad_item_fails_alone(service: str, judge: tuple[str, Any]) -> None:
    samples = fixture_samples()[:3]
    good = [{"ground_truth": gt, "response": r} for _, gt, r in samples]
    bad = [{"ground_truth": "{not json", "response": "x", "id": "b0"},
           {"ground_truth": good[0]["ground_truth"], "response": 17, "id": "b1"},
           {"response": "no truth", "id": "b2"},
           "not an object",
           {"ground_truth": '{"checkers": ["[rule] x"], "functions": []}', "response": "x", "id": "b4"}]
    items = [good[0], bad[0], good[1], bad[1], bad[2], bad[3], good[2], bad[4]]
    r = httpx.post(f"{service}/v1/reward", json={"items": items}, headers={"Authorization": "Bearer k3y"})
    assert r.status_code == 200
    res = r.json()["results"]
    expected = in_process(samples, judge[0])
    assert [parts(res[k]) for k in (0, 2, 6)] == expected
    errors = {k: res[k]["error"] for k in (1, 3, 4, 5, 7)}
    assert all(res[k]["score"] is None for k in errors)
    assert "not JSON" in errors[1] and "b0" in errors[1]
    assert "items[3].response must be a string" in errors[3]
    assert "needs 'ground_truth'" in errors[4] and "items[5] must be an object" in errors[5]
    assert "needs the prompt" in errors[7]
    # the clients raise for such a sample, as the in-process reward does (never a silent number)
    with pytest.raises(ValueError, match="not JSON"):
        compute_score("x", "resp", "{not json", None, reward_url=service, api_key="k3y")


def test_client_fails_over_to_another_replica(service: str, judge: tuple[str, Any], unused_port: int) -> None:
    samples = fixture_samples()[:6]
    client = RewardClient(f"http://127.0.0.1:{unused_port},{service}", api_key="k3y", chunk_size=2, backoff_s=0.01)
    res = client.score([{"ground_truth": gt, "response": r} for _, gt, r in samples])
    assert [parts(r) for r in res] == in_process(samples, judge[0])
    assert client.retries >= 1  # the chunks that started on the dead replica went to the live one


def test_request_level_errors_name_the_field_and_keys_are_required(service: str) -> None:
    key = {"Authorization": "Bearer k3y"}
    r = httpx.post(f"{service}/v1/reward", json={"items": [], "options": {"formula": "nope"}}, headers=key)
    assert r.status_code == 400 and "formula" in r.json()["error"]["message"]
    r = httpx.post(f"{service}/v1/reward", json={"items": [], "options": {"bogus": 1}}, headers=key)
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]
    assert httpx.post(f"{service}/v1/reward", json={"items": []}).status_code == 401
    assert httpx.post(f"{service}/get_reward", json={"query": [], "prompts": [], "labels": []}).status_code == 401
    assert httpx.get(f"{service}/openapi.json", headers=key).status_code == 404
    nested = '{"items": ' + "[" * 50_000 + "]" * 50_000 + "}"  # the same guards as verif serve: a 400, not a 500
    r = httpx.post(f"{service}/v1/reward", content=nested, headers=key | {"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_deep"
    assert httpx.get(f"{service}/health").status_code == 200
    with pytest.raises(RewardServiceError, match="HTTP 401"):
        RewardClient(service, api_key="wrong").score([{"ground_truth": "{}", "response": ""}])


# ---- OpenRLHF's remote reward protocol, as openrlhf 0.11.2 sends and reads it -----------------------------


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from verifier.embedded import dequantised_dir, load_default, locate_default_gguf

    target = dequantised_dir(locate_default_gguf())
    if not (target / "tokenizer_config.json").is_file():
        load_default()
    return AutoTokenizer.from_pretrained(target)


def _openrlhf_post(url: str, query: str, prompt: str, label: Any) -> dict[str, Any]:
    """SingleTurnAgentExecutor._fetch_rewards_via_http with one server and one query (what execute() sends):
    aiohttp, json={"query", "prompts", "labels"}, raise_for_status, response.json()."""
    import aiohttp

    async def go() -> dict[str, Any]:
        payload = {"query": [query], "prompts": [prompt], "labels": [label]}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session, \
                session.post(url, json=payload) as resp:
            resp.raise_for_status()
            return await resp.json()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def openrlhf_service(judge: tuple[str, Any], tokenizer: Any) -> Iterator[str]:
    """The service told the policy's end-of-sequence token (`verif rl serve --eos-token`): the embedded
    SmolLM2's is <|im_start|>, not one of the usual markers."""
    scorer = Scorer("openai:fake-judge", base_url=[judge[0]])
    app = create_reward_app(scorer, guards=Guards(api_key="k3y"), eos=EOS_MARKERS + (tokenizer.eos_token,),
                            close_scorer=True)
    with serve_in_thread(app) as url:
        yield url


def test_openrlhf_remote_rm_protocol(openrlhf_service: str, judge: tuple[str, Any], tokenizer: Any) -> None:
    import torch

    service = openrlhf_service
    samples = fixture_samples()[:6]
    expected = in_process(samples, judge[0])
    for (inst, gt, response), exp in zip(samples, expected, strict=True):
        # OpenRLHF: prompt = the chat-templated text; query = decode(prompt ids + action ids), special tokens kept
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": inst.prompt}], tokenize=False,
                                               add_generation_prompt=True)
        prompt_ids = tokenizer(text=prompt, add_special_tokens=False, return_tensors="pt")["input_ids"][0].tolist()
        action_ids = tokenizer(text=response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        query = tokenizer.decode(prompt_ids + action_ids, skip_special_tokens=False)
        assert query.endswith(tokenizer.eos_token)
        info = _openrlhf_post(f"{service}/get_reward?api_key=k3y", query, prompt, gt)
        # how execute() and samples_generator read it
        score_value = info.get("scores")
        if score_value is None:
            score_value = info.get("rewards")
        reward_val = info.get("rewards")
        extra_logs = info.get("extra_logs") or {}
        reward_t = torch.tensor([reward_val])
        logs = {k: torch.tensor([v]) for k, v in extra_logs.items()}
        assert reward_t.flatten().tolist() == pytest.approx([exp["score"]])
        assert torch.tensor([score_value]).flatten().tolist() == pytest.approx([exp["score"]])
        for key in PART_KEYS[1:]:
            assert logs[key].flatten().tolist() == pytest.approx([float(exp[key])]), key
        assert logs["error"].flatten().tolist() == [0.0]
    # options in the URL; an unreadable label is flagged, not a silent score
    info = _openrlhf_post(f"{service}/get_reward?api_key=k3y&formula=mean", "P" + "resp", "P", "{not json")
    assert info["extra_logs"]["error"] == [1.0] and info["extra_logs"]["masked"] == [1.0]
    assert "not JSON" in info["errors"][0] and info["rewards"] == [0.0]
    # a query without its EOS was cut at the length limit: truncated, scored 0 (the in-process rule for verl's
    # truncated responses); and a template that prefills <think> needs </think> before the answer
    inst, gt, response = samples[0]
    assert expected[0]["score"] == 1.0
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": inst.prompt}], tokenize=False,
                                           add_generation_prompt=True)
    info = _openrlhf_post(f"{service}/get_reward?api_key=k3y", prompt + response, prompt, gt)
    assert info["rewards"] == [0.0] and info["extra_logs"]["truncated"] == [1.0]
    assert info["extra_logs"]["format_ok"] == [0.0]
    eos = tokenizer.eos_token
    for think, score in (("", 0.0), ("reasoning</think>\n", 1.0)):
        info = _openrlhf_post(f"{service}/get_reward?api_key=k3y", prompt + "<think>\n" + think + response + eos,
                              prompt + "<think>\n", gt)
        assert info["rewards"] == [score] and info["extra_logs"]["truncated"] == [0.0], think
    # the same prefilled prompt with think_prefilled=false in the URL: the in-process override
    info = _openrlhf_post(f"{service}/get_reward?api_key=k3y&think_prefilled=false", prompt + "<think>\n" + response
                          + eos, prompt + "<think>\n", gt)
    assert info["extra_logs"]["format_ok"] == [1.0]


def test_openrlhf_response_is_the_query_after_its_prompt() -> None:
    assert openrlhf_response("<s>user: hi\nassistant: Hello!<|im_end|>\n", "<s>user: hi\nassistant: ",
                             ("<|im_end|>",)) == ("Hello!", True)
    assert openrlhf_response("<s>user: hi\nassistant: Hello, and", "<s>user: hi\nassistant: ",
                             ("<|im_end|>",)) == ("Hello, and", False)
    with pytest.raises(ValueError, match="does not start with its prompt"):
        openrlhf_response("truncated prompt", "the full prompt", ())


def test_a_policy_eos_we_do_not_know_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """Queries that never end with a known EOS (a policy whose EOS is not in the list) would all count as
    truncated: after the first 32 the service says so once, naming --eos-token; one EOS seen keeps it quiet."""
    from rl.service import _EosWatch

    with caplog.at_level(logging.WARNING, logger="rl.service"):
        w = _EosWatch(("<|im_end|>",))
        for _ in range(31):
            w.saw(False)
        assert not caplog.records
        for _ in range(40):
            w.saw(False)
        assert len(caplog.records) == 1 and "--eos-token" in caplog.records[0].getMessage()
        caplog.clear()
        quiet = _EosWatch(("<|im_end|>",))
        quiet.saw(True)
        for _ in range(64):
            quiet.saw(False)
        assert not caplog.records


# ---- concurrency, deduplication, restarts -----------------------------------------------------------------


def _many(n: int) -> list[tuple[Instance, str, str]]:
    base = fixture_samples()
    return [(inst, gt, f"{resp}\n(variant {k // len(base)})") for k, (inst, gt, resp) in
            enumerate(base[k % len(base)] for k in range(n))]


def test_eight_clients_of_512_samples_each_get_every_reward_once(judge: tuple[str, Any], tmp_path: Path) -> None:
    url_j, j = judge
    samples = _many(512)
    start = j.requests
    expected = in_process(samples, url_j)
    one_pass = j.requests - start  # what ONE in-process reward asks of the judge for these 512 samples
    scorer = Scorer("openai:fake-judge", base_url=[url_j], cache_path=tmp_path / "judgements.sqlite")
    before = j.requests
    with serve_in_thread(create_reward_app(scorer, close_scorer=True)) as url:
        results: dict[int, list[dict[str, Any]]] = {}

        def client(c: int) -> None:
            items = [{"ground_truth": gt, "response": r, "id": f"c{c}-{k}"} for k, (_, gt, r) in enumerate(samples)]
            results[c] = RewardClient(url, chunk_size=512).score(items)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        health = httpx.get(f"{url}/health").json()
    assert sorted(results) == list(range(8))
    for c, res in results.items():
        assert [r["id"] for r in res] == [f"c{c}-{k}" for k in range(512)]
        assert [parts(r) for r in res] == expected
    assert health["samples"] == 8 * 512  # each sample scored exactly once by the service
    # one shared cache and deduplication: 8 clients cost the judge about what one in-process reward does (8
    # in-process rewards, one per trainer worker, would each ask it all again: 8x). Not exactly 1x: how the
    # requests fall into batching windows varies, and the sandbox's llm_* relay is deduplicated per batch only.
    assert 0 < j.requests - before < 2 * one_pass


class GatedJudge(fakes.FakeJudge):
    """The fake judge, holding every call until released (so a test knows a batch is in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.release = threading.Event()

    def _arrive(self, batch: Any) -> None:
        self.arrived.set()
        self.release.wait(120)
        super()._arrive(batch)


def _start_service(port: int, judge_url: str) -> subprocess.Popen[str]:
    """`verif rl serve` as a user starts it (its judge cache in memory: a restart starts empty)."""
    cmd = [sys.executable, "-c", "from verinstruct.cli import main; main()", "rl", "serve", "--port", str(port),
           "--verifier", "openai:fake-judge", "--base-url", judge_url, "--cache", ":memory:", "--log-level", "warning"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_kill_9_mid_batch_then_restart_loses_and_doubles_nothing(unused_port: int) -> None:
    from verifier.server import create_app

    judge = GatedJudge()
    samples = _many(96)
    items = [{"ground_truth": gt, "response": r, "id": f"x{k}"} for k, (_, gt, r) in enumerate(samples)]
    url = f"http://127.0.0.1:{unused_port}"
    with serve_in_thread(create_app(judge, batch_wait_ms=1)) as root:
        first = _start_service(unused_port, root + "/v1")
        second = None
        try:
            out: dict[str, Any] = {}

            def run() -> None:
                try:
                    client = RewardClient(url, chunk_size=32, backoff_s=0.2, max_backoff_s=1.0, deadline_s=300)
                    out["results"] = client.score(items)
                    out["retries"] = client.retries
                except BaseException as e:  # noqa: BLE001 - reported below
                    out["error"] = e

            t = threading.Thread(target=run)
            t.start()  # refused until the service is up: the client retries
            assert judge.arrived.wait(120), "the service never reached the judge"
            os.killpg(first.pid, signal.SIGKILL)  # the service and its sandbox workers, mid-batch
            first.wait(30)
            second = _start_service(unused_port, root + "/v1")
            judge.release.set()
            t.join(300)
            assert not t.is_alive()
            assert "error" not in out, out.get("error")
            res = out["results"]
            assert [r["id"] for r in res] == [f"x{k}" for k in range(len(items))]  # each once, in order
            assert out["retries"] >= 1
            judge.latency = 0
            assert [parts(r) for r in res] == in_process(samples, root + "/v1")
        finally:
            for p in (first, second):
                if p is not None and p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait(30)


def test_full_queue_gets_503_and_the_client_waits_and_retries(judge: tuple[str, Any]) -> None:
    samples = fixture_samples()[:4]
    scorer = Scorer("openai:fake-judge", base_url=[judge[0]])
    app = create_reward_app(scorer, guards=Guards(max_queue=4, retry_after_s=0), close_scorer=True)
    with serve_in_thread(app) as url:
        items = [{"ground_truth": gt, "response": r} for _, gt, r in samples]

        async def burst() -> list[int]:
            async with httpx.AsyncClient() as c:
                rs = await asyncio.gather(*(c.post(f"{url}/v1/reward", json={"items": items}) for _ in range(6)))
            return [r.status_code for r in rs]

        codes = asyncio.run(burst())
        assert set(codes) <= {200, 503}
        client = RewardClient(url, chunk_size=4, concurrency=6, backoff_s=0.05)
        res = client.score(items * 6)
        assert [parts(r) for r in res] == in_process(samples, judge[0]) * 6


def test_verl_function_and_trl_reward_score_through_the_service(service: str, judge: tuple[str, Any]) -> None:
    from rl.trl import VerIFReward

    samples = fixture_samples()[:9]
    expected = in_process(samples, judge[0])

    async def verl_calls() -> list[dict[str, Any]]:
        return await asyncio.gather(*(compute_score_async("verinstruct", r, gt, {"id": k}, reward_url=service,
                                                          api_key="k3y", formula="verif", reward_router_address="x")
                                      for k, (_, gt, r) in enumerate(samples)))

    got = asyncio.run(verl_calls())
    assert [{k: g[k] for k in PART_KEYS} for g in got] == [e | {"score": e["score"] or 0.0} for e in expected]
    trl = VerIFReward(reward=RemoteReward(service, api_key="k3y"))
    scores = trl(prompts=[i.prompt for i, _, _ in samples], completions=[r for _, _, r in samples],
                 ground_truth=[gt for _, gt, _ in samples])
    assert scores == [e["score"] for e in expected]
    assert trl.last_parts == expected
    trl.close()


# ---- the in-process reward's options, flags and time budget, over HTTP -------------------------------------


@pytest.mark.parametrize(("options", "named"), [({"formla": "mean"}, "formla"), ({"formula": "best"}, "formula"),
                                                ({"think_prefilled": "yes"}, "think_prefilled"),
                                                ({"sample_timeout_s": 0}, "sample_timeout_s")])
def test_a_bad_option_is_refused_as_the_in_process_reward_refuses_it(service: str, options: dict[str, Any],
                                                                    named: str) -> None:
    with pytest.raises(RewardOptionError, match=named) as in_process_error:
        BatchedReward(verifier="none", log_batches=False, **options)
    r = httpx.post(f"{service}/v1/reward", json={"items": [], "options": options},
                   headers={"Authorization": "Bearer k3y"})
    # the same words (the list of allowed options aside: a request takes the per-sample ones)
    assert r.status_code == 400 and str(in_process_error.value).split(";")[0] in r.json()["error"]["message"]
    # the clients check before sending anything (the verl function, TRL's RemoteReward)
    with pytest.raises(RewardOptionError, match=named):
        compute_score("x", "resp", "{}", None, reward_url=service, api_key="k3y", **options)
    with pytest.raises(RewardOptionError, match=named):
        RemoteReward(service, api_key="k3y", **options)


def test_verifier_options_are_the_services_own_never_silently_ignored(service: str) -> None:
    key = {"Authorization": "Bearer k3y"}
    for opt in ({"verifier": "openai:other"}, {"base_url": "http://v:8000/v1"}, {"verifier_mode": "generate"}):
        r = httpx.post(f"{service}/v1/reward", json={"items": [], "options": opt}, headers=key)
        assert r.status_code == 400 and next(iter(opt)) in r.json()["error"]["message"], opt
        with pytest.raises(RewardOptionError, match=f"{next(iter(opt))}.*verif rl serve"):
            compute_score("x", "resp", "{}", None, reward_url=service, api_key="k3y", **opt)
    r = httpx.post(f"{service}/get_reward?api_key=k3y&formla=mean", json={"query": [], "prompts": [], "labels": []})
    assert r.status_code == 400 and "formla" in r.json()["error"]["message"]


def test_prefilled_and_truncated_flags_score_as_in_process(service: str, judge: tuple[str, Any]) -> None:
    base = fixture_samples()[:6]
    flags = [(None, False), (True, False), (False, True), (True, True)]
    samples = [(s, f) for s in base for f in flags]
    items = [{"ground_truth": gt, "response": r, "prefilled": p, "truncated": t} for (_, gt, r), (p, t) in samples]
    got = [parts(g) for g in RewardClient(service, api_key="k3y").score(items)]
    reward = BatchedReward(verifier="openai:fake-judge", base_url=judge[0], log_batches=False)
    try:
        expected = [r.to_dict(None) for r in reward.score_batch(
            [instance_for(gt, None) for (_, gt, _), _ in samples], [r for (_, _, r), _ in samples],
            prefilled=[p for _, (p, _) in samples], truncated=[t for _, (_, t) in samples])]
    finally:
        reward.close()
    assert got == expected
    # by hand: a truncated response is a format failure scored 0 with truncated=1; a prefilled <think> with no
    # </think> never reached its answer
    for ((_, _, r), (p, t)), g in zip(samples, got, strict=True):
        if t:
            assert (g["score"], g["format_ok"], g["truncated"]) == (0.0, 0, 1)
        elif p and "</think>" not in r:
            assert (g["score"], g["format_ok"], g["truncated"]) == (0.0, 0, 0)
    assert any(g["format_ok"] and g["score"] for g in got)


def test_a_sample_past_sample_timeout_s_gets_the_undecided_policy_as_in_process() -> None:
    from rl.reward import Sample
    from verifier.server import create_app

    judge = GatedJudge()  # never answers until released: the budget runs out whatever the machine's speed
    samples = [s for s in fixture_samples() if s[0].counts()["soft"] and "<think>" not in s[2]][:2]
    with serve_in_thread(create_app(judge, batch_wait_ms=1)) as root:
        scorer = Scorer("openai:fake-judge", base_url=[root + "/v1"])
        try:
            with serve_in_thread(create_reward_app(scorer)) as url:
                for undecided in ("fail", "mask"):
                    opts = {"sample_timeout_s": 0.5, "undecided": undecided}
                    got = RewardClient(url, options=opts).score(
                        [{"ground_truth": gt, "response": r} for _, gt, r in samples])
                    reward = BatchedReward(verifier="openai:fake-judge", base_url=root + "/v1", log_batches=False,
                                           **opts)
                    try:
                        expected = [reward(Sample(instance_for(gt, None), r)).to_dict(None) for _, gt, r in samples]
                    finally:
                        reward.close(timeout=1)
                    assert [parts(g) for g in got] == expected, undecided
                    assert all(e["timeout"] == 1 and e["undecided"] == e["hard_total"] + e["soft_total"]
                               for e in expected)
                    assert {e["score"] for e in expected} == ({0.0} if undecided == "fail" else {None})
                health = httpx.get(f"{url}/health").json()
                assert health["timeouts"] == 2 * len(samples)
                judge.release.set()
        finally:
            judge.release.set()
            scorer.close()


def test_verif_rl_serve_refuses_what_the_in_process_reward_refuses() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VERINSTRUCT_VERIFIER"}
    cmd = [sys.executable, "-c", "from verinstruct.cli import main; main()", "rl", "serve", "--port", "0"]
    for extra, named in (([], "--verifier"), (["--verifier", "none", "--option", "formla=mean"], "formla"),
                         (["--verifier", "none", "--option", "sample_timeout_s=soon"], "sample_timeout_s"),
                         (["--verifier", "openai:x", "--verifier-mode", "fast"], "verifier_mode"),
                         (["--verifier", "none", "--sandbox-process-per", "sample"], "--sandbox-process-per")):
        proc = subprocess.run(cmd + extra, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and named in proc.stderr, (extra, proc.stderr[-500:])
