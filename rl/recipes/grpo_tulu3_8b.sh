#!/usr/bin/env bash
# VerIF run 1: TULU 3 8B SFT + GRPO with the VerIF reward (paper: IFEval prompt-level strict 68.4 -> 84.5).
# Verifier: IF-Verifier-7B in score mode. Usage: VERIFIER_URLS=http://v1:8000/v1,... bash rl/recipes/grpo_tulu3_8b.sh
set -euo pipefail
export MODEL_PATH="${MODEL_PATH:-allenai/Llama-3.1-Tulu-3-8B-SFT}"
export VERIFIER_MODEL="${VERIFIER_MODEL:-IF-Verifier-7B}"
export EXPERIMENT="${EXPERIMENT:-tulu3-8b-sft-verif}"
exec bash "$(dirname "$0")/common.sh"
