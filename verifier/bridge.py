"""Bridge from dataset code's ``llm_*`` calls to a Verifier.

Dataset checking code (run in the sandbox) calls ``llm_judge(instruction, response, constraint) -> bool``,
``llm_score(instruction, response, checkers) -> 1/0`` and ``llm_extract(instruction, response, requirement)
-> str``. The sandbox gathers those requests from every call of a run and hands them to
:meth:`LLMBridge.answer_batch` (at most one verifier call per function kind per batch, deduplicated and
cached by the Verifier); ``bridge(fn_name, args)`` answers one. An undecided result is an error (the
single form raises :class:`VerifierUndecided`) so the sandbox marks the verdict undecided instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from checkers.sandbox.limits import LLMAnswer
from checkers.sandbox.protocol import LLM_FUNCTIONS
from verifier.judge import JudgeRequest, Verifier
from verifier.prompts import extraction_messages

#: the sandbox's callback signature
LLMCallback = Callable[[str, tuple], Any]


class VerifierUndecided(RuntimeError):
    """The verifier could not decide (backend error, unparseable answer); ``error`` says why."""

    def __init__(self, fn_name: str, error: str) -> None:
        self.fn_name = fn_name
        self.error = error
        super().__init__(f"{fn_name}: verifier undecided: {error}")


def _constraint_list(checkers: Any) -> tuple[str, ...]:
    if isinstance(checkers, str):
        return (checkers,)
    if isinstance(checkers, Sequence) and all(isinstance(c, str) for c in checkers):
        return tuple(checkers)
    raise TypeError(
        f"llm_score: checkers must be a string or a list of strings, got {type(checkers).__name__}"
    )


class LLMBridge:
    """``(fn_name, args) -> result`` implementing llm_judge / llm_score / llm_extract with a Verifier,
    and :meth:`answer_batch` for many requests at once (the sandbox's batched relay uses it)."""

    FUNCTIONS = LLM_FUNCTIONS

    def __init__(
        self, verifier: Verifier, *, extract_max_tokens: int = 256, language: str | None = None
    ) -> None:
        self.verifier = verifier
        self.extract_max_tokens = extract_max_tokens
        self.language = language or verifier.template.language

    def __call__(self, fn_name: str, args: tuple) -> Any:
        if fn_name not in LLM_FUNCTIONS:
            raise ValueError(
                f"unknown LLM function {fn_name!r} (expected one of {', '.join(LLM_FUNCTIONS)})"
            )
        (out,) = self._answers([(fn_name, tuple(args))])
        if isinstance(out, BaseException):
            raise out
        return out[0]

    def llm_judge(self, instruction: str, response: str, constraint: str) -> bool:
        return self("llm_judge", (instruction, response, constraint))

    def llm_score(self, instruction: str, response: str, checkers: Any) -> int:
        return self("llm_score", (instruction, response, checkers))

    def llm_extract(self, instruction: str, response: str, specific_prompt: str) -> str:
        return self("llm_extract", (instruction, response, specific_prompt))

    def answer_batch(self, requests: Sequence[tuple[str, tuple]]) -> list[LLMAnswer]:
        """One answer per (fn_name, args) request, in order; errors are answers, never raised."""
        return [LLMAnswer.from_exception(a) if isinstance(a, BaseException) else LLMAnswer(a[0], prob=a[1])
                for a in self._answers(requests)]

    def _answers(self, requests: Sequence[tuple[str, tuple]]) -> list[tuple[Any, float | None] | Exception]:
        """(value, P(yes) or None) or the exception, per request: one verifier call per kind of request."""
        out: list[tuple[Any, float | None] | Exception | None] = [None] * len(requests)
        judge: list[tuple[int, JudgeRequest]] = []
        score: list[tuple[int, JudgeRequest]] = []
        extract: list[tuple[int, Any]] = []
        for k, (fn_name, args) in enumerate(requests):
            try:
                if fn_name not in LLM_FUNCTIONS:
                    raise ValueError(
                        f"unknown LLM function {fn_name!r} (expected one of {', '.join(LLM_FUNCTIONS)})")
                if len(args) != 3:
                    raise TypeError(f"{fn_name} takes 3 arguments (instruction, response, ...), got {len(args)}")
                instruction, response, third = str(args[0]), str(args[1]), args[2]
                if fn_name == "llm_judge":
                    judge.append((k, JudgeRequest(instruction, response, (str(third),))))
                elif fn_name == "llm_score":
                    req = JudgeRequest(instruction, response, _constraint_list(third))
                    if not req.constraints:
                        raise VerifierUndecided("llm_score", "no constraints given")
                    score.append((k, req))
                else:
                    extract.append((k, extraction_messages(response, str(third), self.language)))
            except Exception as e:  # noqa: BLE001 - this request's answer
                out[k] = e
        for fn_name, group, gran in (("llm_judge", judge, "constraint"), ("llm_score", score, "item")):
            if not group:
                continue
            rows = self._judge([r for _, r in group], gran)
            for (k, _), row in zip(group, rows, strict=True):
                v = row[0] if isinstance(row, list) and len(row) >= 1 else None
                if v is None or v.passed is None:
                    out[k] = VerifierUndecided(fn_name, (v.error if v else row) or "undecided")
                elif fn_name == "llm_judge":
                    out[k] = (v.passed, v.prob)
                else:
                    out[k] = (1 if v.passed else 0, v.prob)
        if extract:
            from verifier.parsing import strip_reasoning

            results = self._complete([m for _, m in extract])
            for (k, _), r in zip(extract, results, strict=True):
                if isinstance(r, str):
                    out[k] = VerifierUndecided("llm_extract", r)
                elif r.error is not None or r.text is None:
                    out[k] = VerifierUndecided("llm_extract", r.error or "no text")
                else:
                    answer, err = strip_reasoning(r.text)
                    out[k] = (answer.strip(), None) if answer is not None else \
                        VerifierUndecided("llm_extract", err or "no final answer")
        return out  # type: ignore[return-value]

    def _judge(self, reqs: list[JudgeRequest], gran: str) -> list[Any]:
        """The verifier's rows; a whole-batch failure or a wrong row count becomes one error string per row."""
        try:
            rows = self.verifier.judge_batch(reqs, gran)
        except Exception as e:  # noqa: BLE001
            return [f"verifier failed: {type(e).__name__}: {e}"] * len(reqs)
        if len(rows) != len(reqs):
            return [f"verifier failed: {len(rows)} results for {len(reqs)} requests"] * len(reqs)
        return list(rows)

    def _complete(self, batch: list[Any]) -> list[Any]:
        try:
            results = self.verifier.complete_batch(batch, max_tokens=self.extract_max_tokens)
        except Exception as e:  # noqa: BLE001
            return [f"verifier failed: {type(e).__name__}: {e}"] * len(batch)
        if len(results) != len(batch):
            return [f"verifier failed: {len(results)} results for {len(batch)} requests"] * len(batch)
        return list(results)
