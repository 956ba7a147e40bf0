"""Verifier backend on vLLM's offline engine (``vllm.LLM``): the fast path on a GPU.

Each batch is one engine call, so vLLM schedules the whole batch at once; prefix caching is on by default
because judge prompts share long instructions. ``score`` computes the exact log-probability of each whole
candidate answer, as the transformers backend does and from the same tokens: the prompt is built with the
model's tokenizer and chat template (:func:`verifier.backends.tokens.chat_prompt_ids`), the candidate's
tokens are appended, and vLLM's ``prompt_logprobs`` give each appended token's log-probability
(``max_tokens=1``: nothing worth generating). With prefix caching, the candidates of one item share their
prompt's KV cache.

vLLM is imported lazily and only here: it needs a CUDA GPU and ``pip install vllm``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.backends.tokens import answer_ids, chat_prompt_ids

log = logging.getLogger(__name__)

#: the HF release of the embedded default model, used for "default" when its local copy cannot be made
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

INSTALL_HINT = (
    "the vllm backend needs the 'vllm' package and a CUDA GPU: pip install vllm "
    "(or pip install 'verinstruct[vllm]'); on CPU use the transformers backend"
)


def resolve_model(model: str) -> str:
    """What vLLM loads for ``model``; "default" is the embedded SmolLM2, from local files when possible.

    vLLM wants Hugging Face weights, so the bundled GGUF's dequantised safetensors copy (made once by
    :mod:`verifier.embedded`) is used; without it, the same model's Hub id (needs the Hub or its cache).
    """
    if model != "default":
        return model
    try:
        from verifier.embedded import dequantised_dir, load_default, locate_default_gguf

        target = dequantised_dir(locate_default_gguf())
        if not (target / "config.json").is_file():
            load_default()  # dequantises with transformers on CPU and saves the HF files
        if (target / "config.json").is_file():
            return str(target)
        log.warning("no local copy of the default model could be made; vllm will load %s", DEFAULT_MODEL)
    except Exception as e:
        log.warning("default model not available locally (%s); vllm will load %s", e, DEFAULT_MODEL)
    return DEFAULT_MODEL


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return vllm


class VLLMBackend:
    """Batched generation and exact sequence scoring with ``vllm.LLM``."""

    kind = "vllm"

    def __init__(
        self,
        model: str = "default",
        *,
        seed: int | None = None,
        chat_template: str | None = None,
        no_chat_template: bool = False,
        **engine_kwargs: Any,
    ) -> None:
        """``engine_kwargs`` go to ``vllm.LLM`` as they are (``tensor_parallel_size``, ``max_model_len``,
        ``gpu_memory_utilization``, ``dtype``, ``revision``, ``trust_remote_code``, ...); a name that
        ``vllm.EngineArgs`` does not have is refused before the engine starts. ``chat_template`` replaces
        the model's template; ``no_chat_template`` (base models) sends the messages as plain text."""
        if not isinstance(model, str) or not model:
            raise ValueError("model must be 'default', a Hugging Face id or a local path")
        if chat_template is not None and no_chat_template:
            raise ValueError("chat_template and no_chat_template exclude each other")
        self._vllm = import_vllm()
        unknown = unknown_engine_args(self._vllm, engine_kwargs)
        if unknown:
            raise ValueError(f"unknown vLLM engine argument {unknown[0]!r} (not a field of vllm.EngineArgs)")
        self.model = model
        self.seed = seed
        self.chat_template = chat_template
        self.no_chat_template = no_chat_template
        kwargs: dict[str, Any] = {"enable_prefix_caching": True, **engine_kwargs}
        self.engine_kwargs = kwargs
        self._llm: Any = self._vllm.LLM(model=resolve_model(model), **kwargs)
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model!r})"

    # ---- requests

    def _params(self, **kw: Any) -> Any:
        if self.seed is not None:
            kw["seed"] = self.seed
        return self._vllm.SamplingParams(**kw)

    def _each(self, call: Any, items: list[Any]) -> list[Any | Exception]:
        """``call(items)`` as one engine call; if it fails, item by item so one bad prompt only fails itself."""
        try:
            outputs = list(call(items))
            if len(outputs) != len(items):
                raise RuntimeError(f"vllm returned {len(outputs)} outputs for {len(items)} prompts")
            return outputs
        except Exception as batch_error:
            if len(items) == 1:
                return [batch_error]
        results: list[Any | Exception] = []
        for item in items:
            try:
                results.append(call([item])[0])
            except Exception as e:
                results.append(e)
        return results

    def _chat(self, batch: list[Messages], params: Any) -> list[Any | Exception]:
        if self.no_chat_template:
            tok = self._get_tokenizer()
            plain = _without_template(tok)
            prompts = [{"prompt_token_ids": chat_prompt_ids(plain, m)} for m in batch]
            return self._each(lambda p: self._llm.generate(p, sampling_params=params, use_tqdm=False), prompts)
        extra = {"chat_template": self.chat_template} if self.chat_template is not None else {}
        return self._each(lambda b: self._llm.chat(b, sampling_params=params, use_tqdm=False, **extra), batch)

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        if not batch:
            return []
        k = config.top_logprobs
        want = config.logprobs or k > 0
        params = self._params(
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            # vLLM returns the sampled token plus the top-k; 0 means the sampled token alone
            logprobs=k if want else None,
            stop=list(config.stop) or None,
            **({"top_p": config.top_p} if config.top_p < 1.0 else {}),
        )
        out: list[GenResult] = []
        for res in self._chat(list(batch), params):
            if isinstance(res, Exception):
                out.append(_failed(GenResult, res))
                continue
            try:
                out.append(self._to_gen(res, k, want))
            except Exception as e:  # an output we cannot read stays with its item
                out.append(GenResult(None, error=f"unreadable vllm output: {type(e).__name__}: {e}"))
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        cands = list(dict.fromkeys(candidates))
        if not cands or not all(isinstance(c, str) and c.strip() for c in cands):
            raise ValueError(f"candidates must be a non-empty list of non-blank strings, got {cands!r}")
        if not batch:
            return []
        tok = self._get_tokenizer()
        cand_ids = [answer_ids(tok, c) for c in cands]
        empty = [c for c, ids in zip(cands, cand_ids, strict=True) if not ids]
        if empty:
            return [ScoreResult(None, f"candidate {empty[0]!r} has no tokens", bad_request=True)] * len(batch)
        results: list[ScoreResult | None] = [None] * len(batch)
        rows: list[tuple[int, int, int]] = []  # (item, candidate, prompt length)
        prompts: list[dict[str, list[int]]] = []
        for i, messages in enumerate(batch):
            try:
                ids = chat_prompt_ids(tok, messages)
            except Exception as e:
                results[i] = ScoreResult(
                    None, f"cannot build the prompt: {type(e).__name__}: {e}", bad_request=True
                )
                continue
            for j, c_ids in enumerate(cand_ids):
                rows.append((i, j, len(ids)))
                prompts.append({"prompt_token_ids": ids + c_ids})
        params = self._params(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self._each(lambda p: self._llm.generate(p, sampling_params=params, use_tqdm=False), prompts)
        scores: dict[int, dict[str, float]] = {}
        for (i, j, n), res in zip(rows, outs, strict=True):
            if results[i] is not None:
                continue
            if isinstance(res, Exception):
                results[i] = _failed(ScoreResult, res)
                continue
            try:
                steps = res.prompt_logprobs
                lp = sum(float(steps[n + k][t].logprob) for k, t in enumerate(cand_ids[j]))
            except Exception as e:  # an output we cannot read stays with its item
                results[i] = ScoreResult(None, f"unreadable vllm prompt_logprobs: {type(e).__name__}: {e}")
                continue
            scores.setdefault(i, {})[cands[j]] = lp
        return [r if r is not None else ScoreResult(scores[i], method="sequence") for i, r in enumerate(results)]

    def close(self) -> None:
        """Drop the engine so its GPU memory can be freed once nothing else holds it."""
        self._llm = None

    # ---- output mapping

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = self._llm.get_tokenizer()
        return self._tokenizer

    def _token_text(self, token_id: int, lp: Any | None) -> str:
        text = getattr(lp, "decoded_token", None)
        if isinstance(text, str):
            return text
        return str(self._get_tokenizer().decode([token_id]))

    def _to_gen(self, res: Any, k: int, want: bool) -> GenResult:
        comp = res.outputs[0]
        token_ids = list(comp.token_ids or ())
        logprobs: tuple[TokenLogprob, ...] | None = None
        if want:
            steps = comp.logprobs
            if steps is None:
                raise ValueError("vllm returned no logprobs although they were requested")
            tokens = []
            for tid, step in zip(token_ids, steps, strict=True):
                ranked = sorted(step.items(), key=lambda kv: -kv[1].logprob)[:k]
                top = tuple((self._token_text(t, lp), float(lp.logprob)) for t, lp in ranked)
                chosen = step.get(tid)
                chosen_lp = float(chosen.logprob) if chosen is not None else float("-inf")
                tokens.append(TokenLogprob(self._token_text(tid, chosen), chosen_lp, top))
            logprobs = tuple(tokens)
        return GenResult(
            comp.text,
            finish_reason=comp.finish_reason,
            logprobs=logprobs,
            prompt_tokens=len(res.prompt_token_ids or ()),
            completion_tokens=len(token_ids),
        )


def unknown_engine_args(vllm: Any, kwargs: dict[str, Any]) -> list[str]:
    """Names in ``kwargs`` that neither ``vllm.LLM`` names as a parameter nor ``vllm.EngineArgs`` (what
    ``vllm.LLM`` builds from the rest) has as a field; empty when this vLLM has no ``EngineArgs`` dataclass
    to check against. A typo would otherwise surface as a TypeError deep inside engine start-up."""
    import dataclasses
    import inspect

    engine_args = getattr(vllm, "EngineArgs", None)
    if engine_args is None or not dataclasses.is_dataclass(engine_args):
        return []
    known = {f.name for f in dataclasses.fields(engine_args)}
    try:
        params = inspect.signature(vllm.LLM.__init__).parameters.values()
        known |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    except (TypeError, ValueError, AttributeError):
        pass
    return sorted(k for k in kwargs if k not in known)


class _without_template:  # noqa: N801 - a view of a tokenizer, used like a function
    """The tokenizer with no chat template, so :func:`chat_prompt_ids` joins the messages as plain text."""

    chat_template = None

    def __init__(self, tok: Any) -> None:
        self._tok = tok

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tok(*args, **kwargs)


def _failed(kind: Any, e: Exception) -> Any:
    """A GenResult/ScoreResult for an engine exception; vLLM refuses a bad prompt (e.g. one longer than the
    context) with ValueError, which is the request's own fault."""
    return kind(None, error=f"vllm failed: {type(e).__name__}: {e}", bad_request=isinstance(e, ValueError))
