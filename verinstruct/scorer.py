"""The one long-lived scoring engine: a sandbox wired to a verifier, reused for every batch.

Callers (``verif score``, the RL reward, the benchmark runner) build one :class:`Scorer` per process and
call :meth:`Scorer.score_batch` / :meth:`Scorer.ascore_batch` for each batch. The sandbox's ``llm_*`` relay
is always wired to the same verifier that judges soft constraints, so the two never disagree, and the
LLM requests of dataset code reach that verifier in batches. Within a batch the sandbox and the
verifier work at the same time. :func:`verinstruct.scoring.score_batch` stays as the thin functional form.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from verinstruct.schema import CodeCheck, Instance
from verinstruct.scoring import NO_LLM_ERROR, ScoredResponse, score_batch

if TYPE_CHECKING:
    from checkers.sandbox import Sandbox, SandboxLimits
    from verifier import Verifier

MODES = ("strict", "loose")
_LIVE: weakref.WeakSet[Scorer] = weakref.WeakSet()


def _reset_in_child() -> None:
    for scorer in list(_LIVE):
        scorer._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
GRANULARITIES = ("constraint", "item")


class Scorer:
    """Score (instance, response) pairs with registry checkers, sandboxed dataset code and an LLM verifier.

    ``verifier`` is a :class:`verifier.Verifier`, a spec string for :func:`verifier.build_verifier`
    (``"transformers:default"``, ``"openai:MODEL"`` with ``base_url=...``), or None (no LLM: soft
    constraints come back undecided with ``no_llm_error``). ``verifier_kwargs`` go to ``build_verifier``
    when a spec is given; a verifier built from a spec is closed with the Scorer, one passed in is not.
    ``mode`` is the registry checkers' strictness (IFEval's 'strict' / 'loose'); the verifier's own decision
    mode ('score' / 'generate') is ``verifier_mode`` when a spec is given.
    ``granularity`` ('constraint' / 'item'; None: the verifier's own) is how llm constraints are judged.
    ``concurrent=False`` runs each batch's code checks and LLM judging one after the other (comparisons).
    The sandbox starts on first use of code checks and lives until :meth:`close`. Its processes:
    ``sandbox_process_per="row"`` (one per dataset row: a row's code on all its responses in a batch, one
    fork) or ``"call"`` (one per check; the code's handling of one response then cannot reach its handling
    of another, at ~3 ms per check).

    Thread- and asyncio-safe: concurrent batches share the workers and the verifier (each runs one
    request at a time, so batches queue there), and each caller gets its own results.
    """

    def __init__(
        self,
        verifier: Verifier | str | None = None,
        *,
        sandbox_workers: int | None = None,
        limits: SandboxLimits | None = None,
        sandbox_process_per: str = "row",
        mode: str = "strict",
        granularity: str | None = None,
        no_llm_error: str = NO_LLM_ERROR,
        concurrent: bool = True,
        verifier_mode: str | None = None,
        **verifier_kwargs: Any,
    ) -> None:
        if mode not in MODES:
            hint = (f"; {mode!r} is a verifier mode: pass verifier_mode={mode!r}"
                    if mode in ("score", "generate") else "")
            raise ValueError(f"Scorer(mode=...) must be one of {', '.join(MODES)}, got {mode!r}{hint}")
        if sandbox_process_per not in ("row", "call"):
            raise ValueError(f"Scorer(sandbox_process_per=...) must be 'row' or 'call', got {sandbox_process_per!r}")
        if verifier_mode is not None:
            verifier_kwargs["mode"] = verifier_mode
        if granularity is not None and granularity not in GRANULARITIES:
            raise ValueError(
                f"Scorer(granularity=...) must be one of {', '.join(GRANULARITIES)} or None, got {granularity!r}")
        self._owns_verifier = isinstance(verifier, str)
        if isinstance(verifier, str):
            from verifier import build_verifier

            if granularity is not None:
                verifier_kwargs.setdefault("granularity", granularity)
            verifier = build_verifier(verifier, **verifier_kwargs)
        elif verifier_kwargs:
            names = sorted("verifier_mode" if k == "mode" else k for k in verifier_kwargs)
            raise TypeError(f"Scorer: {', '.join(names)} only apply when verifier is a spec string")
        self.verifier: Verifier | None = verifier
        self.mode = mode
        self.granularity = granularity
        self.no_llm_error = no_llm_error
        self.concurrent = concurrent
        self.sandbox_workers = sandbox_workers
        self.sandbox_process_per = sandbox_process_per
        self.limits = limits
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()
        self._closed = False
        _LIVE.add(self)

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
        # no module globals here: at interpreter exit they may already be None (``contextlib.suppress`` was,
        # and printed "Exception ignored in: Scorer.__del__ ... AttributeError" after every script)
        try:  # noqa: SIM105 - see above
            self.close()
        except Exception:  # a finaliser must not raise; a half-built Scorer has nothing to close
            pass

    def _after_fork_in_child(self) -> None:
        """A forked child must not drive the parent's sandbox workers (their pipes are shared with the
        parent) and has no threads but the forking one: it starts its own sandbox on first use. The verifier
        resets its own process state (see ``OpenAIBackend``)."""
        self._lock = threading.Lock()
        # the inherited copy is dropped: Sandbox.close() does nothing outside the process that started it
        self._sandbox = None

    def close(self) -> None:
        """Stop the sandbox workers (a batch still running gets undecided verdicts for its unfinished code
        checks); later calls raise. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            box, self._sandbox = self._sandbox, None
        if box is not None:
            box.close()
        if self._owns_verifier and self.verifier is not None:
            self.verifier.close()

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox (started on first use), wired to :attr:`verifier`."""
        with self._lock:
            if self._closed:
                raise RuntimeError("Scorer used after close()")
            if self._sandbox is None:
                from checkers.sandbox import Sandbox, SandboxLimits

                llm = None
                if self.verifier is not None:
                    from verifier.bridge import LLMBridge

                    llm = LLMBridge(self.verifier)
                self._sandbox = Sandbox(self.sandbox_workers, self.limits or SandboxLimits(), llm=llm,
                                        process_per=self.sandbox_process_per)
            return self._sandbox

    # ---- scoring ----------------------------------------------------------------------------
    def score_batch(
        self, instances: Sequence[Instance], responses: Sequence[str], *, mode: str | None = None,
        granularity: str | None = None,
    ) -> list[ScoredResponse]:
        """``responses[i]`` against ``instances[i]``: one :class:`ScoredResponse` each, in input order.

        ``granularity`` ('constraint' / 'item'; None: the Scorer's) overrides, for this batch, how llm
        constraints are judged: 'item' is one joint judgement per response (the VerIF reward's soft factor).
        """
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        granularity = granularity or self.granularity
        if granularity is not None and granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)} or None, got {granularity!r}")
        if self._closed:
            raise RuntimeError("Scorer.score_batch() after close()")
        needs_box = any(isinstance(c.check, CodeCheck) for inst in instances for c in inst.constraints)
        box = self.sandbox if needs_box else None
        return score_batch(instances, responses, sandbox=box, verifier=self.verifier, mode=mode,
                           no_llm_error=self.no_llm_error, granularity=granularity,
                           concurrent=self.concurrent)

    async def ascore_batch(
        self, instances: Sequence[Instance], responses: Sequence[str], *, mode: str | None = None,
        granularity: str | None = None,
    ) -> list[ScoredResponse]:
        """:meth:`score_batch` off the event loop (a worker thread), so other tasks keep running."""
        return await asyncio.to_thread(self.score_batch, instances, responses, mode=mode,
                                       granularity=granularity)
