"""Prompt token ids shared by the backends that tokenize themselves (transformers, vLLM offline).

Both score a candidate answer as ``prompt ids + candidate ids`` with the prompt built here, so the two
engines see the very same token sequence and give the same log-probabilities.
"""

from __future__ import annotations

from typing import Any

from verifier.backends.base import Messages


def chat_prompt_ids(tok: Any, messages: Messages) -> list[int]:
    """Token ids of the conversation with the generation prompt (plain concatenation without a template)."""
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "\n\n".join(m["content"] for m in messages) + "\n"
    return list(tok(text, add_special_tokens=False).input_ids)


def answer_ids(tok: Any, candidate: str) -> list[int]:
    """Token ids of a candidate answer, as it is appended after the prompt."""
    return list(tok(candidate, add_special_tokens=False).input_ids)
