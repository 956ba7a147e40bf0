#!/usr/bin/env bash
# Raw VerInstruct + IFEval -> verl Parquet for the recipes.
#   VERINSTRUCT   a local copy of VerInstruct (raw VerIF rows, typed rows or VerIF's own Parquet; file or folder)
#   IFEVAL        IFEval's input_data.jsonl (the validation set: instruction following, not GSM8K)
#   DATA_DIR      output folder (default ~/data/verinstruct)
#   SYSTEM_PROMPT optional system message (e.g. the chat template's default for the policy)
#   PYTHON        the interpreter the training scripts use (default python3): `verif` runs from it
set -euo pipefail
: "${VERINSTRUCT:?set VERINSTRUCT to a local copy of VerInstruct}"
: "${IFEVAL:?set IFEVAL to IFEval input_data.jsonl}"
DATA_DIR="${DATA_DIR:-$HOME/data/verinstruct}"
mkdir -p "$DATA_DIR"
args=()
[ -n "${SYSTEM_PROMPT:-}" ] && args+=(--system-prompt "$SYSTEM_PROMPT")
"${PYTHON:-python3}" -c 'from verinstruct.cli import main; main()' rl prepare "$VERINSTRUCT" "$DATA_DIR/train.parquet" --data-source verinstruct --split train "${args[@]}"
"${PYTHON:-python3}" -c 'from verinstruct.cli import main; main()' rl prepare "$IFEVAL" "$DATA_DIR/ifeval_val.parquet" --from ifeval --data-source ifeval --split test "${args[@]}"
