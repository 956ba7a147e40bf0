"""The reward options that reproduce the authors' choices (``rl/README.md``, "Departures from the authors' reward").

The oracle is the authors' code, ``THU-KEG/VerIF`` ``verl/utils/reward_score/local_server/``: it is not vendored,
so each expected number below is computed by hand from the lines cited:

* ``constraint_analyzer.py`` ``evaluate_if_reward_multi``: lines 33-41 split checkers by ``"[llm]"`` /
  ``"[rule]"`` in the name; lines 45-49 take the mean of the ``[rule]`` functions' 1/0 (``_evaluate_reward``,
  lines 18-20: ``1 if result else 0``), 1 without any; lines 53-54 call ``llm_score(instruction, answer,
  llm_checkers)`` for every answer, even with ``llm_checkers == []``; line 58: overall = rule mean x score;
* ``llm_call.py`` ``llm_score``: lines 75-76 put ``{checkers}`` (the Python list of names) under ``[约束]``;
  ``extract_score`` (lines 57-62): ``[[n]]`` or 0 when the answer has none.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rl.reward import BatchedReward, RewardOptionError
from verifier import Verifier
from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult
from verifier.prompts import load_template
from verinstruct.convert import from_verif
from verinstruct.reward import RewardConfig, reward_batch
from verinstruct.scorer import Scorer

PASS = "def check_following(instruction, response):\n    return 'battery' in response\n"
FAIL = "def check_following(instruction, response):\n    return 'warranty' in response\n"
#: a [rule] whose code asks the LLM (the authors run it as a rule: its 1/0 goes into the rule mean)
RULE_LLM_JUDGE = ("from llm_call import llm_judge\n"
                  "def check_following(instruction, response):\n"
                  "    return llm_judge(instruction, response, 'Mention the ZZZ warranty.')\n")
RULE_LLM_EXTRACT = ("from llm_call import llm_extract\n"
                    "def check_following(instruction, response):\n"
                    "    return 'battery' in llm_extract(instruction, response, 'the benefits named')\n")
PROMPT = "Write two sentences about wireless headphones.\nMention battery life.\nUse an enthusiastic style."
ANSWER = "These headphones are great. Their battery lasts all day!"


class ScriptedJudge:
    """A generate backend: extraction requests get ``battery life``; a judge prompt gets ``[[0]]`` when it
    contains ``ZZZ`` and ``self.item`` otherwise. Records every prompt."""

    kind = "fake"
    model = "scripted"

    def __init__(self, item: str = "[[1]]") -> None:
        self.item = item
        self.prompts: list[str] = []

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        out = []
        for msgs in batch:
            text = "\n".join(m["content"] for m in msgs)
            self.prompts.append(text)
            if "抽取要求" in text:
                out.append(GenResult("battery life"))
            else:
                out.append(GenResult("[[0]]" if "ZZZ" in text else self.item))
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _reward(row: dict, config: RewardConfig, judge: ScriptedJudge, template: str = "zh-item") -> float | None:
    verifier = Verifier(backend=judge, mode="generate", template=load_template(template), granularity="item")
    with Scorer(verifier, sandbox_workers=1) as scorer:
        [r] = reward_batch(scorer, [from_verif(row)], [ANSWER], config)
    return r


RULES_ONLY = {"id": "rules", "prompt": PROMPT, "checkers": ["[rule] Battery", "[rule] Warranty"],
              "functions": [PASS, FAIL]}


@pytest.mark.parametrize("item, authors", [("[[1]]", 0.5), ("[[0]]", 0.0), ("I cannot tell.", 0.0)])
def test_soft_when_none_judge_calls_the_judge_with_an_empty_list(item: str, authors: float) -> None:
    # authors: rule mean (1 + 0) / 2 = 0.5 (lines 45-47) x llm_score(..., []) (lines 53-54): [[1]] -> 1,
    # [[0]] -> 0, no [[n]] -> extract_score's 0 (undecided=fail here)
    judge = ScriptedJudge(item)
    r = _reward(RULES_ONLY, RewardConfig(soft_when_none="judge", judge_sees="name"), judge)
    assert r.score == authors and r.soft_total == 0 and r.hard_total == 2
    assert r.undecided == (item == "I cannot tell.")  # the unparsable answer is visible, not a silent 0
    [prompt] = judge.prompts
    assert "[约束]\n[]\n" in prompt  # str([]) where the authors' f-string puts {checkers}
    # the list is empty with judge_sees=text too: nothing under the constraints heading
    judge = ScriptedJudge(item)
    assert _reward(RULES_ONLY, RewardConfig(soft_when_none="judge"), judge).score == authors
    [prompt] = judge.prompts
    assert "[约束]\n\n" in prompt


def test_default_soft_factor_is_one_without_soft_constraints_and_nothing_is_judged() -> None:
    assert (RewardConfig().soft_when_none, RewardConfig().rule_llm_code, RewardConfig().judge_sees) == \
        ("one", "soft", "text")
    judge = ScriptedJudge("[[0]]")
    r = _reward(RULES_ONLY, RewardConfig(), judge)
    assert r.score == 0.5 and r.soft_score == 1.0 and judge.prompts == []


RULE_LLM = {"id": "rule-llm", "prompt": PROMPT,
            "checkers": ["[rule] Battery", "[rule] Warranty_Mentioned", "[rule] Benefits", "[llm] Enthusiastic_Style"],
            "functions": [PASS, RULE_LLM_JUDGE, RULE_LLM_EXTRACT, ""]}


def test_rule_llm_code_rule_runs_it_as_a_rule() -> None:
    # authors: rules Battery 1, Warranty_Mentioned llm_judge(...'ZZZ warranty') -> 否 -> 0, Benefits
    # 'battery' in llm_extract(...) -> 1: mean 2/3 (lines 45-47); llm_score over ['[llm] Enthusiastic_Style'] -> 1
    judge = ScriptedJudge("[[1]]")
    r = _reward(RULE_LLM, RewardConfig(rule_llm_code="rule", judge_sees="name"), judge)
    assert r.score == pytest.approx(2 / 3) and r.hard_pass_rate == pytest.approx(2 / 3)
    assert (r.hard_total, r.soft_total) == (3, 1)
    joint = [p for p in judge.prompts if "[约束]" in p]
    assert len(joint) == 1 and "[约束]\n['[llm] Enthusiastic_Style']\n" in joint[0]
    # the default: the llm-calling [rule]s are soft, judged by their text with the [llm] one; the text
    # 'Mention the ZZZ warranty.' (its llm_judge argument) makes the joint judgement 0; the hard rate is the
    # plain rule's 1
    judge = ScriptedJudge("[[1]]")
    r = _reward(RULE_LLM, RewardConfig(), judge)
    assert (r.score, r.hard_pass_rate, r.hard_total, r.soft_total) == (0.0, 1.0, 1, 3)


NAMED = {"id": "named", "prompt": PROMPT, "checkers": ["[rule] Battery", "[llm] Desired_Writing_Style",
                                                       "[llm] Sentence_Count"], "functions": [PASS, "", ""]}


def test_judge_sees_names_lists_the_checker_names_as_the_authors_print_them() -> None:
    judge = ScriptedJudge("[[0]]")
    r = _reward(NAMED, RewardConfig(judge_sees="name"), judge)
    # authors: rule mean 1 x llm_score(..., ['[llm] Desired_Writing_Style', '[llm] Sentence_Count']) = [[0]] -> 0
    assert (r.score, r.hard_pass_rate, r.soft_total) == (0.0, 1.0, 2)
    [prompt] = judge.prompts
    assert "[约束]\n['[llm] Desired_Writing_Style', '[llm] Sentence_Count']\n" in prompt
    assert "enthusiastic" not in prompt.split("[约束]")[1]  # no recovered constraint text, only names
    judge = ScriptedJudge("[[1]]")
    assert _reward(NAMED, RewardConfig(judge_sees="name"), judge).score == 1.0
    # the default shows the texts recovered from the prompt instead
    judge = ScriptedJudge("[[1]]")
    _reward(NAMED, RewardConfig(), judge)
    [prompt] = judge.prompts
    assert "Desired_Writing_Style" not in prompt and "Use an enthusiastic style." in prompt


def test_the_options_flow_through_the_rl_reward_and_bad_values_name_the_option() -> None:
    judge = ScriptedJudge("[[0]]")
    verifier = Verifier(backend=judge, mode="generate", template=load_template("zh-item"), granularity="item")
    reward = BatchedReward(verifier=verifier, soft_when_none="judge", rule_llm_code="rule", judge_sees="name",
                           log_batches=False)
    try:
        [r] = reward.score_batch([from_verif(RULES_ONLY)], [ANSWER])
        assert r.score == 0.0 and len(judge.prompts) == 1  # 0.5 x [[0]]
    finally:
        reward.close()
    with pytest.raises(RewardOptionError, match="soft_when_none must be one of one, judge, got 'always'"):
        BatchedReward(verifier="none", soft_when_none="always")
    with pytest.raises(RewardOptionError, match="judge_sees=name .* formula mean"):
        BatchedReward(verifier="none", formula="mean", judge_sees="name")


def test_the_reward_service_takes_the_options_by_name() -> None:
    from rl.service import reward_config

    cfg, _timeout = reward_config({"judge_sees": "name"}, {"soft_when_none": "judge", "rule_llm_code": "rule"})
    assert (cfg.soft_when_none, cfg.rule_llm_code, cfg.judge_sees) == ("judge", "rule", "name")


def test_verl_keyword_arguments_carry_the_options_by_name() -> None:
    from rl.reward import split_options

    opts = split_options({"soft_when_none": "judge", "rule_llm_code": "rule", "judge_sees": "name",
                          "reward_router_address": None})
    assert opts == {"soft_when_none": "judge", "rule_llm_code": "rule", "judge_sees": "name"}
    with pytest.raises(RewardOptionError, match="judge_see\\b"):
        split_options({"judge_see": "name"})


def test_the_rl_readme_lists_every_reward_option() -> None:
    """``rl/README.md``'s **Options** paragraph names each option the reward accepts (and its departures
    section names the three that reproduce the authors)."""
    import dataclasses
    import re
    from pathlib import Path

    from rl.reward import _OWN_KEYS, _REWARD_KEYS

    text = (Path(__file__).resolve().parents[1] / "rl" / "README.md").read_text(encoding="utf-8")
    options = text.split("**Options**", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", options))
    assert set(_REWARD_KEYS) | set(_OWN_KEYS) <= named
    assert {f.name for f in dataclasses.fields(RewardConfig)} <= set(_REWARD_KEYS)
    departures = text.split("**Departures from the authors' reward**", 1)[1].split("**Options**", 1)[0]
    for choice in ("soft_when_none=judge", "rule_llm_code=rule", "judge_sees=name"):
        assert choice in departures
