"""One GRPO step of VerIF rewards: verl's per-sample calls with vs without the micro-batcher, vs a plain loop.

The step: ``--prompts`` (32) fixture rows with hard code, untagged and ``[llm]`` constraints, ``--responses``
(16) responses each (the row's response, variants, some the judge rejects, some duplicates, as GRPO groups
have). The verifier: a loopback OpenAI-compatible fake (tests/rl_fakes.py) with ``--latency`` seconds per
backend call and no concurrency limit. Three ways, each with a fresh Scorer, same verifier settings:

* (a) verl-style per-sample ``compute_score_async`` calls (one asyncio task each, as verl's
  ``RewardLoopWorker.compute_score_batch`` starts them), coalesced by the micro-batcher (``rl.verl_reward``);
* (b) the same per-sample tasks, each scoring its own one-sample batch (no micro-batcher);
* (c) a plain loop, one sample after the other.

Prints, per way: verifier requests, largest batch the verifier saw, Scorer batches, wall time. The last line is
``ratio: X`` = wall (c) / wall (a).

    python perf/bench_reward.py [--prompts 32] [--responses 16] [--latency 0.05] [--formula verif]

``--stream``: verl 0.9.1's real call pattern. With no reward model, each trajectory is scored as it finishes, by a
one-sample call to a random reward worker (``AgentLoopWorker._compute_score``). Here: the step's samples finish
spread over ``--spread`` seconds (seeded uniform finishing times), each handed to one of ``--workers`` reward
workers (one :class:`rl.reward.BatchedReward` each, as each Ray actor has its own) chosen at random; the judge is
a loopback OpenAI-compatible server that answers every request after ``--latency`` seconds, all concurrently (as
vLLM does), in generate mode (one request per judgement). Prints the tail (last trajectory finished -> its last
reward), the judge requests and the distinct judgements (distinct (row, answer) pairs with soft constraints), and
``ratio: X`` = distinct judgements / judge requests (>= 1: no judgement asked twice).

    python perf/bench_reward.py --stream [--prompts 32 --responses 16 --spread 20 --latency 0.5 --workers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # module level: FastAPI resolves the handler's annotations here

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "tests" / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


def _fakes() -> Any:
    spec = importlib.util.spec_from_file_location("rl_fakes", ROOT / "tests" / "rl_fakes.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["rl_fakes"] = mod
    spec.loader.exec_module(mod)
    return mod


def step(n_prompts: int, n_resp: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(ground truths, responses, extra_info) of one GRPO step, deterministic."""
    from rl.prepare import verl_row
    from verinstruct.convert import from_verif

    rows = [json.loads(x) for x in RAW.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r.get("response")]
    gts, resps, extras = [], [], []
    for p in range(n_prompts):
        row = rows[p % len(rows)]
        vr = verl_row(from_verif({**row, "id": f"{row['id']}-{p}"}), p)
        base = row["response"]
        for j in range(n_resp):
            if j % 4 == 0:
                text = base  # GRPO groups repeat answers
            elif j % 4 == 1:
                text = base + "\nBAD"  # the judge says no
            elif j % 4 == 2:
                text = f"<think>draft {j}</think>{base}\n\nHope this helps ({j})."
            else:
                text = base.split("\n")[0] + f" ({j})"
            gts.append(vr["reward_model"]["ground_truth"])
            resps.append(text)
            extras.append(vr["extra_info"])
    return gts, resps, extras


def run_a(opts: dict[str, Any], gts: list[str], resps: list[str], extras: list[dict[str, Any]]) -> tuple[float, list[float], int]:
    from rl.reward import close_shared, shared_reward
    from rl.verl_reward import compute_score_async

    async def all_samples() -> list[dict[str, Any]]:
        return await asyncio.gather(*(compute_score_async("verinstruct", r, g, e, **opts)
                                      for g, r, e in zip(gts, resps, extras, strict=True)))

    t0 = time.perf_counter()
    out = asyncio.run(all_samples())
    wall = time.perf_counter() - t0
    batches = shared_reward(**opts).batcher.stats.batches
    close_shared()
    return wall, [o["score"] for o in out], batches


