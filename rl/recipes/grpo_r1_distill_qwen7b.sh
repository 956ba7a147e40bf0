#!/usr/bin/env bash
# VerIF run 2: DeepSeek-R1-Distill-Qwen-7B + GRPO with the VerIF reward (paper: IFEval 59.9 -> 75.6).
# A reasoning policy: the reward judges only the text after the last </think>. Its chat template ends the prompt
# with "<think>\n" (detected from the prompt ids), so a response without </think>, or one cut at
# max_response_length without EOS, is unfinished and scores 0 (unfinished_think=fail; logged format_ok=0,
# truncated=1). Verifier: QwQ-32B reasoning before its verdict (generate mode, 4,096 new tokens: serve it with
# a context of at least 8,192 + the judge prompt; see rl/README.md).
set -euo pipefail
export MODEL_PATH="${MODEL_PATH:-deepseek-ai/DeepSeek-R1-Distill-Qwen-7B}"
export VERIFIER_MODEL="${VERIFIER_MODEL:-QwQ-32B}"
export VERIFIER_MODE="${VERIFIER_MODE:-generate}"
export EXPERIMENT="${EXPERIMENT:-r1-distill-qwen-7b-verif}"
export EXTRA="${EXTRA:-} +reward.reward_kwargs.verifier_kwargs.max_tokens=4096 +reward.reward_kwargs.unfinished_think=fail"
exec bash "$(dirname "$0")/common.sh"
