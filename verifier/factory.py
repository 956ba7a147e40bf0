"""Build a Verifier from a ``BACKEND:MODEL`` spec (the CLI's ``--verifier`` option)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verifier.cache import ResultCache
from verifier.judge import GRANULARITIES, MODES, Verifier
from verifier.prompts import load_template

BACKENDS = ("transformers", "vllm", "openai")
SPEC_FORMS = (
    "transformers:default (embedded SmolLM2-135M), transformers:<hf id or local path>, "
    "vllm:<model>, openai:<model> (with base_url)"
)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``BACKEND:MODEL``; raise ValueError naming the spec and the accepted forms."""
    if not isinstance(spec, str):
        raise ValueError(f"verifier spec must be a string, got {spec!r}; accepted: {SPEC_FORMS}")
    kind, sep, model = spec.partition(":")
    kind, model = kind.strip().lower(), model.strip()
    if not sep or kind not in BACKENDS or not model:
        raise ValueError(f"bad verifier spec {spec!r}; accepted forms: {SPEC_FORMS}")
    return kind, model


def build_backend(spec: str, *, base_url: list[str] | str | None = None, **backend_kwargs: Any) -> Any:
    kind, model = parse_spec(spec)
    if kind != "openai" and backend_kwargs.pop("api_key", None):
        raise ValueError(f"verifier {spec!r}: an API key is only for openai:<model>")
    if kind == "transformers":
        if base_url:
            raise ValueError(f"verifier {spec!r}: base_url is only for openai:<model>")
        from verifier.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model, **backend_kwargs)
    if kind == "vllm":
        if base_url:
            raise ValueError(f"verifier {spec!r}: base_url is only for openai:<model>")
        from verifier.backends.vllm_backend import VLLMBackend

        return VLLMBackend(model, **backend_kwargs)
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    if not urls:
        raise ValueError(f"verifier {spec!r} needs base_url (one or more OpenAI-compatible server URLs)")
    from verifier.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(model, base_urls=urls, **backend_kwargs)


def build_verifier(
    spec: str = "transformers:default",
    *,
    mode: str = "score",
    template: str | None = None,
    base_url: list[str] | str | None = None,
    cache_path: str | Path | None = None,
    threshold: float = 0.5,
    granularity: str = "constraint",
    max_tokens: int = 512,
    **backend_kwargs: Any,
) -> Verifier:
    """A Verifier for ``spec`` (see :data:`SPEC_FORMS`).

    ``template`` is a built-in name (``verifier.prompts.BUILTIN``: "en", "zh", "en-reason", ...), a file
    path or literal template text; None -> the mode's default ("en" for score, "en-reason" for
    generate). ``cache_path`` None means no persistent cache (requests are still deduplicated).
    Arguments are validated before any model is loaded.
    """
    parse_spec(spec)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    tpl = load_template(template, granularity, mode)
    if mode == "score" and tpl.reasoning:
        raise ValueError(
            f"template {tpl.name!r} asks the model to reason before answering; score mode reads the "
            "answer right after the prompt: use mode='generate' or an answer-only template"
        )
    backend = build_backend(spec, base_url=base_url, **backend_kwargs)
    cache = ResultCache(cache_path) if cache_path is not None else None
    return Verifier(
        backend,
        mode=mode,
        template=tpl,
        threshold=threshold,
        granularity=granularity,
        max_tokens=max_tokens,
        cache=cache,
    )
