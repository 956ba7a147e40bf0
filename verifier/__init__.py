"""LLM verifier for soft constraints (VerIF-style), with batched, cached transformers/vLLM/OpenAI backends.

Imports only light modules; torch/transformers/vllm/openai load inside the backend that needs them.
"""

from verifier.bridge import LLMBridge, VerifierUndecided
from verifier.cache import ResultCache
from verifier.factory import build_verifier, parse_spec
from verifier.judge import JudgeRequest, Verifier, VerifierStats
from verifier.parsing import ParsedAnswer, parse_verdict
from verifier.prompts import BUILTIN, Template, TemplateError, load_template

__all__ = [
    "BUILTIN",
    "JudgeRequest",
    "LLMBridge",
    "ParsedAnswer",
    "ResultCache",
    "Template",
    "TemplateError",
    "Verifier",
    "VerifierStats",
    "VerifierUndecided",
    "build_verifier",
    "load_template",
    "parse_spec",
    "parse_verdict",
]
