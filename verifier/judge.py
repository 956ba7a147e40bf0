"""The Verifier: judges soft constraints with an LLM backend, batched, deduplicated and cached.

Two decision modes:

* ``score``: one forward pass, no generation. The template's answer strings (e.g. Yes/No) are scored
  after the prompt; ``prob`` = P(yes) / (P(yes) + P(no)) (alternative surface forms summed), and the
  verdict is ``prob >= threshold``.
* ``generate``: the model may reason, then answers; the answer is read by :func:`parsing.parse_verdict`.

Score is much cheaper: one forward pass over prompt + answer tokens instead of decoding up to
``max_tokens`` tokens one at a time (``perf/bench_verifier.py`` measures how much).

Default template by mode (when none is given): ``score`` -> the answer-only ``en`` (Yes/No right after
the prompt, which is what score reads); ``generate`` -> the reasoning ``en-reason`` (brief step-by-step
reasoning, then ``Final answer: [[1]]``/``[[0]]``; the last final-answer verdict wins, and ``<think>``
blocks of reasoning models are stripped first). Any template can be passed for ``generate``; ``score``
refuses reasoning templates (their answer is not meant to follow the prompt directly).

Two granularities:

* ``constraint``: one call per (item, constraint); one verdict per constraint.
* ``item``: one call per item judging all its constraints at once (VerIF's ``llm_score``); the single
  verdict is repeated for each of the item's constraints so every result has the same shape
  (``len(result[i]) == len(requests[i].constraints)``), with a reason saying it was judged jointly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from checkers.base import Verdict
from verifier.backends.base import (
    Backend,
    GenerationConfig,
    GenResult,
    Messages,
    ScoreResult,
    logsumexp,
)
from verifier.cache import ResultCache, make_key
from verifier.parsing import parse_verdict
from verifier.prompts import Template, companion, load_template

MODES = ("score", "generate")
GRANULARITIES = ("constraint", "item")


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    """One response to judge against one or more soft constraints."""

    instruction: str
    response: str
    constraints: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.constraints, str):
            raise TypeError("JudgeRequest.constraints must be a tuple of strings, got a single string")
        if not isinstance(self.constraints, tuple):
            object.__setattr__(self, "constraints", tuple(self.constraints))
        for name in ("instruction", "response"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"JudgeRequest.{name} must be a string, got {type(getattr(self, name)).__name__}")
        for k, c in enumerate(self.constraints):
            if not isinstance(c, str):
                raise TypeError(f"JudgeRequest.constraints[{k}] must be a string, got {type(c).__name__}")


@dataclass(slots=True)
class VerifierStats:
    """Counters since the Verifier was built (or since ``reset``)."""

    calls: int = 0  # prompts asked for (before dedupe)
    unique: int = 0  # distinct prompts after dedupe
    cache_hits: int = 0
    cache_misses: int = 0
    backend_items: int = 0  # prompts actually sent to the backend
    errors: int = 0  # results that came back with an error

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Unit:
    key: str
    messages: Messages


@dataclass
class Verifier:
    backend: Backend
    mode: str = "score"
    #: None -> the mode's default (see module docs)
    template: Template = None  # type: ignore[assignment]
    item_template: Template | None = None
    threshold: float = 0.5
    granularity: str = "constraint"
    max_tokens: int = 512
    cache: ResultCache | None = None
    #: prompts per backend call; results are cached after each chunk
    chunk_size: int = 64
    stats: VerifierStats = field(default_factory=VerifierStats)
    #: one batch at a time: local backends hold one model, and the cache/stats are shared state
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {', '.join(GRANULARITIES)}, got {self.granularity!r}"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {self.threshold!r}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens!r}")
        if self.template is None:
            self.template = load_template(None, mode=self.mode)
        if self.mode == "score":
            for t in (self.template, self.item_template):
                if t is not None and t.reasoning:
                    raise ValueError(
                        f"template {t.name!r} asks the model to reason before answering; score mode reads "
                        "the answer right after the prompt: use mode='generate' or an answer-only template "
                        "(en, zh, en-item, zh-item)"
                    )
        if self.template.granularity == "item" and self.item_template is None:
            self.item_template, self.template = self.template, companion(self.template, "constraint")
        if self.item_template is None:
            self.item_template = companion(self.template, "item")

    # --- public API ----------------------------------------------------------------------------

    def judge_batch(
        self, requests: Sequence[JudgeRequest], granularity: str | None = None
    ) -> list[list[Verdict]]:
        """One list of verdicts per request, one verdict per constraint (see module docs for ``item``)."""
        gran = granularity or self.granularity
        if gran not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {gran!r}")
        template = self.template if gran == "constraint" else self.item_template
        assert template is not None
        units: list[_Unit] = []
        shape: list[list[int]] = []  # per request, per constraint: index into units
        for req in requests:
            if gran == "constraint":
                idx = []
                for c in req.constraints:
                    idx.append(len(units))
                    units.append(self._unit(template, template.render(req.instruction, req.response, c)))
                shape.append(idx)
            elif req.constraints:
                units.append(
                    self._unit(template, template.render(req.instruction, req.response, req.constraints))
                )
                shape.append([len(units) - 1] * len(req.constraints))
            else:
                shape.append([])
        raws = self._run(units, template)
        verdicts = [self._verdict(raws[u.key], template) for u in units]
        out: list[list[Verdict]] = []
        for req, idx in zip(requests, shape, strict=True):
            row = [verdicts[i] for i in idx]
            if gran == "item" and len(req.constraints) > 1:
                note = f"judged all {len(req.constraints)} constraints together"
                row = [_with_reason(v, note) for v in row]
            out.append(row)
        return out

    def judge(self, instruction: str, response: str, constraint: str) -> Verdict:
        """Judge one constraint (calls the batch path)."""
        return self.judge_batch([JudgeRequest(instruction, response, (constraint,))], "constraint")[0][0]

    def judge_item(self, instruction: str, response: str, constraints: Sequence[str]) -> Verdict:
        """Judge all constraints of one item at once (VerIF's ``llm_score``); one verdict."""
        req = JudgeRequest(instruction, response, tuple(constraints))
        if not req.constraints:
            raise ValueError("judge_item needs at least one constraint")
        return self.judge_batch([req], "item")[0][0]

    def complete_batch(self, batch: Sequence[Messages], max_tokens: int | None = None) -> list[GenResult]:
        """Plain cached, deduplicated generation (used by ``llm_extract``)."""
        config = GenerationConfig(max_tokens=max_tokens or self.max_tokens)
        units = [self._unit(None, m, mode="generate", config=config) for m in batch]
        raws = self._run(units, None, mode="generate", config=config)
        return [_as_gen(raws[u.key]) for u in units]

    def reset_stats(self) -> None:
        self.stats = VerifierStats()

    def close(self) -> None:
        self.backend.close()
        if self.cache is not None:
            self.cache.close()

    # --- internals -----------------------------------------------------------------------------

    def _gen_config(self) -> GenerationConfig:
        return GenerationConfig(max_tokens=self.max_tokens)

    def _unit(
        self,
        template: Template | None,
        messages: Messages,
        *,
        mode: str | None = None,
        config: GenerationConfig | None = None,
    ) -> _Unit:
        mode = mode or self.mode
        messages = _text_safe(messages)
        parts: dict[str, Any] = {
            "v": 1,
            "backend": self.backend.kind,
            "model": self.backend.model,
            "mode": mode,
            "messages": messages,
        }
        if template is not None:
            parts["template"] = [template.name, template.version, template.digest]
        if mode == "score":
            parts["candidates"] = list(template.candidates) if template else []
            # how the backend scores decides the numbers: results of first-token scoring (the openai and vllm
            # backends' method before whole-answer scoring) must not be read back as sequence scores
            parts["score"] = getattr(self.backend, "score_method", "sequence")
        else:
            cfg = config or self._gen_config()
            parts["gen"] = [cfg.max_tokens, cfg.temperature, list(cfg.stop)]
        return _Unit(make_key(parts), messages)

    def _run(
        self,
        units: list[_Unit],
        template: Template | None,
        *,
        mode: str | None = None,
        config: GenerationConfig | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Raw results by key: dedupe, read the cache, call the backend for the rest, cache successes."""
        with self._lock:
            return self._run_locked(units, template, mode=mode or self.mode, config=config)

    def _run_locked(
        self, units: list[_Unit], template: Template | None, *, mode: str, config: GenerationConfig | None
    ) -> dict[str, dict[str, Any]]:
        self.stats.calls += len(units)
        todo: dict[str, Messages] = {}
        for u in units:
            todo.setdefault(u.key, u.messages)
        self.stats.unique += len(todo)
        raws: dict[str, dict[str, Any]] = {}
        if self.cache is not None and todo:
            raws.update(self.cache.get_many(todo))
            self.stats.cache_hits += len(raws)
        missing = [k for k in todo if k not in raws]
        if self.cache is not None:
            self.stats.cache_misses += len(missing)
        for i in range(0, len(missing), self.chunk_size):
            keys = missing[i : i + self.chunk_size]
            batch = [todo[k] for k in keys]
            self.stats.backend_items += len(batch)
            try:
                if mode == "score":
                    assert template is not None
                    results: list[Any] = list(self.backend.score(batch, list(template.candidates)))
                else:
                    results = list(self.backend.generate(batch, config or self._gen_config()))
                if len(results) != len(batch):
                    raise RuntimeError(f"backend returned {len(results)} results for {len(batch)} prompts")
            except Exception as e:  # a whole-call failure stays with this chunk's items
                err = f"backend {self.backend.kind} failed: {type(e).__name__}: {e}"
                results = [ScoreResult(None, err) if mode == "score" else GenResult(None, err) for _ in batch]
            fresh: dict[str, dict[str, Any]] = {}
            for k, r in zip(keys, results, strict=True):
                raw = _raw(r)
                raws[k] = raw
                if raw.get("error"):
                    self.stats.errors += 1
                else:
                    fresh[k] = raw
            if self.cache is not None:
                self.cache.put_many(fresh)
        return raws

    def _verdict(self, raw: dict[str, Any], template: Template) -> Verdict:
        if raw.get("error"):
            return Verdict.undecided(str(raw["error"]))
        if "logprobs" in raw:
            return _score_verdict(raw, template, self.threshold)
        text = raw.get("text")
        parsed = parse_verdict(text, reasoning=template.reasoning)
        if parsed.passed is None:
            err = parsed.error or "unparseable"
            if raw.get("finish_reason") == "length":
                err += f" (output cut at max_tokens={self.max_tokens})"
            return Verdict(None, "", err, raw=text)
        return Verdict(
            parsed.passed, f"{self.backend.model} answered {'yes' if parsed.passed else 'no'}", raw=text
        )


def _raw(r: GenResult | ScoreResult) -> dict[str, Any]:
    if isinstance(r, ScoreResult):
        if r.error is not None or r.logprobs is None:
            return {"error": r.error or "backend returned no log-probabilities"}
        return {"logprobs": dict(r.logprobs), "method": r.method}
    if r.error is not None or r.text is None:
        return {"error": r.error or "backend returned no text"}
    return {"text": r.text, "finish_reason": r.finish_reason}


def _as_gen(raw: dict[str, Any]) -> GenResult:
    if raw.get("error"):
        return GenResult(None, str(raw["error"]))
    return GenResult(raw.get("text"), None, raw.get("finish_reason"))


def _score_verdict(raw: dict[str, Any], template: Template, threshold: float) -> Verdict:
    lps: dict[str, float] = raw["logprobs"]
    try:
        yes = [float(lps[c]) for c in template.yes if c in lps]
        no = [float(lps[c]) for c in template.no if c in lps]
    except (TypeError, ValueError):
        return Verdict.undecided(f"backend returned non-numeric log-probabilities: {lps!r}")
    if not yes or not no:
        return Verdict.undecided(f"backend scored none of the {'yes' if not yes else 'no'} answers {lps!r}")
    ly, ln = logsumexp(yes), logsumexp(no)
    if any(math.isnan(x) for x in (ly, ln)) or (ly == -math.inf and ln == -math.inf):
        return Verdict.undecided(f"degenerate log-probabilities {lps!r}")
    d = ly - ln  # P(yes) normalised over yes/no = sigmoid(log P(yes) - log P(no))
    if d == math.inf:
        prob = 1.0
    elif d == -math.inf:
        prob = 0.0
    else:
        prob = 1.0 / (1.0 + math.exp(-d)) if d >= 0 else math.exp(d) / (1.0 + math.exp(d))
    passed = prob >= threshold
    note = "" if raw.get("method", "sequence") == "sequence" else f", {raw['method']}"
    return Verdict(passed, f"P(yes)={prob:.3f} vs threshold {threshold:g}{note}", prob=prob)


def _text_safe(messages: Messages) -> Messages:
    """Messages every backend can encode: a lone surrogate (e.g. a JSON ``"\\ud800"`` in a row's prompt, or an
    ``llm_judge`` argument from dataset code) cannot be sent as UTF-8, and one such item used to fail the
    whole backend call, i.e. every item of its chunk. Each lone surrogate becomes U+FFFD in that item only
    (a model could not have read it anyway); valid text is returned unchanged."""
    out = messages
    for j, m in enumerate(messages):
        for k, v in m.items():
            if isinstance(v, str) and not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    if out is messages:
                        out = [dict(x) for x in messages]
                    out[j][k] = v.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return out


def _with_reason(v: Verdict, note: str) -> Verdict:
    reason = f"{v.reason}; {note}" if v.reason else note
    return Verdict(v.passed, reason, v.error, v.prob, v.raw)
