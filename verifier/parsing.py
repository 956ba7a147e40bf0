"""Read a yes/no verdict from a judge model's output.

Rules (in order):

1. Reasoning is removed first (:mod:`verifier.reasoning`: exact lower-case tags). Everything up to the last
   ``</think>`` is reasoning; an opening ``<think>`` with no closing tag after it means the model never
   reached its answer -> unparseable.
   Nothing inside the reasoning can affect the verdict.
2. In the final answer, the first explicit ``[[1]]`` / ``[[0]]`` decides (VerIF asks for the score at the
   very start of the answer).
3. Otherwise, the answer's leading word decides, after skipping markdown/quotes and an ``Answer:`` /
   ``答案：`` label: yes/no (any case, word-bounded, so "Yes." counts but "Yesterday" does not),
   是/满足/符合 (yes) or 否/不是/不满足/不符合 (no).
4. Otherwise, every word-bounded English yes/no in the answer must agree; one polarity -> that verdict.
5. Anything else (no candidate, or both polarities) is unparseable: ``passed`` None with an error
   ``"unparseable: ..."``, never a default 0.

Reasoning templates (``parse_verdict(text, reasoning=True)``) ask for brief reasoning *then* a last line
``Final answer: [[1]]`` / ``[[0]]`` (``最终答案：[[1]]``). There the verdict is at the end, and the
reasoning before it may quote the marks or say yes/no, so rules 2-4 are replaced by:

R1. After rule 1, the last ``Final answer`` / ``最终答案`` label that is followed by a verdict decides;
    the text after a label (up to the next label) gives a verdict by its first ``[[1]]``/``[[0]]`` or
    its leading yes/no/是/否 word (as in rule 3).
R2. Otherwise the LAST ``[[1]]`` / ``[[0]]`` in the final answer decides.
R3. Otherwise unparseable (no ``Final answer`` verdict and no mark), never a default 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verifier.reasoning import split_reasoning

_SCORE = re.compile(r"\[\[\s*([01])\s*\]\]")
_LEAD_JUNK = re.compile(
    r"^(?:[\s*_#>`\"'“”‘’「」【】()\[\]:：\-–—.,，。]|answer|final answer|verdict|答案|回答|结论)+", re.I
)
_LEAD_EN = re.compile(r"^(yes|no)\b", re.IGNORECASE)
_LEAD_ZH_NO = ("不满足", "不符合", "不是", "否")
_LEAD_ZH_YES = ("满足", "符合", "是")
_ANY_EN = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_FINAL_LABEL = re.compile(r"final\s+answer|最终答案", re.IGNORECASE)
_LABEL_GLUE = re.compile(r"^\s*(?:is\b|为|是(?=\s*[:：\[]))?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """``passed`` True/False, or None with ``error``; ``answer`` is the final answer after reasoning."""

    passed: bool | None
    answer: str
    error: str | None = None
    rule: str = ""


def strip_reasoning(text: str) -> tuple[str | None, str | None]:
    """Return (final answer, None) or (None, error) when the reasoning never ended (:mod:`verifier.reasoning`'s rule)."""
    r = split_reasoning(text)
    if not r.finished:
        return None, "unparseable: reasoning was not finished (<think> without </think>), no final answer"
    return r.answer, None


def _leading_word(answer: str) -> bool | None:
    head = _LEAD_JUNK.sub("", answer, count=1)
    m = _LEAD_EN.match(head)
    if m:
        return m.group(1).lower() == "yes"
    if not head.startswith("是否"):
        for word in _LEAD_ZH_NO:
            if head.startswith(word):
                return False
        for word in _LEAD_ZH_YES:
            if head.startswith(word):
                return True
    return None


def _parse_reasoned(answer: str) -> ParsedAnswer:
    """Rules R1-R3 (verdict at the end, after reasoning)."""
    labels = list(_FINAL_LABEL.finditer(answer))
    for n in range(len(labels) - 1, -1, -1):
        end = labels[n + 1].start() if n + 1 < len(labels) else len(answer)
        segment = answer[labels[n].end() : end]
        m = _SCORE.search(segment)
        if m:
            return ParsedAnswer(m.group(1) == "1", answer, rule="final-answer")
        lead = _leading_word(_LABEL_GLUE.sub("", segment, count=1))
        if lead is not None:
            return ParsedAnswer(lead, answer, rule="final-answer")
    marks = _SCORE.findall(answer)
    if marks:
        return ParsedAnswer(marks[-1] == "1", answer, rule="last-score-mark")
    tail = answer if len(answer) <= 80 else "..." + answer[-77:]
    return ParsedAnswer(
        None, answer, f"unparseable: no 'Final answer' verdict and no [[1]]/[[0]] in the answer {tail!r}"
    )


def parse_verdict(text: str | None, *, reasoning: bool = False) -> ParsedAnswer:
    """Parse a judge output into a verdict following the module's documented rules.

    ``reasoning`` selects the rules for reasoning templates (verdict at the end: R1-R3).
    """
    if text is None:
        return ParsedAnswer(None, "", "unparseable: no output")
    answer, err = strip_reasoning(text)
    if answer is None:
        return ParsedAnswer(None, "", err)
    answer = answer.strip()
    if not answer:
        return ParsedAnswer(None, answer, "unparseable: empty final answer")
    if reasoning:
        return _parse_reasoned(answer)
    m = _SCORE.search(answer)
    if m:
        return ParsedAnswer(m.group(1) == "1", answer, rule="score-mark")
    lead = _leading_word(answer)
    if lead is not None:
        return ParsedAnswer(lead, answer, rule="leading-word")
    found = {w.lower() for w in _ANY_EN.findall(answer)}
    if len(found) == 1:
        return ParsedAnswer(found == {"yes"}, answer, rule="only-polarity")
    snippet = answer if len(answer) <= 80 else answer[:77] + "..."
    if len(found) > 1:
        return ParsedAnswer(None, answer, f"unparseable: both yes and no in the answer {snippet!r}")
    return ParsedAnswer(
        None, answer, f"unparseable: no [[1]]/[[0]], yes/no or 是/否 in the answer {snippet!r}"
    )
