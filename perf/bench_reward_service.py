"""The reward service (`verif rl serve`) vs the in-process reward: 8 clients sending 512-sample batches.

Each client is one trainer reward worker sending ``--steps`` GRPO steps of ``--samples`` samples (the fixture
rows with hard code, untagged and ``[llm]`` constraints; responses repeated and varied as GRPO groups have
them, see ``perf/bench_reward.py``). The clients send overlapping samples, as the workers of jobs sharing a
dataset do. The verifier: a loopback OpenAI-compatible fake judge (tests/rl_fakes.py) with ``--latency``
seconds per backend call, counting every conversation it is asked to judge.

* in-process: each client holds its own :class:`rl.reward.BatchedReward` (its own Scorer: sandbox pool,
  verifier client, no shared cache), as every verl reward worker does today;
* service: one ``verif rl serve`` process (one Scorer, one judge cache), the clients post through
  :class:`rl.remote.RewardClient` over loopback HTTP.

Prints per way: throughput (samples/s), p50/p99 latency of one 512-sample batch, judge requests for how many
distinct judgements, and checks the two ways gave identical rewards. Last line: ``ratio: X`` = throughput of
the service / throughput in-process.

    python perf/bench_reward_service.py [--clients 8] [--samples 512] [--steps 2] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def run_clients(n: int, steps: int, work: Any) -> tuple[float, list[float], list[Any]]:
    """(wall, per-batch latencies, results of client 0) of ``n`` threads each calling ``work(c, step)``."""
    lat: list[float] = []
    first: list[Any] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for s in range(steps):
            t0 = time.perf_counter()
            out = work(c, s)
            with lock:
                lat.append(time.perf_counter() - t0)
                if c == 0 and s == 0:
                    first.extend(out)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--samples", type=int, default=512, help="samples per batch (one GRPO step: 32 x 16)")
    ap.add_argument("--steps", type=int, default=2, help="batches each client sends")
    ap.add_argument("--latency", type=float, default=0.05, help="fake judge seconds per backend call")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    fakes = _load("rl_fakes", ROOT / "tests" / "rl_fakes.py")
    bench = _load("bench_reward", ROOT / "perf" / "bench_reward.py")
    from rl.remote import RewardClient
    from rl.reward import BatchedReward, instance_for

    per_prompt = 16
    gts, resps, _ = bench.step(max(1, args.samples // per_prompt), per_prompt)
    gts, resps = gts[: args.samples], resps[: args.samples]
    n_samples = args.clients * args.steps * len(gts)
    print(f"{args.clients} clients x {args.steps} batches x {len(gts)} samples = {n_samples} samples; "
          f"judge latency {args.latency} s/call")

    with fakes.judge_server(latency=args.latency) as (judge_url, judge):
        # ---- in-process: one BatchedReward per client (per verl reward worker)
        insts = [instance_for(g, None) for g in gts]
        rewards = [BatchedReward(verifier="openai:fake-judge", base_url=judge_url, log_batches=False)
                   for _ in range(args.clients)]
        r0, s0 = judge.requests, len(judge.seen)
        wall_a, lat_a, res_a = run_clients(args.clients, args.steps,
                                           lambda c, s: [r.to_dict(None) for r in rewards[c].score_batch(insts, resps)])
        req_a, distinct_a = judge.requests - r0, len(set(judge.seen[s0:]))
        for r in rewards:
            r.close()

        # ---- service: one `verif rl serve` process, clients over HTTP
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cache = Path(tempfile.mkdtemp()) / "judgements.sqlite"
        proc = subprocess.Popen([sys.executable, "-c", "from verinstruct.cli import main; main()", "rl", "serve",
                                 "--port", str(port), "--verifier", "openai:fake-judge", "--base-url", judge_url,
                                 "--cache", str(cache), "--log-level", "warning"], cwd=ROOT,
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the reward service did not start")
                time.sleep(0.2)
            items = [{"ground_truth": g, "response": r} for g, r in zip(gts, resps, strict=True)]
            clients = [RewardClient(url) for _ in range(args.clients)]
            r0, s0 = judge.requests, len(judge.seen)
            wall_b, lat_b, res_b = run_clients(args.clients, args.steps, lambda c, s: clients[c].score(items))
            req_b, distinct_b = judge.requests - r0, len(set(judge.seen[s0:]))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)

    same = [{k: v for k, v in r.items() if k not in ("id", "error")} for r in res_b] == res_a
    print(f"identical rewards: {same}")
    for name, wall, lat, req, distinct in (("in-process", wall_a, lat_a, req_a, distinct_a),
                                           ("service", wall_b, lat_b, req_b, distinct_b)):
        print(f"{name:10s}: {n_samples / wall:8.1f} samples/s  wall {wall:6.2f} s  batch latency "
              f"p50 {statistics.median(lat):5.2f} s  p99 {_pct(lat, 0.99):5.2f} s  judge requests {req} for "
              f"{distinct} distinct judgements")
    if not same:
        raise SystemExit("the service's rewards differ from the in-process reward")
    print(f"ratio: {(n_samples / wall_b) / (n_samples / wall_a):.2f}")


if __name__ == "__main__":
    main()
