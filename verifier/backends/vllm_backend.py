"""Verifier backend on vLLM's offline engine (``vllm.LLM``): the fast path on a GPU.

Each batch is one ``LLM.chat`` call, so vLLM schedules the whole batch at once; prefix caching is on by default
because judge prompts share long instructions. ``score`` asks for one token with the top-``score_logprobs``
alternatives and reads the candidates off that first token, with the same matching rule as the OpenAI backend
(:func:`verifier.backends.openai_backend.first_token_scores`), so the offline engine and ``vllm serve`` behind the
``openai`` backend give the same numbers. (Exact multi-token sequence scores would need one prompt-logprobs
request per candidate, which skips the prefix cache in vLLM; verdict candidates are single words, so the
first token decides them.)

vLLM is imported lazily and only here: it needs a CUDA GPU and ``pip install vllm``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.backends.openai_backend import first_token_scores

log = logging.getLogger(__name__)

#: the HF release of the embedded default model, used for "default" when its local copy cannot be made
DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: alternatives read for ``score`` (vLLM's default ``max_logprobs`` is 20)
SCORE_LOGPROBS = 20

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
    """Batched generation and first-token scoring with ``vllm.LLM``."""

    kind = "vllm"

    def __init__(
        self,
        model: str = "default",
        *,
        score_logprobs: int = SCORE_LOGPROBS,
        seed: int | None = None,
        **engine_kwargs: Any,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError("model must be 'default', a Hugging Face id or a local path")
        if score_logprobs < 1:
            raise ValueError(f"score_logprobs must be >= 1, got {score_logprobs}")
        self._vllm = import_vllm()
        self.model = model
        self.score_logprobs = score_logprobs
        self.seed = seed
        kwargs: dict[str, Any] = {"enable_prefix_caching": True, **engine_kwargs}
        # the engine refuses requests for more alternatives than max_logprobs
        kwargs.setdefault("max_logprobs", max(SCORE_LOGPROBS, score_logprobs))
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

    def _chat(self, batch: list[Messages], params: Any) -> list[Any | Exception]:
        """One engine call for the batch; if it fails, item by item so one bad prompt only fails itself."""
        try:
            outputs = list(self._llm.chat(batch, sampling_params=params, use_tqdm=False))
            if len(outputs) != len(batch):
                raise RuntimeError(f"vllm returned {len(outputs)} outputs for {len(batch)} prompts")
            return outputs
        except Exception as batch_error:
            if len(batch) == 1:
                return [batch_error]
        results: list[Any | Exception] = []
        for messages in batch:
            try:
                results.append(self._llm.chat([messages], sampling_params=params, use_tqdm=False)[0])
            except Exception as e:
                results.append(e)
        return results

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        if not batch:
            return []
        k = config.top_logprobs
        want = config.logprobs or k > 0
        params = self._params(
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            # vLLM returns the sampled token plus the top-k; 0 means the sampled token alone
            logprobs=k if want else None,
            stop=list(config.stop) or None,
        )
        out: list[GenResult] = []
        for res in self._chat(list(batch), params):
            if isinstance(res, Exception):
                out.append(GenResult(None, error=f"vllm failed: {type(res).__name__}: {res}"))
                continue
            try:
                out.append(self._to_gen(res, k, want))
            except Exception as e:  # an output we cannot read stays with its item
                out.append(GenResult(None, error=f"unreadable vllm output: {type(e).__name__}: {e}"))
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        cands = list(candidates)
        if not cands or not all(isinstance(c, str) and c.strip() for c in cands):
            raise ValueError(f"candidates must be a non-empty list of non-blank strings, got {cands!r}")
        if not batch:
            return []
        params = self._params(max_tokens=1, temperature=0.0, logprobs=self.score_logprobs)
        out: list[ScoreResult] = []
        for res in self._chat(list(batch), params):
            if isinstance(res, Exception):
                out.append(
                    ScoreResult(None, error=f"vllm failed: {type(res).__name__}: {res}", method="first_token")
                )
                continue
            try:
                steps = res.outputs[0].logprobs
                if not steps:
                    raise ValueError("no logprobs for the first token")
                top = [(self._token_text(tid, lp), lp.logprob) for tid, lp in steps[0].items()]
            except Exception as e:
                out.append(
                    ScoreResult(
                        None, error=f"unreadable vllm output: {type(e).__name__}: {e}", method="first_token"
                    )
                )
                continue
            out.append(first_token_scores(top, cands))
        return out

    def close(self) -> None:
        """Drop the engine so its GPU memory can be freed once nothing else holds it."""
        self._llm = None

    # ---- output mapping

    def _token_text(self, token_id: int, lp: Any | None) -> str:
        text = getattr(lp, "decoded_token", None)
        if isinstance(text, str):
            return text
        if self._tokenizer is None:
            self._tokenizer = self._llm.get_tokenizer()
        return str(self._tokenizer.decode([token_id]))

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
