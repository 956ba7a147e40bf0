"""Smoke test of the vLLM verifier backend on a GPU: judge a few items, print verdicts and throughput.

    python scripts/gpu_smoke_vllm.py                               # embedded SmolLM2-135M (local copy)
    python scripts/gpu_smoke_vllm.py --model /path/to/hf-model-dir --n 1024 --mode generate
    python scripts/gpu_smoke_vllm.py --model Qwen/Qwen2.5-0.5B-Instruct   # from the Hub or its cache

"default" loads the embedded model's dequantised local copy (made once by transformers on CPU), so no
network is needed. Set HF_HUB_OFFLINE=1 to make sure nothing is downloaded. Needs ``pip install vllm``
and a CUDA GPU. The exit code is 0 when every verdict was decided.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (instruction, response, constraint, expected verdict)
ITEMS: list[tuple[str, str, str, bool]] = [
    ("Describe the sea.", "The sea is vast, blue and calm.", "The response mentions a colour.", True),
    ("Describe the sea.", "The sea is vast and calm.", "The response mentions a colour.", False),
    ("Greet the user.", "Hello! Lovely to meet you.", "The tone is friendly.", True),
    ("Greet the user.", "What do you want? Go away.", "The tone is friendly.", False),
    ("Name a fruit.", "An apple.", "The answer names a fruit.", True),
    ("Name a fruit.", "A hammer.", "The answer names a fruit.", False),
    ("Write about cats.", "Cats purr when they are content.", "The response is about animals.", True),
    ("Write about cats.", "Stock markets fell sharply today.", "The response is about animals.", False),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default', a local model path or a HF id")
    ap.add_argument("--mode", choices=("score", "generate"), default="score")
    ap.add_argument("--n", type=int, default=256, help="items to judge for the throughput number")
    ap.add_argument("--max-tokens", type=int, default=64, help="generate mode only")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    ap.add_argument("--max-model-len", type=int, default=4096)
    args = ap.parse_args()

    from verifier.backends.vllm_backend import VLLMBackend
    from verifier.judge import JudgeRequest, Verifier

    t0 = time.perf_counter()
    backend = VLLMBackend(
        args.model, gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len
    )
    print(f"loaded {backend.model} with vllm in {time.perf_counter() - t0:.1f}s")
    v = Verifier(backend=backend, mode=args.mode, max_tokens=args.max_tokens, chunk_size=max(args.n, 64))
    try:
        reqs = [JudgeRequest(i, r, (c,)) for i, r, c, _ in ITEMS]
        v.judge_batch(reqs[:2])  # warm-up
        verdicts = [row[0] for row in v.judge_batch(reqs)]
        agree = 0
        for (_, resp, con, expected), vd in zip(ITEMS, verdicts, strict=True):
            agree += vd.passed is expected
            prob = f"{vd.prob:.3f}" if vd.prob is not None else "  -  "
            print(
                f"{str(vd.passed):5} p={prob} expected={expected!s:5} | {con} | {resp[:40]} {vd.error or ''}"
            )
        print(f"agreement with expected labels: {agree}/{len(ITEMS)}")
        bulk = [
            JudgeRequest(
                ITEMS[k % len(ITEMS)][0], f"{ITEMS[k % len(ITEMS)][1]} (#{k})", (ITEMS[k % len(ITEMS)][2],)
            )
            for k in range(args.n)
        ]
        t1 = time.perf_counter()
        out = v.judge_batch(bulk)
        dt = time.perf_counter() - t1
        undecided = sum(row[0].passed is None for row in out)
        print(
            f"throughput: {args.n / dt:.1f} judgements/s ({args.n} in {dt:.2f}s, mode={args.mode}), undecided {undecided}"
        )
        return 0 if undecided == 0 and all(vd.passed is not None for vd in verdicts) else 1
    finally:
        v.close()


if __name__ == "__main__":
    raise SystemExit(main())
