"""The VerIF reward inside the real verl 0.9.1 reward loop, on CPU, without a Ray cluster.

From `verif rl prepare` Parquet and the embedded SmolLM2 tokenizer: verl's RLHFDataset loads the rows; DataProto
batches (prompt + response token ids, as the rollout produces them) go through verl's own RewardLoopWorker,
once with our function (reward.custom_reward_function -> naive manager) and once with our manager
(reward.reward_manager.source=importlib). Scores must equal the Scorer's direct scores, keys must be constant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rl_fakes as fakes

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "verinstruct"
RAW = FIXTURES / "verinstruct_fixtures.jsonl"


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed ({e}); CI installs the rl extra")
        pytest.skip(f"{module} is not installed (pip install -e '.[rl]')")


_need("verl")

from omegaconf import OmegaConf  # noqa: E402

from rl.prepare import prepare  # noqa: E402
from rl.reward import close_shared, instance_for  # noqa: E402
from verinstruct.reward import PARTS, RewardConfig, reward_batch  # noqa: E402
from verinstruct.scorer import Scorer  # noqa: E402

ROWS = [json.loads(x) for x in RAW.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def tokenizer_dir() -> Path:
    """The embedded SmolLM2 as a transformers model dir (tokenizer included), dequantised on first use."""
    from verifier.embedded import dequantised_dir, load_default, locate_default_gguf

    target = dequantised_dir(locate_default_gguf())
    if not (target / "tokenizer_config.json").is_file():
        load_default()
    return target


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verl") / "train.parquet"
    path, n = prepare(RAW, out)
    assert n == len(ROWS)
    return path


@pytest.fixture(scope="module")
def judge():
    with fakes.judge_server() as (url, j):
        yield url, j
    close_shared()


def test_rlhf_dataset_loads_the_prepared_parquet(prepared: Path, tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = OmegaConf.create({"max_prompt_length": 1024, "filter_overlong_prompts": True,
                            "filter_overlong_prompts_workers": 1, "cache_dir": str(prepared.parent / "cache")})
    ds = RLHFDataset([str(prepared)], tok, cfg)
    assert len(ds) == len(ROWS)
    item = ds[0]
    assert item["raw_prompt"][-1]["role"] == "user" and item["raw_prompt"][-1]["content"] == ROWS[0]["prompt"]
    assert item["data_source"] == "verinstruct" and item["extra_info"]["id"] == ROWS[0]["id"]
    # the ground truth reads back to the same instance as converting the raw row directly
    from verinstruct.convert import from_verif

    assert instance_for(item["reward_model"]["ground_truth"], item["extra_info"]) == from_verif(ROWS[0])


def _responses() -> list[tuple[int, str]]:
    """(row index, response): each row's own response, a BAD one (judge says no), duplicates, an open <think>."""
    out = []
    for k, r in enumerate(ROWS[:8]):
        out += [(k, r["response"]), (k, r["response"] + "\nBAD"), (k, r["response"])]
    out.append((0, "<think>still going"))
    return out


def _batch(prepared: Path, tokenizer_dir: Path):  # type: ignore[no-untyped-def]
    """A DataProto as verl's rollout hands it to the reward loop (left-padded prompts, right-padded responses)."""
    import pyarrow.parquet as pq
    import torch
    from tensordict import TensorDict
    from transformers import AutoTokenizer
    from verl import DataProto

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = pq.read_table(prepared).to_pylist()
    pairs = _responses()
    prompts = [tok.apply_chat_template(rows[k]["prompt"], add_generation_prompt=True, tokenize=True) for k, _ in pairs]
    prompts = [p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p for p in prompts]
    resps = [tok(text + tok.eos_token, add_special_tokens=False)["input_ids"] for _, text in pairs]
    P, R, pad = max(map(len, prompts)), max(map(len, resps)) + 3, tok.pad_token_id or 0
    n = len(pairs)
    prompt_ids = torch.full((n, P), pad, dtype=torch.long)
    resp_ids = torch.full((n, R), pad, dtype=torch.long)
    mask = torch.zeros((n, P + R), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, resps, strict=True)):
        prompt_ids[i, P - len(p):] = torch.tensor(p)
        resp_ids[i, : len(r)] = torch.tensor(r)
        mask[i, P - len(p): P + len(r)] = 1
    batch = TensorDict({"prompts": prompt_ids, "responses": resp_ids, "attention_mask": mask,
                        "input_ids": torch.cat([prompt_ids, resp_ids], dim=1)}, batch_size=n)
    non_tensor = {key: np.array([rows[k][key] for k, _ in pairs], dtype=object)
                  for key in ("data_source", "reward_model", "extra_info")}
    non_tensor["raw_prompt"] = np.array([rows[k]["prompt"] for k, _ in pairs], dtype=object)
    decoded = [tok.decode(r, skip_special_tokens=True) for r in resps]
    return DataProto(batch=batch, non_tensor_batch=non_tensor), pairs, decoded


