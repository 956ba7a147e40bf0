"""Deterministic constraint checkers: a typed registry, IFEval's and IFBench's instructions and sandboxed dataset code.

``checkers`` imports nothing else of this project, so the RL reward and the benchmarks share it freely.
"""

from checkers.base import CheckerError, CheckerSpec, Param, ParamError, UnknownCheckerError, Verdict
from checkers.registry import Constraint, build, get, ids, register, specs

__all__ = [
    "CheckerError",
    "CheckerSpec",
    "Constraint",
    "Param",
    "ParamError",
    "UnknownCheckerError",
    "Verdict",
    "build",
    "get",
    "ids",
    "register",
    "specs",
]