def run_b(opts: dict[str, Any], gts: list[str], resps: list[str], extras: list[dict[str, Any]]) -> tuple[float, list[float], int]:
    from rl.reward import BatchedReward, instance_for

    reward = BatchedReward(**opts)

    async def one(g: str, r: str, e: dict[str, Any]) -> float | None:
        [res] = await asyncio.to_thread(reward.score_batch, [instance_for(g, e)], [r])
        return reward.parts(res)["score"]

    async def all_samples() -> list[float | None]:
        return await asyncio.gather(*(one(g, r, e) for g, r, e in zip(gts, resps, extras, strict=True)))

    t0 = time.perf_counter()
    out = asyncio.run(all_samples())
    wall = time.perf_counter() - t0
    reward.close()
    return wall, out, len(resps)  # type: ignore[return-value]


def run_c(opts: dict[str, Any], gts: list[str], resps: list[str], extras: list[dict[str, Any]]) -> tuple[float, list[float], int]:
    from rl.reward import BatchedReward, instance_for

    reward = BatchedReward(**opts)
    t0 = time.perf_counter()
    out = []
    for g, r, e in zip(gts, resps, extras, strict=True):
        [res] = reward.score_batch([instance_for(g, e)], [r])
        out.append(reward.parts(res)["score"])
    wall = time.perf_counter() - t0
    reward.close()
    return wall, out, len(resps)


def concurrent_judge(latency: float) -> tuple[Any, dict[str, Any]]:
    """A FastAPI app answering each chat completion after ``latency`` s, concurrently; and its counters."""
    app = FastAPI()
    seen: dict[str, Any] = {"requests": 0, "conversations": set(), "in_flight": 0, "most_in_flight": 0}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        last = body["messages"][-1]["content"]
        seen["requests"] += 1
        seen["conversations"].add(last)
        seen["in_flight"] += 1
        seen["most_in_flight"] = max(seen["most_in_flight"], seen["in_flight"])
        try:
            await asyncio.sleep(latency)
        finally:
            seen["in_flight"] -= 1
        verdict = "[[0]]" if "BAD" in last else "[[1]]"
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", "judge"),
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": f"Brief check.\nFinal answer: {verdict}"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    return app, seen


