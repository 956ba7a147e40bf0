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
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--responses", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per verifier backend call")
    ap.add_argument("--formula", default="verif", choices=["verif", "prob", "mean", "all"])
    ap.add_argument("--sandbox-workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=256, help="the verifier client's concurrent requests")
    args = ap.parse_args()

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
