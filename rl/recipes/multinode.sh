#!/usr/bin/env bash
# Multi-node through verl's Ray launcher: start Ray on every trainer node, then run a recipe on the head.
#   on the head:    ROLE=head bash rl/recipes/multinode.sh
#   on the others:  ROLE=worker HEAD=<head ip> bash rl/recipes/multinode.sh
#   then on head:   NNODES=<n> VERIFIER_URLS=... bash rl/recipes/grpo_tulu3_8b.sh
set -euo pipefail
PORT="${RAY_PORT:-6379}"
case "${ROLE:?set ROLE=head or ROLE=worker}" in
  head)   ray start --head --port "$PORT" --num-gpus "${GPUS_PER_NODE:-8}" ;;
  worker) ray start --address "${HEAD:?set HEAD to the head node address}:$PORT" --num-gpus "${GPUS_PER_NODE:-8}" ;;
  *) echo "ROLE must be head or worker" >&2; exit 2 ;;
esac
