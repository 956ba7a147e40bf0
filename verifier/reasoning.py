"""Separate a model's reasoning from its answer: one rule for the RL reward, the benchmark runner and the judge parser.

Reasoning models (DeepSeek-R1 distills, Qwen3, QwQ) write ``<think> ... </think>`` before their answer. Their chat
templates often end the generation prompt with ``<think>\\n`` already (R1-Distill since Feb 2025, Qwen3 in
thinking mode), so the response itself holds only the closing ``</think>``. The rule:

* The tags are matched **exactly** (lower case, as every such template and tokenizer writes them: they are
  single special tokens there); ``<THINK>`` is ordinary text.
* Everything up to the LAST ``</think>`` is reasoning; the answer is what follows it.
* The reasoning is **unfinished** (there is no answer) when a ``<think>`` opens after the last ``</think>``,
  or when there is no ``</think>`` at all and either the response opens ``<think>`` or the prompt prefilled it
  (``prefilled=True``). A response without any tag from a prompt that did not prefill ``<think>`` is all answer.

Why one module: the reward, ``verif eval`` and the judge parser used to have two rules (one case-sensitive, one
not), so the held-out benchmark could call an answer finished that the RL reward called unfinished.
"""

from __future__ import annotations

from typing import NamedTuple

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class Reasoning(NamedTuple):
    """``answer``: the text after the last ``</think>`` (the whole text when there is none; "" when unfinished);
    ``finished``: False when the model never reached its answer; ``removed``: reasoning was cut off the text."""

    answer: str
    finished: bool
    removed: bool


def split_reasoning(text: str, *, prefilled: bool = False) -> Reasoning:
    """Apply the module's rule to ``text``; ``prefilled``: the prompt ended with an open ``<think>``."""
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        answer = text[close + len(THINK_CLOSE):]
        if THINK_OPEN in answer:
            return Reasoning("", False, True)
        return Reasoning(answer, True, True)
    if prefilled or THINK_OPEN in text:
        return Reasoning("", False, True)
    return Reasoning(text, True, False)


def prompt_prefills_think(rendered_prompt: str) -> bool:
    """Whether a rendered chat prompt (generation prompt included) leaves a ``<think>`` open for the response."""
    close = rendered_prompt.rfind(THINK_CLOSE)
    return rendered_prompt.rfind(THINK_OPEN) > close
