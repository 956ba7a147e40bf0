"""The interface every verifier backend implements (transformers, vLLM, OpenAI-compatible).

Backends work on batches of chat conversations and never raise for one bad item:
each result carries either a value or an ``error`` string, so a failure stays with its item.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

#: one chat conversation: [{"role": "user", "content": "..."}, ...]
Messages = list[dict[str, str]]
SCORE_METHODS: tuple[str, ...] = ("sequence", "first_token")


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token with its log-probability and the top alternatives at that position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class GenResult:
    text: str | None
    error: str | None = None
    finish_reason: str | None = None
    #: per generated token, only when the caller asked for ``top_logprobs``
    logprobs: tuple[TokenLogprob, ...] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: the error is the request's own fault (e.g. longer than the context window): retrying cannot help
    bad_request: bool = False


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """log P(candidate | conversation + generation prompt) for each candidate answer string."""

    logprobs: dict[str, float] | None
    error: str | None = None
    #: how the numbers were obtained: "sequence" (whole candidate) or "first_token" (API top-k only)
    method: str = "sequence"
    #: as GenResult.bad_request
    bad_request: bool = False

    def __post_init__(self) -> None:
        if self.method not in SCORE_METHODS:
            raise ValueError(f"ScoreResult.method must be one of {', '.join(map(repr, SCORE_METHODS))}, "
                             f"got {self.method!r}")


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    max_tokens: int = 512
    temperature: float = 0.0
    #: nucleus sampling; 1.0 = off (only used when temperature > 0)
    top_p: float = 1.0
    top_logprobs: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)
    #: return per-token logprobs (implied by ``top_logprobs > 0``), like OpenAI's ``logprobs=true``
    logprobs: bool = False


@runtime_checkable
class Backend(Protocol):
    #: "transformers", "vllm" or "openai"
    kind: str
    #: the model id or path as the user named it (part of every cache key)
    model: str

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]: ...

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]: ...

    def close(self) -> None: ...


def logsumexp(values: Sequence[float]) -> float:
    """log(sum(exp(v))) without overflow; -inf for an empty or all -inf input."""
    m = max(values, default=-math.inf)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(v - m) for v in values))
