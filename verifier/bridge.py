"""Bridge from dataset code's ``llm_*`` calls to a Verifier.

Dataset checking code (run in the sandbox) calls ``llm_judge(instruction, response, constraint) -> bool``,
``llm_score(instruction, response, checkers) -> 1/0`` and ``llm_extract(instruction, response, requirement)
-> str``. The sandbox forwards each call as ``callback(fn_name, args)``; :class:`LLMBridge` is that callback.
An undecided result raises :class:`VerifierUndecided` (carrying the error) so the sandbox marks the
verdict undecided instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
    """``(fn_name, args) -> result`` implementing llm_judge / llm_score / llm_extract with a Verifier."""

    FUNCTIONS = ("llm_judge", "llm_score", "llm_extract")

    def __init__(
        self, verifier: Verifier, *, extract_max_tokens: int = 256, language: str | None = None
    ) -> None:
        self.verifier = verifier
        self.extract_max_tokens = extract_max_tokens
        self.language = language or verifier.template.language

    def __call__(self, fn_name: str, args: tuple) -> Any:
        fn = {"llm_judge": self.llm_judge, "llm_score": self.llm_score, "llm_extract": self.llm_extract}.get(
            fn_name
        )
        if fn is None:
            raise ValueError(
                f"unknown LLM function {fn_name!r} (expected one of {', '.join(self.FUNCTIONS)})"
            )
        if len(args) != 3:
            raise TypeError(f"{fn_name} takes 3 arguments (instruction, response, ...), got {len(args)}")
        return fn(*args)

    def llm_judge(self, instruction: str, response: str, constraint: str) -> bool:
        v = self.verifier.judge_batch(
            [JudgeRequest(str(instruction), str(response), (str(constraint),))], "constraint"
        )[0][0]
        if v.passed is None:
            raise VerifierUndecided("llm_judge", v.error or "undecided")
        return v.passed

    def llm_score(self, instruction: str, response: str, checkers: Any) -> int:
        req = JudgeRequest(str(instruction), str(response), _constraint_list(checkers))
        if not req.constraints:
            raise VerifierUndecided("llm_score", "no constraints given")
        v = self.verifier.judge_batch([req], "item")[0][0]
        if v.passed is None:
            raise VerifierUndecided("llm_score", v.error or "undecided")
        return 1 if v.passed else 0

    def llm_extract(self, instruction: str, response: str, specific_prompt: str) -> str:
        messages = extraction_messages(str(response), str(specific_prompt), self.language)
        r = self.verifier.complete_batch([messages], max_tokens=self.extract_max_tokens)[0]
        if r.error is not None or r.text is None:
            raise VerifierUndecided("llm_extract", r.error or "no text")
        from verifier.parsing import strip_reasoning

        answer, err = strip_reasoning(r.text)
        if answer is None:
            raise VerifierUndecided("llm_extract", err or "no final answer")
        return answer.strip()
