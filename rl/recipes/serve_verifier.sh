#!/usr/bin/env bash
# One verifier server per GPU pair (run on the verifier nodes; see rl/README.md for how many).
#   VERIFIER      IF-Verifier-7B (default) or QwQ-32B (a path or HF id)
#   ENGINE        vllm (default), sglang, or verif (verif serve: transformers/vLLM behind this project's server)
#   HOST          address to listen on (default 0.0.0.0: the trainer nodes must reach it)
#   VERIF_API_KEY the key clients must send (Authorization: Bearer KEY); required unless HOST is loopback.
#                 The trainers' reward workers send the same VERIF_API_KEY (set it in their environment).
#   PORT          default 8000;  TP: tensor parallel size (default 1 for 7B, use 4 for QwQ-32B)
#   MAX_MODEL_LEN context length: the judge's prompt (up to 4,096 response tokens) plus its new tokens; default
#                 8192, or 10240 when VERIFIER names QwQ (the R1 recipe's judge asks for 4,096 new tokens)
#   DRY_RUN=1     print the command instead of running it
set -euo pipefail
VERIFIER="${VERIFIER:-THU-KEG/IF-Verifier-7B}"
ENGINE="${ENGINE:-vllm}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
TP="${TP:-1}"
case "$VERIFIER" in
  *[Qq]w[Qq]*) MAX_MODEL_LEN="${MAX_MODEL_LEN:-10240}" ;;
  *)           MAX_MODEL_LEN="${MAX_MODEL_LEN:-8192}" ;;
esac
NAME="${NAME:-$(basename "$VERIFIER")}"
case "$HOST" in
  127.0.0.1|localhost|::1) ;;
  *) if [ -z "${VERIF_API_KEY:-}" ]; then
       echo "VERIF_API_KEY is not set: a verifier on $HOST would answer anyone who reaches port $PORT." \
            "Set VERIF_API_KEY (and the same in the trainers' environment), or HOST=127.0.0.1." >&2
       exit 2
     fi ;;
esac
run() {
  if [ -z "${DRY_RUN:-}" ]; then exec "$@"; fi
  if [ -n "${VLLM_API_KEY:-}" ]; then printf 'VLLM_API_KEY=*** '; fi
  if [ -n "${VERIF_API_KEY:-}" ]; then printf 'VERIF_API_KEY=*** '; fi
  printf '%q ' "$@"; echo
}
# The key goes through the environment where the engine reads it there (not on the command line, where
# `ps` shows it); SGLang only takes it as an argument.
case "$ENGINE" in
  vllm)   if [ -n "${VERIF_API_KEY:-}" ]; then export VLLM_API_KEY="$VERIF_API_KEY"; fi
          run vllm serve "$VERIFIER" --served-model-name "$NAME" --host "$HOST" --port "$PORT" \
            --tensor-parallel-size "$TP" --max-model-len "$MAX_MODEL_LEN" --enable-prefix-caching ;;
  sglang) run python3 -m sglang.launch_server --model-path "$VERIFIER" --served-model-name "$NAME" --host "$HOST" \
            --port "$PORT" --tp "$TP" --context-length "$MAX_MODEL_LEN" ${VERIF_API_KEY:+--api-key "$VERIF_API_KEY"} ;;
  verif)  run verif serve --model "$VERIFIER" --backend vllm --host "$HOST" --port "$PORT" --served-model-name "$NAME" ;;
  *) echo "ENGINE must be vllm, sglang or verif" >&2; exit 2 ;;
esac
