"""verinstruct: verifiable instruction following (VerIF) — data model, VerInstruct dataset and the `verif` CLI."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Scorer", "__version__", "load"]


def __getattr__(name: str) -> Any:
    # `load` pulls in `datasets` (slow to import); resolve it only when first used.
    if name == "load":
        from verinstruct.dataset import load

        return load
    if name == "Scorer":
        from verinstruct.scorer import Scorer

        return Scorer
    raise AttributeError(f"module 'verinstruct' has no attribute {name!r}")