def run_stream(args: argparse.Namespace) -> None:
    import random

    from rl.reward import BatchedReward, Sample, instance_for
    from verifier.server import serve_in_thread

    gts, resps, extras = step(args.prompts, args.responses)
    rng = random.Random(0)
    finish = sorted(rng.uniform(0, args.spread) for _ in resps)
    order = list(range(len(resps)))
    rng.shuffle(order)  # which sample finishes when: GRPO groups finish interleaved
    samples = [Sample(instance_for(gts[k], extras[k]), resps[k]) for k in order]
    distinct = {(s.instance.id, s.response) for s in samples if s.instance.counts()["soft"]
                and "<think>" not in s.response.split("</think>")[-1]}
    app, seen = concurrent_judge(args.latency)
    with serve_in_thread(app) as root, tempfile.TemporaryDirectory() as tmp:
        vkw: dict[str, Any] = {"concurrency": args.concurrency}
        if not args.no_cache:  # the recipes' default: one verifier cache file shared by the node's reward workers
            vkw["cache_path"] = str(Path(tmp) / "verifier_cache.sqlite")
        opts = {"verifier": "openai:judge", "base_url": root + "/v1", "verifier_mode": "generate",
                "formula": args.formula, "sandbox_workers": args.sandbox_workers, "log_batches": False,
                "verifier_kwargs": vkw}
        workers = [BatchedReward(**opts) for _ in range(args.workers)]
        pick = random.Random(1)
        done_at: list[float] = [0.0] * len(samples)

        async def trajectory(k: int, t0: float) -> float | None:
            await asyncio.sleep(max(0.0, t0 + finish[k] - time.perf_counter()))
            worker = workers[pick.randrange(len(workers))]
            res = await worker.acall(samples[k])
            done_at[k] = time.perf_counter()
            return res.score

        async def rollout() -> tuple[float, list[float | None]]:
            t0 = time.perf_counter()
            scores = await asyncio.gather(*(trajectory(k, t0) for k in range(len(samples))))
            return t0, list(scores)

        t0, scores = asyncio.run(rollout())
        last_finish = t0 + finish[-1]
        tail = max(done_at) - last_finish
        batches = [w.batcher.stats for w in workers]
        memo = sum(w.memo_hits for w in workers)
        for w in workers:
            w.close()
    n_batches = sum(b.batches for b in batches)
    print(f"stream: {len(samples)} samples finishing over {args.spread:g} s, {args.workers} reward workers, "
          f"judge latency {args.latency * 1000:.0f} ms (concurrent), formula {args.formula}, "
          f"{'no verifier cache' if args.no_cache else 'a verifier cache shared by the workers'}")
    print(f"reward batches {n_batches} (mean size {sum(b.calls for b in batches) / max(1, n_batches):.1f}), "
          f"largest {max(b.largest for b in batches)}; repeats answered from the reward's memo {memo}")
    print(f"judge requests {seen['requests']} for {len(distinct)} distinct judgements "
          f"({len(seen['conversations'])} distinct conversations); most in flight at once {seen['most_in_flight']}")
    print(f"mean score {sum(s for s in scores if s is not None) / len(scores):.3f}")
    print(f"tail (last trajectory finished -> last reward): {tail:.2f} s")
    print(f"ratio: {len(distinct) / max(1, seen['requests']):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--responses", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per verifier backend call")
    ap.add_argument("--formula", default="verif", choices=["verif", "prob", "mean", "all"])
    ap.add_argument("--sandbox-workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=256, help="the verifier client's concurrent requests")
    ap.add_argument("--stream", action="store_true", help="verl's real pattern: trajectories finish over --spread s")
    ap.add_argument("--spread", type=float, default=20.0, help="--stream: seconds over which trajectories finish")
    ap.add_argument("--workers", type=int, default=8, help="--stream: reward workers (verl's reward.num_workers)")
    ap.add_argument("--no-cache", action="store_true", help="--stream: no verifier cache shared by the workers")
    args = ap.parse_args()
    if args.stream:
        if args.latency == 0.05:
            args.latency = 0.5
        run_stream(args)
        return

    fakes = _fakes()
    gts, resps, extras = step(args.prompts, args.responses)
    print(f"step: {args.prompts} prompts x {args.responses} responses = {len(resps)} samples, "
          f"{len(set(zip(gts, resps, strict=True)))} distinct; latency {args.latency * 1000:.0f} ms per verifier call; "
          f"formula {args.formula}")
    walls: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    for name, fn in (("a verl calls + micro-batcher", run_a), ("b verl calls, no batcher", run_b),
                     ("c plain per-sample loop", run_c)):
        with fakes.judge_server(args.latency) as (url, judge):
            opts = {"verifier": "openai:fake-judge", "base_url": url, "formula": args.formula,
                    "sandbox_workers": args.sandbox_workers,
                    "verifier_kwargs": {"concurrency": args.concurrency}}
            wall, sc, batches = fn(opts, gts, resps, extras)
            walls[name[0]] = wall
            scores[name[0]] = sc
            print(f"({name}): verifier requests {judge.requests}, verifier calls {judge.calls}, "
                  f"largest verifier batch {judge.largest}, scorer batches {batches}, wall {wall:.2f} s")
    if not (scores["a"] == scores["b"] == scores["c"]):
        raise SystemExit("the three ways gave different scores")
    print(f"mean score {sum(scores['a']) / len(scores['a']):.3f} (identical in all three)")
    print(f"ratio: {walls['c'] / walls['a']:.2f}")


if __name__ == "__main__":
    main()
