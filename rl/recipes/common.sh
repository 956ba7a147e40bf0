#!/usr/bin/env bash
# Shared launcher for the VerIF GRPO recipes on verl 0.9 (sourced by the per-model scripts).
#
# Required environment (the per-model script sets MODEL_PATH and the experiment name):
#   MODEL_PATH        policy model (HF id or local path)
#   VERIFIER_URLS     comma-separated OpenAI-compatible verifier servers, e.g. http://v1:8000/v1,http://v2:8000/v1
#   VERIFIER_MODEL    model name those servers serve (IF-Verifier-7B or QwQ-32B)
# Optional:
#   DATA_DIR          where `verif rl prepare` wrote train.parquet and ifeval_val.parquet (default ~/data/verinstruct)
#   NNODES            trainer nodes (default 1); multi-node: start Ray first (see rl/README.md) and run this on the head
#   GPUS_PER_NODE     default 8
#   VERIFIER_MODE     score (one forward pass, P(yes)) or generate (the verifier reasons first; QwQ-32B) (default score)
#   REWARD_FORMULA    verif | prob | mean | all (default verif)
#   UNDECIDED         fail | drop | mask (default fail)
#   REWARD_WORKERS    reward.num_workers: Ray reward-loop actors (default 8)
#   SAMPLE_TIMEOUT_S  per-sample reward budget in seconds (default 300, like verl's reward.timeout): a sample not
#                     scored by then gets the UNDECIDED policy and timeout=1 in its logged parts
#   VERIFIER_CACHE    SQLite file of judge results shared by the node's reward workers (default
#                     ${TMPDIR:-/tmp}/verinstruct-verifier-cache.sqlite: a local disk on every node, never NFS): verl sends each finished trajectory to a
#                     random worker, so a GRPO group's repeated answers reach different workers; the cache lets
#                     them judge each distinct answer once (keys include the model, template and prompt; a
#                     .claims.sqlite beside it marks judgements in flight)
#   LOGGER            trainer.logger (default '["console","wandb"]'; wandb needs `wandb login` or WANDB_API_KEY,
#                     or use '["console"]')
#   EXTRA             further Hydra overrides, appended as given
#   PYTHON            the interpreter with verl installed (default python3)
#   HYDRA_FLAGS       "--cfg job" prints the composed config and exits: a dry run that checks every key against
#                     verl's schema (not verl's runtime checks, e.g. batch divisibility by the GPU count)
set -euo pipefail

: "${MODEL_PATH:?set MODEL_PATH}"
: "${VERIFIER_URLS:?set VERIFIER_URLS (comma-separated OpenAI-compatible base URLs)}"
: "${VERIFIER_MODEL:?set VERIFIER_MODEL (the name the verifier servers serve)}"
DATA_DIR="${DATA_DIR:-$HOME/data/verinstruct}"
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
VERIFIER_MODE="${VERIFIER_MODE:-score}"
REWARD_FORMULA="${REWARD_FORMULA:-verif}"
UNDECIDED="${UNDECIDED:-fail}"
REWARD_WORKERS="${REWARD_WORKERS:-8}"
SAMPLE_TIMEOUT_S="${SAMPLE_TIMEOUT_S:-300}"
VERIFIER_CACHE="${VERIFIER_CACHE:-${TMPDIR:-/tmp}/verinstruct-verifier-cache.sqlite}"
LOGGER="${LOGGER:-[\"console\",\"wandb\"]}"
PROJECT="${PROJECT:-verinstruct-grpo}"
EXPERIMENT="${EXPERIMENT:?set EXPERIMENT}"

for f in "$DATA_DIR/train.parquet" "$DATA_DIR/ifeval_val.parquet"; do
  [ -f "$f" ] || { echo "missing $f: run rl/recipes/prepare_data.sh first" >&2; exit 2; }
done

# The paper's settings: GRPO, 16 rollouts per prompt, batch 32, lr 1e-6, prompt 1024 / response 4096,
# KL loss 1e-3 low_var_kl, rollout TP 2, a checkpoint every 20 steps, 8 GPUs per node.
"${PYTHON:-python3}" -m verl.trainer.main_ppo ${HYDRA_FLAGS:-} \
  algorithm.adv_estimator=grpo \
  algorithm.use_kl_in_reward=false \
  data.train_files="$DATA_DIR/train.parquet" \
  data.val_files="$DATA_DIR/ifeval_val.parquet" \
  data.train_batch_size=32 \
  data.max_prompt_length=1024 \
  data.max_response_length=4096 \
  data.filter_overlong_prompts=true \
  data.truncation=error \
  actor_rollout_ref.model.path="$MODEL_PATH" \
  actor_rollout_ref.model.use_remove_padding=true \
  actor_rollout_ref.model.enable_gradient_checkpointing=true \
  actor_rollout_ref.actor.optim.lr=1e-6 \
  actor_rollout_ref.actor.ppo_mini_batch_size=32 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  actor_rollout_ref.actor.use_kl_loss=true \
  actor_rollout_ref.actor.kl_loss_coef=0.001 \
  actor_rollout_ref.actor.kl_loss_type=low_var_kl \
  actor_rollout_ref.actor.entropy_coeff=0 \
  actor_rollout_ref.actor.fsdp_config.param_offload=false \
  actor_rollout_ref.actor.fsdp_config.optimizer_offload=false \
  actor_rollout_ref.rollout.name=vllm \
  actor_rollout_ref.rollout.n=16 \
  actor_rollout_ref.rollout.tensor_model_parallel_size=2 \
  actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.rollout.val_kwargs.do_sample=false \
  actor_rollout_ref.rollout.val_kwargs.n=1 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.ref.fsdp_config.param_offload=true \
  reward.num_workers="$REWARD_WORKERS" \
  reward.reward_manager.source=importlib \
  reward.reward_manager.name=VerIFRewardManager \
  reward.reward_manager.module.path=pkg://rl.verl_manager \
  +reward.reward_kwargs.verifier="openai:$VERIFIER_MODEL" \
  +reward.reward_kwargs.base_url="'$VERIFIER_URLS'" \
  +reward.reward_kwargs.verifier_mode="$VERIFIER_MODE" \
  +reward.reward_kwargs.verifier_kwargs.cache_path="$VERIFIER_CACHE" \
  +reward.reward_kwargs.formula="$REWARD_FORMULA" \
  +reward.reward_kwargs.undecided="$UNDECIDED" \
  +reward.reward_kwargs.sample_timeout_s="$SAMPLE_TIMEOUT_S" \
  trainer.project_name="$PROJECT" \
  trainer.experiment_name="$EXPERIMENT" \
  trainer.logger="$LOGGER" \
  trainer.nnodes="$NNODES" \
  trainer.n_gpus_per_node="$GPUS_PER_NODE" \
  trainer.save_freq=20 \
  trainer.test_freq=20 \
  trainer.val_before_train=true \
  trainer.total_epochs=1 \
  ${EXTRA:-}
