"""Smoke test of a local verifier backend on a GPU: judge a few items, print verdicts and throughput.

    python scripts/gpu_smoke.py --backend transformers                  # embedded SmolLM2-135M on cuda
    python scripts/gpu_smoke.py --backend transformers --model /path/to/hf-model --n 256 --mode generate
    python scripts/gpu_smoke.py --backend transformers --device cpu     # runs anywhere, slowly
    python scripts/gpu_smoke.py --backend vllm                          # needs `pip install vllm` and CUDA
    python scripts/gpu_smoke.py --backend vllm --model Qwen/Qwen2.5-0.5B-Instruct

"default" is the embedded model; for vLLM it loads the dequantised local copy that transformers makes once
on CPU, so no network is needed (set HF_HUB_OFFLINE=1 to be sure). The transformers backend reads only local
files. The exit code is 0 when every verdict was decided (agreement with the expected labels is printed, not
enforced: a 135M judge is weak).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

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


def _backend(args: argparse.Namespace) -> Any:
    if args.backend == "vllm":
        from verifier.backends.vllm_backend import VLLMBackend

        return VLLMBackend(
            args.model, gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len
        )
    from verifier.backends.transformers_backend import TransformersBackend

    return TransformersBackend(args.model, device=args.device, batch_size=args.batch_size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    ap.add_argument("--model", default="default", help="'default' (embedded SmolLM2-135M), a path or a HF id")
    ap.add_argument("--device", default="cuda", help="transformers only: cuda, cuda:1, cpu, auto")
    ap.add_argument("--mode", choices=("score", "generate"), default="score")
    ap.add_argument("--n", type=int, default=256, help="items to judge for the throughput number")
    ap.add_argument("--batch-size", type=int, default=16, help="transformers only")
    ap.add_argument("--max-tokens", type=int, default=64, help="generate mode only")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5, help="vllm only")
    ap.add_argument("--max-model-len", type=int, default=4096, help="vllm only")
    args = ap.parse_args()

    from verifier.judge import JudgeRequest, Verifier

    t0 = time.perf_counter()
    backend = _backend(args)
    print(f"loaded {backend.model} with {args.backend} in {time.perf_counter() - t0:.1f}s")
    v = Verifier(backend=backend, mode=args.mode, max_tokens=args.max_tokens, chunk_size=max(args.n, 64))
    try:
        reqs = [JudgeRequest(i, r, (c,)) for i, r, c, _ in ITEMS]
        v.judge_batch(reqs[:2])  # warm-up
        verdicts = [row[0] for row in v.judge_batch(reqs)]
        agree = 0
        for (_, resp, con, expected), vd in zip(ITEMS, verdicts, strict=True):
            agree += vd.passed is expected
            prob = f"{vd.prob:.3f}" if vd.prob is not None else "  -  "
            print(f"{str(vd.passed):5} p={prob} expected={expected!s:5} | {con} | {resp[:40]} {vd.error or ''}")
        print(f"agreement with expected labels: {agree}/{len(ITEMS)}")
        # distinct prompts for the throughput run (the verifier dedupes identical ones)
        bulk = [JudgeRequest(i, f"{r} (#{k})", (c,)) for k in range(args.n) for i, r, c, _ in [ITEMS[k % len(ITEMS)]]]
        t1 = time.perf_counter()
        out = v.judge_batch(bulk)
        dt = time.perf_counter() - t1
        undecided = sum(row[0].passed is None for row in out)
        print(f"throughput: {args.n / dt:.1f} judgements/s ({args.n} in {dt:.2f}s, mode={args.mode}), "
              f"undecided {undecided}")
        return 0 if undecided == 0 and all(vd.passed is not None for vd in verdicts) else 1
    finally:
        v.close()


if __name__ == "__main__":
    raise SystemExit(main())
