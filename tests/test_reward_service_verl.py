"""verl 0.9.1's own reward loop scoring through the reward service: the remote manager and the remote custom
function give the same parts as the Scorer directly; the recipe variant composes with verl's config.

Reuses the DataProto/tokenizer helpers of tests/test_rl_verl.py (verl's RLHF rows from `verif rl prepare`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent

import test_rl_verl as verl_t  # noqa: E402  # skips (or fails in CI) without verl, as that module does

prepared = verl_t.prepared
tokenizer_dir = verl_t.tokenizer_dir
judge = verl_t.judge


from rl.service import create_reward_app  # noqa: E402
from verifier.http_guard import Guards, serve_in_thread  # noqa: E402
from verinstruct.reward import PARTS  # noqa: E402
from verinstruct.scorer import Scorer  # noqa: E402


@pytest.fixture(scope="module")
def service(judge: tuple[str, Any]) -> Iterator[str]:
    scorer = Scorer("openai:fake-judge", base_url=[judge[0]])
    with serve_in_thread(create_reward_app(scorer, guards=Guards(api_key="k3y"), close_scorer=True)) as url:
        yield url


def _config(tokenizer_dir: Path, url: str, *, manager: bool) -> Any:
    return verl_t.reward_config(tokenizer_dir, {"reward_url": url, "api_key": "k3y", "formula": "verif"},
                                manager=manager, function_path="pkg://rl.remote", manager_name="RemoteRewardManager",
                                manager_path="pkg://rl.remote_verl")


@pytest.mark.parametrize("manager", [False, True], ids=["custom_reward_function", "importlib_manager"])
def test_verl_reward_loop_through_the_service_equals_the_scorer(prepared: Path, tokenizer_dir: Path, judge: Any,
                                                                service: str, manager: bool) -> None:
    url, _ = judge
    data, pairs, decoded = verl_t._batch(prepared, tokenizer_dir)
    outputs = verl_t._run_worker(_config(tokenizer_dir, service, manager=manager), data)
    expected = verl_t._direct(url, pairs, decoded, "verif")
    assert [o["reward_score"] for o in outputs] == pytest.approx([e["score"] for e in expected])
    assert all(tuple(o["reward_extra_info"]) == PARTS for o in outputs)
    for o, e in zip(outputs, expected, strict=True):
        assert o["reward_extra_info"] == pytest.approx(e)


def test_remote_recipe_composes_with_verls_config(tmp_path: Path) -> None:
    for f in ("train.parquet", "ifeval_val.parquet"):
        (tmp_path / f).touch()
    env = {**os.environ, "PYTHON": sys.executable, "HYDRA_FLAGS": "--cfg job", "DATA_DIR": str(tmp_path),
           "REWARD_URL": "http://reward-svc:8100", "REWARD_FORMULA": "prob"}
    env.pop("VERIFIER_URLS", None)
    proc = subprocess.run(["bash", str(HERE.parent / "rl" / "recipes" / "grpo_remote_reward.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    rm = cfg["reward"]["reward_manager"]
    assert (rm["source"], rm["name"], rm["module"]["path"]) == ("importlib", "RemoteRewardManager",
                                                                "pkg://rl.remote_verl")
    assert cfg["reward"]["reward_kwargs"] == {"formula": "prob", "undecided": "fail", "sample_timeout_s": 300,
                                              "reward_url": "http://reward-svc:8100"}
    assert cfg["actor_rollout_ref"]["rollout"]["n"] == 16  # the paper's settings, from the base recipe
    env.pop("REWARD_URL")
    proc = subprocess.run(["bash", str(HERE.parent / "rl" / "recipes" / "grpo_remote_reward.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "REWARD_URL" in proc.stderr