def reward_config(tokenizer_dir: Path, opts: dict[str, Any], *, manager: bool,
                  function_path: str = "pkg://rl.verl_reward", manager_name: str = "VerIFRewardManager",
                  manager_path: str = "pkg://rl.verl_manager") -> Any:
    """verl's reward config with ``opts`` as reward kwargs: our custom function, or our reward manager."""
    reward: dict[str, Any] = {
        "num_workers": 1,
        "reward_model": {"enable": False, "model_path": None},
        "custom_reward_function": {"path": None, "name": "compute_score", "reward_kwargs": {}},
        "reward_manager": {"source": "register", "name": "naive", "module": {"path": None, "name": None}},
    }
    if manager:
        reward["reward_manager"] = {"source": "importlib", "name": manager_name,
                                    "module": {"path": manager_path, "name": None}}
        reward["reward_kwargs"] = opts
    else:
        reward["custom_reward_function"] = {"path": function_path, "name": "compute_score_async",
                                            "reward_kwargs": opts}
    return OmegaConf.create({"actor_rollout_ref": {"model": {"path": str(tokenizer_dir), "tokenizer_path": None}},
                             "reward": reward})


def _config(tokenizer_dir: Path, url: str, *, manager: bool, formula: str = "verif") -> Any:
    # a generous quiet time: a loaded CI machine may decode the responses slowly, and the test checks batching
    return reward_config(tokenizer_dir, {"verifier": "openai:fake-judge", "base_url": url, "formula": formula,
                                         "quiet_ms": 200}, manager=manager)


def _direct(url: str, pairs: list[tuple[int, str]], decoded: list[str], formula: str) -> list[dict[str, Any]]:
    from verinstruct.convert import from_verif

    with Scorer("openai:fake-judge", base_url=[url]) as scorer:
        results = reward_batch(scorer, [from_verif(ROWS[k]) for k, _ in pairs], decoded, RewardConfig(formula))
    return [r.to_dict(0.0) for r in results]


def _run_worker(config: Any, data: Any) -> list[dict[str, Any]]:
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    worker = RewardLoopWorker(config)
    return worker.loop.run_until_complete(worker.compute_score_batch(data))


