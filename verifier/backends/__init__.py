"""Verifier backends. Heavy libraries are imported inside each backend module, not here."""

from verifier.backends.base import Backend, GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob

__all__ = ["Backend", "GenResult", "GenerationConfig", "Messages", "ScoreResult", "TokenLogprob"]
