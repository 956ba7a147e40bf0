"""The one long-lived scoring engine: a sandbox wired to a verifier, reused for every batch.

Callers (``verif score``, the RL reward, the benchmark runner) build one :class:`Scorer` per process and
call :meth:`Scorer.score_batch` / :meth:`Scorer.ascore_batch` for each batch. The sandbox's ``llm_*`` relay
is always wired to the same verifier that judges soft constraints, so the two never disagree.
:func:`verinstruct.scoring.score_batch` stays as the thin functional form.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from verinstruct.schema import CodeCheck, Instance
from verinstruct.scoring import ScoredResponse, score_batch

if TYPE_CHECKING:
    from checkers.sandbox import Sandbox, SandboxLimits
    from verifier import Verifier

MODES = ("strict", "loose")


class Scorer:
    """Score (instance, response) pairs with registry checkers, sandboxed dataset code and an LLM verifier.

    ``verifier`` is a :class:`verifier.Verifier`, a spec string for :func:`verifier.build_verifier`
    (``"transformers:default"``, ``"openai:MODEL"`` with ``base_url=...``), or None (no LLM: soft
    constraints come back undecided). ``verifier_kwargs`` go to ``build_verifier`` when a spec is given.
    The sandbox starts on first use of code checks and lives until :meth:`close`.
    Thread- and asyncio-safe: concurrent batches queue, results never mix.
    """

    def __init__(
        self,
        verifier: Verifier | str | None = None,
        *,
        sandbox_workers: int | None = None,
        limits: SandboxLimits | None = None,
        mode: str = "strict",
        **verifier_kwargs: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"Scorer(mode=...) must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(verifier, str):
            from verifier import build_verifier

            verifier = build_verifier(verifier, **verifier_kwargs)
        elif verifier_kwargs:
            raise TypeError(
                f"Scorer: {', '.join(sorted(verifier_kwargs))} only apply when verifier is a spec string"
            )
        self.verifier: Verifier | None = verifier
        self.mode = mode
        self.sandbox_workers = sandbox_workers
        self.limits = limits
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()
        self._closed = False

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Scorer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        """Stop the sandbox workers; later calls raise."""
        with self._lock:
            self._closed = True
            box, self._sandbox = self._sandbox, None
        if box is not None:
            box.close()

    def _box(self) -> Sandbox:
        if self._sandbox is None:
            from checkers.sandbox import Sandbox, SandboxLimits

            llm = None
            if self.verifier is not None:
                from verifier.bridge import LLMBridge

                llm = LLMBridge(self.verifier)
            self._sandbox = Sandbox(self.sandbox_workers, self.limits or SandboxLimits(), llm=llm)
        return self._sandbox

    # ---- scoring ----------------------------------------------------------------------------
    def score_batch(
        self, instances: Sequence[Instance], responses: Sequence[str], *, mode: str | None = None
    ) -> list[ScoredResponse]:
        """``responses[i]`` against ``instances[i]``: one :class:`ScoredResponse` each, in input order."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        with self._lock:
            if self._closed:
                raise RuntimeError("Scorer.score_batch() after close()")
            needs_box = any(isinstance(c.check, CodeCheck) for inst in instances for c in inst.constraints)
            box = self._box() if needs_box else None
            return score_batch(instances, responses, sandbox=box, verifier=self.verifier, mode=mode)

    async def ascore_batch(
        self, instances: Sequence[Instance], responses: Sequence[str], *, mode: str | None = None
    ) -> list[ScoredResponse]:
        """:meth:`score_batch` off the event loop (a worker thread), so other tasks keep running."""
        return await asyncio.to_thread(self.score_batch, instances, responses, mode=mode)
