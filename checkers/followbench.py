"""FollowBench's rule-based checkers (Jiang et al., ACL 2024), one registered checker per rule.

The authors decide 13 sources, two format examples (22, 30) and every example-pattern row with code instead
of an LLM judge: one function per source compares the generation with the row's ``target`` at its level
(1-5, each level adding one constraint). These checkers reproduce those verdicts exactly, quirks included,
because the benchmark's published numbers are defined by them (``tests/test_followbench_parity.py`` checks
all 2,680 reference verdicts): exact string equality for E2E and text_editing, membership in the literal
target list for CONLL2003, word counts as ``len(text.split(' '))`` where the authors wrote that (and
``str.split()`` where they wrote that), sentences as the pieces between ``.``, ``!`` and ``?``, case-sensitive
whole-word matches.

They are registered here, beside IFEval's, so benchmarks and the RL reward share one registry; the benchmark
(:mod:`benchmarks.followbench`) only maps each row to a checker id and its parameters.
"""

from __future__ import annotations

import ast
import functools
import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from checkers.base import Param, ParamError, Verdict
from checkers.registry import register

GROUP = "followbench"
LEVEL = Param("level", int, "the FollowBench level (number of added constraints)", min=1, max=5)
TARGET = Param("target", str, "the row's 'target' field")

# -------------------------------------------------------------------- the authors' text primitives

_SENTENCE_END = re.compile(r"[.!?]")


def _sentences(text: str) -> list[str]:
    """Non-empty pieces between '.', '!' and '?' (whitespace-only pieces count, as in FollowBench)."""
    return [s for s in _SENTENCE_END.split(text) if s]


def _space_words(text: str) -> int:
    """Words as FollowBench counts them for length limits: pieces between single spaces."""
    return len(text.split(" "))


def _has_word(text: str, word: str) -> bool:
    return re.search(r"\b" + re.escape(word) + r"\b", text) is not None


def _all_sentences_shorter(text: str, n: int) -> bool:
    return all(len(s.split()) < n for s in _sentences(text))


def _all_sentences_longer(text: str, n: int) -> bool:
    return all(len(s.split()) > n for s in _sentences(text))


def _nth_sentence(text: str, n: int) -> str | None:
    s = _sentences(text)
    return s[n - 1] if len(s) >= n else None


def _nth_has_word(text: str, n: int, word: str) -> bool:
    s = _nth_sentence(text, n)
    return s is not None and _has_word(s, word)


_PRESENT_PERFECT = re.compile(r"\b(?:has|have)\s+\w+")
_PRESENT_CONTINUOUS = re.compile(r"\b(?:am|is|are)\s+\w+ing\b")


def _punctuation_count(text: str) -> int:
    return sum(ch in string.punctuation for ch in text)


# -------------------------------------------------------------------- leveled rules
# A leveled rule lists one predicate per level; level n passes when the first n predicates hold.

Pred = Callable[[str], bool]


def _leveled(preds: tuple[Pred, Pred, Pred, Pred, Pred], text: str, level: int) -> Verdict:
    for k, pred in enumerate(preds[:level], start=1):
        if not pred(text):
            return Verdict.fail(f"constraint of level {k} not met")
    return Verdict.ok(f"all {level} constraint(s) met")


