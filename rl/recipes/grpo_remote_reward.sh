#!/usr/bin/env bash
# A VerIF GRPO run with its reward from the reward service (`verif rl serve`, docs/reward_service.md) instead of
# a sandbox pool, verifier client and cache in every reward worker on the GPU nodes.
# Usage: REWARD_URL=http://reward-svc:8100 bash rl/recipes/grpo_remote_reward.sh
#   REWARD_URL            the service (its judge is set there: verif rl serve --verifier ... --base-url ...)
#   VERIF_REWARD_API_KEY  the service's key, in the trainers' environment (Ray passes it to the reward workers)
#   RECIPE                the run to take the model, experiment and settings from (default grpo_tulu3_8b.sh)
# REWARD_FORMULA / UNDECIDED / SAMPLE_TIMEOUT_S (applied by the service per sample) and the rest of common.sh's
# variables work as in the other recipes; VERIFIER_* are the service's (verif rl serve --verifier-mode ...).
set -euo pipefail
: "${REWARD_URL:?set REWARD_URL (the reward service, e.g. http://reward-svc:8100)}"
# common.sh wires the in-process manager to a verifier; the service has its own, so that wiring is replaced:
# the remote manager, the service's URL, and the verifier keys removed (Hydra applies overrides in order): the
# client refuses them, since the service, not this run, decides the verifier.
export VERIFIER_URLS="${VERIFIER_URLS:-unused}"
export VERIFIER_MODEL="${VERIFIER_MODEL:-unused}"
export EXTRA="reward.reward_manager.name=RemoteRewardManager reward.reward_manager.module.path=pkg://rl.remote_verl \
~reward.reward_kwargs.verifier ~reward.reward_kwargs.base_url ~reward.reward_kwargs.verifier_kwargs \
~reward.reward_kwargs.verifier_mode \
+reward.reward_kwargs.reward_url=$REWARD_URL ${EXTRA:-}"
exec bash "$(dirname "$0")/${RECIPE:-grpo_tulu3_8b.sh}"
