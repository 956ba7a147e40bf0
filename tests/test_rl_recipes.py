"""Each GRPO recipe in rl/recipes/, as shipped, through verl 0.9.1's own launch and reward path (on CPU).

What a user runs is ``bash rl/recipes/grpo_*.sh``. Here ``$PYTHON`` is a recorder that captures the argv the script
hands to ``python -m verl.trainer.main_ppo`` (and runs everything else, e.g. ``prepare_data.sh``'s ``verif rl
prepare``, with the real interpreter). From that argv: Hydra composes verl's ``ppo_trainer`` config, verl's
``validate_config`` runs (what ``main_ppo.main`` does before asking for GPUs), verl's ``RewardLoopManager`` starts
``RewardLoopWorker`` actors on a local Ray (2 CPUs, 2 reward workers) and verl's ``AgentLoopWorker`` scores each
trajectory the way it does during rollout (``generate_sequences`` -> single-turn agent loop -> post-processing ->
``_compute_score``, one-sample calls to a random reward worker). Only the LLM is a fake (it returns chosen token
ids), and so is the verifier (a loopback judge that says no to answers containing BAD).

Oracles, none of them our reward code: Google's strict verdicts for IFEval responses (the fraction of a prompt's
instructions that pass), and rewards worked out by hand for VerInstruct rows whose checks can be read off the
prompt. The model's chat template is the real one of the recipe's policy (fixtures/chat_templates), so
DeepSeek-R1-Distill's prefilled ``<think>`` comes from its own template.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rl_fakes as fakes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECIPES = ROOT / "rl" / "recipes"
TEMPLATES = HERE / "fixtures" / "chat_templates"
RAW = HERE / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
SHARED = ROOT.parent / "shared" / "data"
IFEVAL_INPUT = SHARED / "ifeval" / "input_data.jsonl"
IFEVAL_REF = SHARED / "ifeval" / "reference_verdicts.jsonl"

#: the policy's chat template per recipe (the model the recipe trains)
TEMPLATE_OF = {"grpo_tulu3_8b.sh": "llama_3_1_tulu_3_8b_sft.jinja",
               "grpo_r1_distill_qwen7b.sh": "deepseek_r1_distill_qwen_7b.jinja",
               "grpo_remote_reward.sh": "llama_3_1_tulu_3_8b_sft.jinja"}  # its default RECIPE is grpo_tulu3_8b.sh
#: recipes whose reward comes from the reward service (`verif rl serve`, started here on loopback)
REMOTE = {"grpo_remote_reward.sh"}
SHIPPED = sorted(p.name for p in RECIPES.glob("grpo_*.sh"))


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed ({e}); CI installs the rl extra")
        pytest.skip(f"{module} is not installed (pip install -e '.[rl]')")


_need("verl")
_need("cachetools")  # verl's agent loop imports it (verl[verl-core], in the rl extra)




def test_every_shipped_recipe_is_covered() -> None:
    assert SHIPPED and set(SHIPPED) == set(TEMPLATE_OF), SHIPPED


# ------------------------------------------------------------------------------------------------ set-up

@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for f in (IFEVAL_INPUT, IFEVAL_REF):
        if not f.exists():
            if os.environ.get("CI"):
                pytest.fail(f"reference data missing: {f}")
            pytest.skip(f"reference data missing: {f}")
    return tmp_path_factory.mktemp("recipes")


@pytest.fixture(scope="module")
def recorder(work: Path) -> Path:
    """``$PYTHON`` for the scripts: records the trainer's argv, runs anything else with the real interpreter."""
    path = work / "python-recorder"
    path.write_text(f"""#!{sys.executable}
import json, os, sys
if sys.argv[1:3] == ["-m", "verl.trainer.main_ppo"]:
    with open(os.environ["RECORD_TO"], "w") as fh:
        json.dump(sys.argv[3:], fh)
    sys.exit(0)
os.execv({sys.executable!r}, [{sys.executable!r}] + sys.argv[1:])
""")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def data_dir(work: Path, recorder: Path) -> Path:
    """``rl/recipes/prepare_data.sh`` as a user runs it (VerInstruct rows + IFEval), through ``$PYTHON``."""
    out = work / "data"
    env = {**os.environ, "PYTHON": str(recorder), "VERINSTRUCT": str(RAW), "IFEVAL": str(IFEVAL_INPUT),
           "DATA_DIR": str(out)}
    proc = subprocess.run(["bash", str(RECIPES / "prepare_data.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "train.parquet").is_file() and (out / "ifeval_val.parquet").is_file()
    return out


def _base_model_dir() -> Path:
    """The embedded SmolLM2 as a transformers dir: a real tokenizer and config for verl to load."""
    from verifier.embedded import dequantised_dir, load_default, locate_default_gguf

    target = dequantised_dir(locate_default_gguf())
    if not (target / "tokenizer_config.json").is_file():
        load_default()
    return target


def model_dir_with_template(work: Path, template: str) -> Path:
    """SmolLM2's tokenizer and config with the recipe's policy's chat template (what verl renders prompts with)."""
    base = _base_model_dir()
    out = work / f"model-{Path(template).stem}"
    if out.exists():
        return out
    out.mkdir()
    for f in base.iterdir():
        if f.name == "tokenizer_config.json":
            cfg = json.loads(f.read_text())
            cfg["chat_template"] = (TEMPLATES / template).read_text().strip()
            (out / f.name).write_text(json.dumps(cfg))
        elif f.name == "chat_template.jinja":
            continue
        else:
            (out / f.name).symlink_to(f)
    return out


def record_recipe(recipe: str, work: Path, recorder: Path, data_dir: Path, model: Path, url: str,
                  reward_url: str | None = None) -> list[str]:
    record = work / f"{recipe}.argv.json"
    env = {**os.environ, "PYTHON": str(recorder), "RECORD_TO": str(record), "DATA_DIR": str(data_dir),
           "MODEL_PATH": str(model), "VERIFIER_URLS": url, "VERIFIER_MODEL": "fake-judge",
           "VERIFIER_CACHE": str(work / f"{recipe}.verifier-cache.sqlite")}  # not the machine's shared /tmp file
    for k in ("EXTRA", "HYDRA_FLAGS", "REWARD_URL", "RECIPE"):
        env.pop(k, None)
    if reward_url:
        env["REWARD_URL"] = reward_url
    proc = subprocess.run(["bash", str(RECIPES / recipe)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(record.read_text())


def compose(argv: list[str]) -> Any:
    """verl's ``main_ppo`` config from the recorded command line: Hydra + ``validate_config``, as ``main`` does."""
    import verl.trainer.main_ppo as main_ppo
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    config_dir = str(Path(main_ppo.__file__).parent / "config")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = hydra_compose(config_name="ppo_trainer", overrides=argv)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    return cfg


# ------------------------------------------------------------------------------------------------ the LLM

class FakeLLM:
    """verl's rollout client for the agent loop: returns the token ids chosen for each prompt's row."""

    def __init__(self, tokenizer: Any, answers: dict[str, list[int]]) -> None:
        self.tokenizer = tokenizer
        self.answers = answers  # prompt text (the user message) -> response token ids

    async def generate(self, *, prompt_ids: list[int], **_: Any) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        text = self.tokenizer.decode(prompt_ids)
        hits = [k for k in self.answers if k in text]
        assert len(hits) == 1, (len(hits), text[-200:])
        return TokenOutput(token_ids=self.answers[hits[0]], stop_reason="completed")


def run_rollout(cfg: Any, handles: Any, rows: list[dict[str, Any]], responses: list[list[int]],
                tokenizer: Any) -> Any:
    """One rollout batch through verl's AgentLoopWorker (single-turn agent loop, per-trajectory reward)."""
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    answers = {r["prompt"][-1]["content"]: ids for r, ids in zip(rows, responses, strict=True)}
    assert len(answers) == len(rows), "one row per prompt in a batch"
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    worker = AgentLoopWorker(cfg, llm_client=FakeLLM(tokenizer, answers), reward_loop_worker_handles=handles)
    non_tensor = {
        "raw_prompt": np.array([list(r["prompt"]) for r in rows] + [None], dtype=object)[:-1],
        "data_source": np.array([r["data_source"] for r in rows], dtype=object),
        "reward_model": np.array([r["reward_model"] for r in rows], dtype=object),
        "extra_info": np.array([r["extra_info"] for r in rows], dtype=object),
        "index": np.arange(len(rows)),
    }
    batch = DataProto.from_dict(non_tensors=non_tensor, meta_info={"global_steps": 1, "validate": False})
    return asyncio.run(worker.generate_sequences(batch))


def parts_of(out: Any) -> list[dict[str, float]]:
    from verinstruct.reward import PARTS

    nt = out.non_tensor_batch
    return [{k: float(nt[k][i]) for k in PARTS} for i in range(len(out))]


# ------------------------------------------------------------------------------------------------ the test

@pytest.fixture(scope="module")
def ray_local():  # type: ignore[no-untyped-def]
    ray = _need("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def judge():  # type: ignore[no-untyped-def]
    with fakes.judge_server() as (url, j):
        yield url, j


@pytest.fixture(scope="module")
def reward_service(judge):  # type: ignore[no-untyped-def]
    """`verif rl serve --verifier openai:fake-judge --base-url JUDGE`, in a thread on loopback."""
    from rl.service import create_reward_app
    from verifier.http_guard import serve_in_thread
    from verinstruct.scorer import Scorer

    scorer = Scorer("openai:fake-judge", base_url=[judge[0]])
    with serve_in_thread(create_reward_app(scorer, close_scorer=True)) as url:
        yield url


def _rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _hand_cases() -> list[tuple[str, str, float, float]]:
    """(row id, answer, reward, soft_score) worked out by hand from the prompt's constraints.

    vi-011: one or two sentences, include 'hearts' (no soft constraint: the reward is the hard pass rate);
    vi-030: exactly five lines [rule] and a funny limerick [llm] (the fake judge says no to BAD)."""
    limerick = ("A tabby who lived in Dundee\nloved cheddar far more than her tea\nshe'd sneak to the shelf\n"
                "and help her own self\nthen blame it all on the flea")
    return [
        ("vi-011", "An octopus has three hearts, and two of them stop beating when it swims.", 1.0, 1.0),
        ("vi-011", "Octopuses can taste with their arms.", 0.5, 1.0),
        ("vi-030", limerick, 1.0, 1.0),
        ("vi-030", limerick + " BAD", 0.0, 0.0),
    ]


@pytest.mark.parametrize("recipe", SHIPPED)
def test_recipe_launches_and_scores_through_verls_agent_loop(recipe: str, work: Path, recorder: Path,
                                                            data_dir: Path, ray_local: Any, judge: Any,
                                                            request: pytest.FixtureRequest) -> None:
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    url, _ = judge
    model = model_dir_with_template(work, TEMPLATE_OF[recipe])
    service = request.getfixturevalue("reward_service") if recipe in REMOTE else None
    argv = record_recipe(recipe, work, recorder, data_dir, model, url, service)
    cfg = compose(argv)  # every key exists in verl's schema, and verl's own checks pass
    if service:  # the workers hold no verifier: the service has it
        assert cfg.reward.reward_manager.name == "RemoteRewardManager"
        assert cfg.reward.reward_kwargs.reward_url == service and "verifier" not in cfg.reward.reward_kwargs
    else:
        assert cfg.reward.reward_kwargs.verifier == "openai:fake-judge"
    reasoning = "r1" in recipe
    with_r1 = cfg.reward.reward_kwargs.get("unfinished_think")
    assert (with_r1 == "fail") if reasoning else with_r1 is None
    # this machine has 2 CPUs: 2 reward workers instead of the recipe's 8 (the only change to its config)
    cfg.reward.num_workers = 2
    manager = RewardLoopManager(cfg)
    handles = manager.reward_loop_worker_handles
    assert handles is not None and len(handles) == 2

    tok = AutoTokenizer.from_pretrained(model)
    eos = [tok.eos_token_id]
    think = "<think>\nThe user wants a fact; keep it short.\n</think>\n\n" if reasoning else ""

    # VerInstruct rows, rewards worked out by hand
    train = {r["extra_info"]["id"]: r for r in _rows(data_dir / "train.parquet")}
    cases = _hand_cases()
    for batch in ([c for c in cases if not c[1].endswith("BAD") and "Octopuses can" not in c[1]],
                  [c for c in cases if c[1].endswith("BAD") or "Octopuses can" in c[1]]):
        rows = [train[c[0]] for c in batch]
        resp = [tok(think + c[1], add_special_tokens=False)["input_ids"] + eos for c in batch]
        got = parts_of(run_rollout(cfg, handles, rows, resp, tok))
        for c, p in zip(batch, got, strict=True):
            assert (p["score"], p["soft_score"], p["format_ok"], p["truncated"]) == (c[2], c[3], 1, 0), (c, p)

    # IFEval responses (GPT-4's), Google's strict verdicts: the reward is the fraction of instructions followed
    ref = {json.loads(x)["prompt"]: json.loads(x) for x in IFEVAL_REF.read_text().splitlines() if x.strip()}
    val = [r for r in _rows(data_dir / "ifeval_val.parquet") if r["prompt"][-1]["content"] in ref][:12]
    assert len(val) == 12
    refs = [ref[r["prompt"][-1]["content"]] for r in val]
    resp = [tok(think + g["response"], add_special_tokens=False)["input_ids"] + eos for g in refs]
    got = parts_of(run_rollout(cfg, handles, val, resp, tok))
    for g, p in zip(refs, got, strict=True):
        assert p["score"] == pytest.approx(sum(g["strict"]) / len(g["strict"])), (g["key"], p)
        assert p["hard_total"] == len(g["strict"])

    # unfinished answers: cut at max_response_length without EOS (any policy), and for the reasoning policy an
    # answer with no </think> after its template's prefilled <think>
    limit = int(cfg.actor_rollout_ref.rollout.response_length)
    filler = tok(" and then" * limit, add_special_tokens=False)["input_ids"]
    assert len(filler) > limit
    row = train["vi-011"]
    complete = tok("An octopus has three hearts.", add_special_tokens=False)["input_ids"] + eos
    [cut] = parts_of(run_rollout(cfg, handles, [row], [filler], tok))
    assert (cut["score"], cut["format_ok"], cut["truncated"]) == (0.0, 0, 1), cut
    [plain] = parts_of(run_rollout(cfg, handles, [row], [complete], tok))
    if reasoning:  # the template prefilled <think>: a response with no </think> never reached its answer
        assert (plain["score"], plain["format_ok"], plain["truncated"]) == (0.0, 0, 0), plain
    else:
        assert (plain["score"], plain["format_ok"]) == (1.0, 1), plain
    for h in handles:
        ray_local.kill(h)