_LEVELED: dict[str, tuple[Pred, Pred, Pred, Pred, Pred]] = {
    "cnn_dailymail": (
        lambda t: len(_sentences(t)) == 3,
        lambda t: _all_sentences_shorter(t, 15),
        lambda t: _nth_has_word(t, 1, "Potter") and _nth_has_word(t, 2, "actor") and _nth_has_word(t, 3, "films"),
        lambda t: not _nth_has_word(t, 2, "lavish"),
        lambda t: (s := _nth_sentence(t, 3)) is not None and _PRESENT_PERFECT.search(s) is not None,
    ),
    "xsum": (
        lambda t: len(_sentences(t)) == 1,
        lambda t: _space_words(t) < 20,
        lambda t: not _has_word(t, "Newton Stewart"),
        lambda t: _PRESENT_CONTINUOUS.search(t) is not None,
        lambda t: _has_word(t, "operation"),
    ),
    "samsum": (
        lambda t: len(_sentences(t)) == 1,
        lambda t: _space_words(t) < 15,
        lambda t: _has_word(t, "stuff"),
        lambda t: re.search("procrast", t, re.IGNORECASE) is None,
        lambda t: _punctuation_count(t) == 1,
    ),
    "gigaword": (
        lambda t: _space_words(t) == 8,
        lambda t: _punctuation_count(t) == 0,
        lambda t: t.islower(),
        lambda t: not _has_word(t, "bus"),
        lambda t: _has_word(t, "in"),
    ),
    "arxiv": (
        lambda t: len(_sentences(t)) == 1,
        lambda t: _space_words(t) <= 20,
        lambda t: t[:2] == "We",
        lambda t: _has_word(t, "activations"),
        lambda t: not _has_word(t, "transformer"),
    ),
}

# -------------------------------------------------------------------- target-comparing rules


def _last_match(pattern: re.Pattern[str], text: str, target: str) -> Verdict:
    found = pattern.findall(text)
    if not found:
        return Verdict.fail(f"no answer matching {pattern.pattern!r}")
    return Verdict(found[-1] == target, f"last answer {found[-1]!r}, expected {target!r}")


_CHOICE = re.compile(r"\([A-Z]\)")
_DATE = re.compile(r"\d{2}/\d{2}/\d{4}")
_DOLLARS = re.compile(r"\$\d+")


def _equal(text: str, target: str) -> Verdict:
    return Verdict(text == target, "equals the target" if text == target else "differs from the target")


def _lines_in_target(text: str, target: str) -> Verdict:
    allowed = target.split("\n")
    extra = [line for line in text.split("\n") if line not in allowed]
    return Verdict(not extra, f"line not in the target: {extra[0]!r}" if extra else "every line is in the target")


@functools.lru_cache(maxsize=1024)
def _literal_list(target: str) -> Any:
    return ast.literal_eval(target)


def _in_literal(text: str, target: str) -> Verdict:
    ok = text in _literal_list(target)
    return Verdict(ok, "one of the target's answers" if ok else "not one of the target's answers")


def _contains_target(text: str, target: str) -> Verdict:
    ok = target in text
    return Verdict(ok, "contains the target" if ok else f"does not contain {target!r}")


_TARGET_RULES: dict[str, Callable[[str, str], Verdict]] = {
    "E2E": _equal,
    "WIKIEVENTS": _lines_in_target,
    "CONLL2003": _in_literal,
    "text_editing": _equal,
    "BBH_logical": lambda t, target: _last_match(_CHOICE, t, target),
    "BBH_time": lambda t, target: _last_match(_DATE, t, target),
    "self_made_space": _contains_target,
    "gsm_8k": lambda t, target: _last_match(_DOLLARS, t, target),
}

#: FollowBench ``source`` -> checker id, for every rule-scored source
RULE_SOURCES: dict[str, str] = {src: f"{GROUP}:{src.lower()}" for src in (*_TARGET_RULES, *_LEVELED)}
#: the format-category examples the authors score with code
FORMAT_EXAMPLES: tuple[int, ...] = (22, 30)
FORMAT_ID = f"{GROUP}:format"
EXAMPLE_ID = f"{GROUP}:example_pattern"


def _v_conll(p: Mapping[str, Any]) -> None:
    try:
        value = _literal_list(p["target"])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ParamError(RULE_SOURCES["CONLL2003"], "target", f"must be a Python literal (a list), got error {e}") from None
    if not hasattr(value, "__contains__"):
        raise ParamError(RULE_SOURCES["CONLL2003"], "target", f"must be a Python list literal, got {value!r}")


