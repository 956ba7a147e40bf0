"""Reasoning models: one rule for the reward, `verif eval` and the judge parser; prefilled <think> from real templates.

The chat templates are the policies' own (fixtures/chat_templates, with provenance), rendered the way verl renders
a prompt (``apply_chat_template(messages, add_generation_prompt=True)``) and tokenized with a real tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.runner import remove_thinking
from verifier.parsing import parse_verdict
from verifier.reasoning import prompt_prefills_think, split_reasoning
from verinstruct.convert import from_ifeval
from verinstruct.reward import RewardConfig, reward_batch
from verinstruct.scorer import Scorer

TEMPLATES = Path(__file__).resolve().parent / "fixtures" / "chat_templates"
MESSAGES = [{"role": "user", "content": "Tell me a fun fact. Do not use any commas."}]


def _tokenizer(template: str):  # type: ignore[no-untyped-def]
    """A real tokenizer (the embedded SmolLM2's) carrying the policy's chat template."""
    from transformers import AutoTokenizer

    from verifier.embedded import dequantised_dir, load_default, locate_default_gguf

    target = dequantised_dir(locate_default_gguf())
    if not (target / "tokenizer_config.json").is_file():
        load_default()
    tok = AutoTokenizer.from_pretrained(target)
    tok.chat_template = (TEMPLATES / template).read_text().strip()
    return tok


@pytest.mark.parametrize(("template", "kwargs", "prefilled"), [
    ("deepseek_r1_distill_qwen_7b.jinja", {}, True),
    ("llama_3_1_tulu_3_8b_sft.jinja", {}, False),
    ("qwen3.jinja", {}, False),  # thinking on: the model writes <think> itself
    ("qwen3.jinja", {"enable_thinking": False}, False),  # prefills a CLOSED <think>\n\n</think>
])
def test_prefilled_think_is_detected_from_the_rendered_and_tokenized_prompt(template: str, kwargs: dict,
                                                                            prefilled: bool) -> None:
    tok = _tokenizer(template)
    ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True, **kwargs)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    # what rl.verl_manager does with verl's prompt ids: decode the tail (the generation prompt)
    assert prompt_prefills_think(tok.decode(ids[-16:])) is prefilled
    assert prompt_prefills_think(tok.decode(ids)) is prefilled


# (response, prefilled) -> (finished, answer) by the documented rule
CASES = [
    ("plain answer", False, True, "plain answer"),
    ("plain answer", True, False, ""),  # R1: the template opened <think>; no </think> = never answered
    ("the user wants...", True, False, ""),
    ("reasoning</think>\n\nthe answer", True, True, "\n\nthe answer"),
    ("<think>r</think>the answer", False, True, "the answer"),
    ("<think>the user wants...", False, False, ""),  # never closed
    ("</think>done <think>again", False, False, ""),  # reopened after the last close
    ("<THINK>not a tag</THINK> answer", False, True, "<THINK>not a tag</THINK> answer"),  # exact lower-case tags
]


@pytest.mark.parametrize(("text", "prefilled", "finished", "answer"), CASES)
def test_one_rule(text: str, prefilled: bool, finished: bool, answer: str) -> None:
    r = split_reasoning(text, prefilled=prefilled)
    assert (r.finished, r.answer) == (finished, answer)


@pytest.mark.parametrize(("text", "prefilled", "finished", "answer"), [c for c in CASES if not c[1]])
def test_reward_eval_and_judge_parser_agree(text: str, prefilled: bool, finished: bool, answer: str) -> None:
    """The three call sites give the same verdict on finished / unfinished (they used to differ on case)."""
    scored, how = remove_thinking(text, "strip")
    assert (how != "unfinished") is finished
    parsed = parse_verdict(text)
    assert (parsed.error is None or "not finished" not in parsed.error) is finished
    inst = from_ifeval({"key": 1, "prompt": "Do not use any commas.", "instruction_id_list": ["punctuation:no_comma"],
                        "kwargs": [{}]})
    with Scorer(None, sandbox_workers=1) as scorer:
        [res] = reward_batch(scorer, [inst], [text], RewardConfig())
    assert bool(res.format_ok) is finished
    if finished:
        assert scored == answer.strip()


def test_prefilled_and_truncated_samples_in_reward_batch() -> None:
    """Hand-worked: one no-comma instruction; an unfinished response scores 0 with format_ok 0 (fail) or is
    masked (mask); a truncated one is flagged truncated=1; prefilled=None falls back to the config."""
    inst = from_ifeval({"key": 1, "prompt": "Do not use any commas.", "instruction_id_list": ["punctuation:no_comma"],
                        "kwargs": [{}]})
    resp = ["no commas here", "no commas here", "why</think>no commas here", "why</think>a, b", "no commas here"]
    pre = [False, True, True, True, None]
    cut = [False, False, False, False, True]
    with Scorer(None, sandbox_workers=1) as scorer:
        out = reward_batch(scorer, [inst] * 5, resp, RewardConfig(), prefilled=pre, truncated=cut)
        assert [(r.score, r.format_ok, r.truncated) for r in out] == [
            (1.0, True, False), (0.0, False, False), (1.0, True, False), (0.0, True, False), (0.0, False, True)]
        masked = reward_batch(scorer, [inst], ["no commas here"], RewardConfig(unfinished_think="mask"),
                              truncated=[True])
        assert masked[0].score is None and masked[0].truncated
        forced = reward_batch(scorer, [inst], ["no commas here"], RewardConfig(think_prefilled=True))
        assert forced[0].score == 0.0 and not forced[0].format_ok
    assert json.loads(json.dumps(out[4].to_dict()))["truncated"] == 1
