"""Sandboxed execution of dataset-provided ``check_following`` code (VerInstruct).

See docs/sandbox.md for what the sandbox protects against and what it does not.
"""

from checkers.sandbox.limits import DEFAULT_PRELOAD, BatchLLM, CodeCall, LLMAnswer, LLMCallback, SandboxLimits
from checkers.sandbox.pool import Sandbox
from checkers.sandbox.protocol import ERROR_CLASSES, error_class

__all__ = ["DEFAULT_PRELOAD", "ERROR_CLASSES", "BatchLLM", "CodeCall", "LLMAnswer", "LLMCallback", "Sandbox",
           "SandboxLimits", "error_class"]
