"""Generation throughput for `verif eval`: batched (left-padded) vs one prompt at a time, same model, same prompts.

Both sides use the same backend object (the verifier's generation backends that `verif eval` uses), greedy
decoding, ``--max-tokens`` new tokens, after a one-prompt warm-up; prompts are the first ``--prompts``
bundled IFEval prompts. Tokens/s counts generated tokens (EOS excluded). The last line is
``ratio: X`` = batched tokens/s / one-at-a-time tokens/s (goal on CPU with the embedded model: >= 3).

    python perf/bench_generate.py [--backend transformers|vllm] [--model default] [--prompts 16]
                                  [--batch-size 16] [--max-tokens 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.ifeval import BENCHMARK as IFEVAL
from verifier.backends.base import GenerationConfig


def timed(backend: Any, convs: list[list[dict[str, str]]], config: GenerationConfig, one_by_one: bool) -> tuple[float, int]:
    t0 = time.perf_counter()
    if one_by_one:
        results = [r for c in convs for r in backend.generate([c], config)]
    else:
        results = backend.generate(convs, config)
    dt = time.perf_counter() - t0
    errors = [r.error for r in results if r.error]
    if errors:
        raise SystemExit(f"generation failed: {errors[0]}")
    return dt, sum(r.completion_tokens for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (transformers)")
    args = ap.parse_args()

    convs = [[dict(m) for m in s.turns[0].messages] for s in IFEVAL.load_samples(limit=args.prompts)]
    config = GenerationConfig(max_tokens=args.max_tokens, temperature=0.0)
    if args.backend == "transformers":
        import torch

        torch.set_num_threads(args.threads)
        from verifier.backends.transformers_backend import TransformersBackend

        backend: Any = TransformersBackend(args.model, batch_size=args.batch_size)
    else:
        from verifier.backends.vllm_backend import VLLMBackend

        backend = VLLMBackend(args.model)
    backend.generate(convs[:1], config)  # warm-up
    seq_t, seq_tok = timed(backend, convs, config, one_by_one=True)
    bat_t, bat_tok = timed(backend, convs, config, one_by_one=False)
    seq_rate, bat_rate = seq_tok / seq_t, bat_tok / bat_t
    print(f"backend {args.backend}:{args.model}  prompts {len(convs)}  max_tokens {args.max_tokens}  "
          f"batch_size {args.batch_size}")
    print(f"one-at-a-time: {seq_tok} tokens in {seq_t:.2f} s = {seq_rate:.1f} tok/s")
    print(f"batched:       {bat_tok} tokens in {bat_t:.2f} s = {bat_rate:.1f} tok/s")
    print(f"ratio: {bat_rate / seq_rate:.2f}")


if __name__ == "__main__":
    main()
