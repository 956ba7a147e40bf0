#!/usr/bin/env bash
# One verifier server per GPU pair (run on the verifier nodes; see rl/README.md for how many).
#   VERIFIER      IF-Verifier-7B (default) or QwQ-32B (a path or HF id)
#   ENGINE        vllm (default), sglang, or verif (verif serve: transformers/vLLM behind this project's server)
#   PORT          default 8000;  TP: tensor parallel size (default 1 for 7B, use 4 for QwQ-32B)
set -euo pipefail
VERIFIER="${VERIFIER:-THU-KEG/IF-Verifier-7B}"
ENGINE="${ENGINE:-vllm}"
PORT="${PORT:-8000}"
TP="${TP:-1}"
NAME="${NAME:-$(basename "$VERIFIER")}"
case "$ENGINE" in
  vllm)   exec vllm serve "$VERIFIER" --served-model-name "$NAME" --port "$PORT" --tensor-parallel-size "$TP" \
            --max-model-len 8192 --enable-prefix-caching ;;
  sglang) exec python3 -m sglang.launch_server --model-path "$VERIFIER" --served-model-name "$NAME" --port "$PORT" \
            --tp "$TP" ;;
  verif)  exec verif serve --model "$VERIFIER" --backend vllm --host 0.0.0.0 --port "$PORT" --served-model-name "$NAME" ;;
  *) echo "ENGINE must be vllm, sglang or verif" >&2; exit 2 ;;
esac