@pytest.mark.parametrize("manager", [False, True], ids=["custom_reward_function", "importlib_manager"])
def test_reward_loop_worker_scores_equal_the_scorer(prepared: Path, tokenizer_dir: Path, judge, manager: bool,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

    url, fake = judge
    data, pairs, decoded = _batch(prepared, tokenizer_dir)
    assert decoded[0] == ROWS[0]["response"]
    before_calls, before_seen = fake.calls, len(fake.seen)
    outputs = _run_worker(_config(tokenizer_dir, url, manager=manager), data)
    worker_calls, worker_prompts = fake.calls - before_calls, fake.seen[before_seen:]
    expected = _direct(url, pairs, decoded, "verif")
    assert [o["reward_score"] for o in outputs] == pytest.approx([e["score"] for e in expected])
    assert all(tuple(o["reward_extra_info"]) == PARTS for o in outputs)
    for o, e in zip(outputs, expected, strict=True):
        assert o["reward_extra_info"] == pytest.approx(e)
    # micro-batched: the worker's per-sample calls reached the verifier as (at most two) batches, and each
    # distinct (row, answer) was judged once: one joint item-level request for all its soft constraints
    distinct = {(k, t) for (k, _), t in zip(pairs, decoded, strict=True) if "<think>" not in t}
    from verinstruct.convert import from_verif

    with_soft = {(k, t) for k, t in distinct if from_verif(ROWS[k]).counts()["soft"]}
    # the micro-batcher turned verl's per-sample calls into at most two reward batches (one log line each),
    batches = [int(line.split("n=", 1)[1].split()[0]) for line in capsys.readouterr().err.splitlines()
               if line.startswith("verinstruct reward: n=")]
    # and a repeated (row, response) was not scored again: it shares the first copy's result
    assert 1 <= len(batches) <= 2 and sum(batches) == len(set(pairs)) < len(pairs), batches
    # score mode sends one request per answer string ([[1]], [[0]]) and how the server groups what arrives
    # is timing-dependent, so count distinct conversations: every distinct (row, answer) judged, once each
    assert worker_calls >= 1
    assert len(set(worker_prompts)) == len(with_soft) < len(pairs)
    # scores vary (the BAD responses fail the joint judgement), and the open <think> is a format failure
    scores = [o["reward_score"] for o in outputs]
    assert scores[-1] == 0.0 and outputs[-1]["reward_extra_info"]["format_ok"] == 0
    # the joint judgement decided every soft factor: 1 for the good answers, 0 for the BAD ones
    soft = [(o["reward_extra_info"]["soft_score"], t.endswith("BAD"))
            for o, t in zip(outputs[:-1], decoded[:-1], strict=True) if o["reward_extra_info"]["soft_total"]]
    assert soft and all(v == (0.0 if bad else 1.0) for v, bad in soft)
    # what RewardLoopManager.compute_rm_score does with the outputs: keys of the first, one array each
    rm = RewardManagerBase.assemble_rm_scores(data, scores)
    assert rm.shape == data.batch["responses"].shape and float(rm.sum()) == pytest.approx(sum(scores))
    keys = list(outputs[0]["reward_extra_info"])
    arrays = {k: np.array([o["reward_extra_info"][k] for o in outputs]) for k in keys}
    assert all(a.shape == (len(outputs),) and a.dtype != object for a in arrays.values())


def test_sync_compute_score_from_threads(prepared: Path, tokenizer_dir: Path, judge) -> None:
    """compute_score (sync) run by verl's naive manager in executor threads: same scores, batched."""
    url, fake = judge
    data, pairs, decoded = _batch(prepared, tokenizer_dir)
    cfg = _config(tokenizer_dir, url, manager=False, formula="prob")
    cfg.reward.custom_reward_function.name = "compute_score"
    outputs = _run_worker(cfg, data)
    expected = _direct(url, pairs, decoded, "prob")
    assert [o["reward_score"] for o in outputs] == pytest.approx([e["score"] for e in expected])


@pytest.mark.parametrize("recipe", ["grpo_tulu3_8b.sh", "grpo_r1_distill_qwen7b.sh"])
def test_recipes_compose_with_verls_config(recipe: str, tmp_path: Path) -> None:
    """Every override of the launch scripts is a valid verl 0.9.1 key (Hydra composes; --cfg job prints, exits)."""
    import subprocess

    import yaml

    for f in ("train.parquet", "ifeval_val.parquet"):
        (tmp_path / f).touch()
    env = {**os.environ, "PYTHON": sys.executable, "HYDRA_FLAGS": "--cfg job", "DATA_DIR": str(tmp_path),
           "VERIFIER_URLS": "http://v1:8000/v1,http://v2:8000/v1"}
    proc = subprocess.run(["bash", str(HERE.parent / "rl" / "recipes" / recipe)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "grpo"
    actor, rollout = cfg["actor_rollout_ref"]["actor"], cfg["actor_rollout_ref"]["rollout"]
    assert (cfg["data"]["train_batch_size"], rollout["n"], actor["optim"]["lr"]) == (32, 16, 1e-6)
    assert (cfg["data"]["max_prompt_length"], cfg["data"]["max_response_length"]) == (1024, 4096)
    assert (actor["use_kl_loss"], actor["kl_loss_coef"], actor["kl_loss_type"]) == (True, 0.001, "low_var_kl")
    assert rollout["tensor_model_parallel_size"] == 2
    assert (cfg["trainer"]["save_freq"], cfg["trainer"]["n_gpus_per_node"]) == (20, 8)
    rm = cfg["reward"]["reward_manager"]
    assert (rm["source"], rm["name"], rm["module"]["path"]) == ("importlib", "VerIFRewardManager", "pkg://rl.verl_manager")
    kw = cfg["reward"]["reward_kwargs"]
    assert kw["base_url"] == "http://v1:8000/v1,http://v2:8000/v1" and kw["verifier"].startswith("openai:")
    assert cfg["data"]["val_files"].endswith("ifeval_val.parquet")