def _register_target_rule(source: str, fn: Callable[[str, str], Verdict]) -> None:
    def check(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
        return fn(response, params["target"])

    register(
        RULE_SOURCES[source],
        f"FollowBench's rule for source {source!r}: the response compared with the row's target "
        "(the same verdict at every level).",
        [TARGET, LEVEL],
        group=GROUP,
        check_params=_v_conll if source == "CONLL2003" else None,
        judges_empty=True,
    )(check)


def _register_leveled_rule(source: str) -> None:
    preds = _LEVELED[source]

    def check(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
        return _leveled(preds, response, params["level"])

    register(
        RULE_SOURCES[source],
        f"FollowBench's rule for source {source!r}: the first LEVEL of its five fixed constraints hold.",
        [Param("target", str, "the row's 'target' field (not used by this rule)", default=""), LEVEL],
        group=GROUP,
        judges_empty=True,
    )(check)


for _src, _fn in _TARGET_RULES.items():
    _register_target_rule(_src, _fn)
for _src in _LEVELED:
    _register_leveled_rule(_src)

# -------------------------------------------------------------------- format examples 22 and 30


def _paragraphs_numbered(text: str) -> bool:
    return all(re.match(r"\d+\.", p.lstrip()) for p in text.split("\n\n") if p.lstrip())


def _format_22(text: str, level: int) -> Verdict:
    paras = text.split("\n\n")
    # the fifth constraint adds a closing paragraph: four in all
    checks = [len(paras) == (4 if level == 5 else 3)]
    if level >= 2:
        checks.append(len(paras) >= 3 and all(len(_sentences(p)) < 3 for p in paras[:3]))
    if level >= 3:
        checks.append(_all_sentences_longer(text, 20))
    if level >= 4:
        checks.append(_paragraphs_numbered(text))
    if level >= 5:
        checks.append(text.endswith("Those are suggestions"))
    failed = [k for k, ok in enumerate(checks, start=1) if not ok]
    return Verdict(not failed, f"constraint {failed[0]} not met" if failed else f"all {level} constraint(s) met")


_SENTENCE_BREAK = re.compile(r"(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?)\s")
_BOLD_POINT = re.compile(r"\*\*[\d].+?:")


def _format_30(text: str, level: int) -> Verdict:
    sentences = _SENTENCE_BREAK.split(text)
    points = [s for s in sentences if any(f"{n}." in s for n in range(1, 6))]
    checks = (
        lambda: "**" in text,
        lambda: len(_BOLD_POINT.findall(text)) == 5,
        lambda: all(len(s.split(".")) < 3 for s in points),
        lambda: all(10 <= len(s.split()) <= 15 for s in sentences),
        lambda: not any(w.endswith("-ly") for s in sentences for w in s.split()),
    )
    for k, ok in enumerate(checks[:level], start=1):
        if not ok():
            return Verdict.fail(f"constraint {k} not met")
    return Verdict.ok(f"all {level} constraint(s) met")


@register(
    FORMAT_ID,
    "FollowBench's rules for the format examples 22 and 30: the first LEVEL of that example's constraints.",
    [Param("example_id", int, "the format example", choices=FORMAT_EXAMPLES), LEVEL],
    group=GROUP,
    judges_empty=True,
)
def followbench_format(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    fn = _format_22 if params["example_id"] == 22 else _format_30
    return fn(response, params["level"])


# -------------------------------------------------------------------- example-pattern rows


@functools.lru_cache(maxsize=1024)
def _pattern_regex(template: str) -> re.Pattern[str]:
    """FollowBench's reading of an example template: doubled braces are literal braces, ``{answer}`` is
    any text without line breaks, and so is any literal ``.*`` left in the template."""
    plain = template.replace("{{", "{").replace("}}", "}").replace("{answer}", ".*")
    return re.compile(".*".join(re.escape(piece) for piece in plain.split(".*")))


@register(
    EXAMPLE_ID,
    "FollowBench's example-pattern rule: the whole response has the template's shape, '{answer}' being any "
    "single-line text.",
    [Param("template", str, "the row's target without its leading '{instruction}\\n'")],
    group=GROUP,
    judges_empty=True,
)
def followbench_example(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ok = _pattern_regex(params["template"]).fullmatch(response) is not None
    return Verdict(ok, "matches the example pattern" if ok else "does not match the example pattern")
