"""IFEval's 25 instruction checkers (Zhou et al. 2023), under IFEval's own ids and kwargs names.

Semantics follow Google's reference ``instructions.py`` exactly (regexes included, even where a keyword is
used as a regular expression), so verdicts on any input match the reference, with two documented
exceptions where the reference is random: it draws a random value for a missing/invalid parameter (we
reject the parameter instead), and ``keywords:letter_frequency`` with a non-letter replaces it by a random
letter (we count the literal character).

None of these checkers reads the row's prompt: the reference only hands the prompt to an instruction whose
arguments include one named ``prompt``, and none does (``combination:repeat_prompt`` gets its text from the
``prompt_to_repeat`` kwarg). Strict/loose evaluation lives in :mod:`checkers.modes`, not here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from checkers import text
from checkers.base import Param, ParamError, Verdict
from checkers.registry import register

RELATIONS = ("less than", "at least")


def _relation(name: str = "relation") -> Param:
    return Param(
        name, str, "comparison: 'less than' (count < N) or 'at least' (count >= N)", choices=RELATIONS
    )


def _compare(count: int, relation: str, n: int, what: str) -> Verdict:
    ok = count < n if relation == "less than" else count >= n
    return Verdict(ok, f"{count} {what}, need {relation} {n}")


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _valid_regex(checker_id: str, param: str, pattern: str) -> None:
    try:
        _pattern(pattern, re.IGNORECASE)
    except re.error as e:
        raise ParamError(
            checker_id,
            param,
            f"is used as a regular expression (as in IFEval) but {pattern!r} is invalid: {e}",
        ) from None


P = Param

_PLAIN = re.compile(r"[A-Za-z0-9 ]+")


def _absent(keyword: str, response: str) -> bool:
    """True only where the case-insensitive regex ``keyword`` cannot match: a keyword without regex
    syntax (ASCII letters, digits, spaces) whose lower case is not in an ASCII response's lower case
    (on ASCII text, re's case-insensitive matching is exactly lower-case equality). A cheap pre-check."""
    return (
        response.isascii() and _PLAIN.fullmatch(keyword) is not None and keyword.lower() not in response.lower()
    )

# ---------------------------------------------------------------- keywords


def _v_existence(p: Mapping[str, Any]) -> None:
    if not p["keywords"]:
        raise ParamError("keywords:existence", "keywords", "must be a non-empty list of strings")
    for k in p["keywords"]:
        _valid_regex("keywords:existence", "keywords", k)


@register(
    "keywords:existence",
    "Response contains every keyword (case-insensitive; each keyword is a regular expression, as in IFEval).",
    [P("keywords", list, "keywords that must all appear")],
    group="keywords",
    check_params=_v_existence,
)
def keywords_existence(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    missing = [
        k for k in params["keywords"] if _absent(k, response) or not _pattern(k, re.IGNORECASE).search(response)
    ]
    return Verdict(not missing, f"missing {missing}" if missing else "all keywords present")


def _v_frequency(p: Mapping[str, Any]) -> None:
    if not p["keyword"].strip():
        raise ParamError("keywords:frequency", "keyword", "must be a non-empty string")
    _valid_regex("keywords:frequency", "keyword", p["keyword"].strip())


@register(
    "keywords:frequency",
    "A keyword occurs 'less than' / 'at least' N times (case-insensitive regex count, as in IFEval).",
    [
        P("keyword", str, "the keyword (surrounding spaces are stripped)"),
        P("frequency", int, "the threshold N", min=0),
        _relation(),
    ],
    group="keywords",
    check_params=_v_frequency,
)
def keywords_frequency(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    kw = params["keyword"].strip()
    n = 0 if _absent(kw, response) else len(_pattern(kw, re.IGNORECASE).findall(response))
    return _compare(n, params["relation"], params["frequency"], f"occurrences of {kw!r}")


def _v_forbidden(p: Mapping[str, Any]) -> None:
    if not p["forbidden_words"]:
        raise ParamError("keywords:forbidden_words", "forbidden_words", "must be a non-empty list of strings")
    for w in p["forbidden_words"]:
        _valid_regex("keywords:forbidden_words", "forbidden_words", r"\b" + w + r"\b")


@register(
    "keywords:forbidden_words",
    "None of the words occurs as a whole word (case-insensitive, \\bWORD\\b as in IFEval).",
    [P("forbidden_words", list, "words that must not appear")],
    group="keywords",
    check_params=_v_forbidden,
)
def keywords_forbidden(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    found = [
        w
        for w in params["forbidden_words"]
        if not _absent(w, response) and _pattern(r"\b" + w + r"\b", re.IGNORECASE).search(response)
    ]
    return Verdict(not found, f"contains forbidden {found}" if found else "no forbidden word")


def _v_letter(p: Mapping[str, Any]) -> None:
    if len(p["letter"]) != 1:
        raise ParamError(
            "keywords:letter_frequency", "letter", f"must be a single character, got {p['letter']!r}"
        )


@register(
    "keywords:letter_frequency",
    "A character occurs 'less than' / 'at least' N times, case-insensitive. Unlike IFEval, a non-letter "
    "(e.g. '#', '!') is counted literally; IFEval replaces it by a random letter.",
    [
        P("letter", str, "a single character"),
        P("let_frequency", int, "the threshold N", min=0),
        _relation("let_relation"),
    ],
    group="keywords",
    check_params=_v_letter,
)
def letter_frequency(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    letter = params["letter"].lower()
    return _compare(
        response.lower().count(letter), params["let_relation"], params["let_frequency"], f"{letter!r}"
    )


# ---------------------------------------------------------------- language and case


@register(
    "language:response_language",
    "The whole response is in the given language (langdetect, seeded; undetectable text passes, as in IFEval).",
    [P("language", str, "ISO 639-1 code as langdetect reports it, e.g. 'en', 'fr', 'zh-cn'")],
    group="language",
)
def response_language(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    lang = text.detect_language(response)
    if lang is None:
        return Verdict(True, "language undetectable (passes, as in IFEval)")
    return Verdict(lang == params["language"], f"detected {lang!r}")


@register(
    "change_case:english_capital",
    "The response is in English and entirely upper case.",
    [],
    group="change_case",
)
def english_capital(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    return _english_in_case(response, response.isupper(), "upper case")


@register(
    "change_case:english_lowercase",
    "The response is in English and entirely lower case.",
    [],
    group="change_case",
)
def english_lowercase(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    return _english_in_case(response, response.islower(), "lower case")


def _english_in_case(response: str, in_case: bool, case: str) -> Verdict:
    if not in_case:
        return Verdict(False, f"not all {case}")
    lang = text.detect_language(response)
    if lang is None:
        return Verdict(True, f"{case}; language undetectable (passes, as in IFEval)")
    return Verdict(lang == "en", f"{case}, detected {lang!r}")


@register(
    "change_case:capital_word_frequency",
    "Words in all capitals (NLTK word tokens) occur 'less than' / 'at least' N times.",
    [P("capital_frequency", int, "the threshold N"), _relation("capital_relation")],
    group="change_case",
)
def capital_word_frequency(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = sum(1 for t in text.word_tokens(response) if t.isupper())
    return _compare(n, params["capital_relation"], params["capital_frequency"], "all-capital words")


# ---------------------------------------------------------------- length


@register(
    "length_constraints:number_sentences",
    "Sentence count (NLTK Punkt, English) is 'less than' / 'at least' N.",
    [P("num_sentences", int, "the threshold N", min=0), _relation()],
    group="length_constraints",
)
def number_sentences(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    return _compare(text.count_sentences(response), params["relation"], params["num_sentences"], "sentences")


@register(
    "length_constraints:number_words",
    "Word count (runs of \\w) is 'less than' / 'at least' N.",
    [P("num_words", int, "the threshold N", min=0), _relation()],
    group="length_constraints",
)
def number_words(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    return _compare(text.count_words(response), params["relation"], params["num_words"], "words")


_DIVIDER_RE = re.compile(r"\s?\*\*\*\s?")


@register(
    "length_constraints:number_paragraphs",
    "Exactly N paragraphs separated by the markdown divider *** (no empty paragraph in between).",
    [P("num_paragraphs", int, "the exact number N", min=0)],
    group="length_constraints",
)
def number_paragraphs(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    parts = _DIVIDER_RE.split(response)
    count = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if i in (0, len(parts) - 1):
                count -= 1
            else:
                return Verdict(False, f"empty paragraph {i + 1} between *** dividers")
    return Verdict(count == params["num_paragraphs"], f"{count} paragraphs, need {params['num_paragraphs']}")


_BLANK_LINE_RE = re.compile(r"\n\n")
_FIRST_WORD_STOP = frozenset(".,?!'\"")


def _v_nth(p: Mapping[str, Any]) -> None:
    if p["nth_paragraph"] > p["num_paragraphs"]:
        raise ParamError(
            "length_constraints:nth_paragraph_first_word",
            "nth_paragraph",
            f"must be <= num_paragraphs ({p['num_paragraphs']}), got {p['nth_paragraph']}",
        )


@register(
    "length_constraints:nth_paragraph_first_word",
    "Exactly N paragraphs separated by blank lines, and paragraph i starts with the given word (case-insensitive).",
    [
        P("num_paragraphs", int, "the exact number of paragraphs", min=1),
        P("nth_paragraph", int, "which paragraph (1-based) must start with first_word", min=1),
        P("first_word", str, "the required first word"),
    ],
    group="length_constraints",
    check_params=_v_nth,
)
def nth_paragraph_first_word(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    parts = _BLANK_LINE_RE.split(response)
    count = sum(1 for p in parts if p.strip())
    nth = params["nth_paragraph"]
    if nth > count:
        return Verdict(False, f"only {count} paragraphs, no paragraph {nth}")
    para = parts[nth - 1].strip()
    if not para:
        return Verdict(False, f"paragraph {nth} is empty")
    word = para.split()[0].strip().lstrip("'").lstrip('"')
    first = []
    for ch in word:
        if ch in _FIRST_WORD_STOP:
            break
        first.append(ch.lower())
    got = "".join(first)
    want = params["first_word"].lower()
    ok = count == params["num_paragraphs"] and got == want
    return Verdict(
        ok, f"{count} paragraphs (need {params['num_paragraphs']}); paragraph {nth} starts with {got!r}"
    )


# ---------------------------------------------------------------- content


_PLACEHOLDER_RE = re.compile(r"\[.*?\]")


@register(
    "detectable_content:number_placeholders",
    "At least N placeholders in square brackets, such as [address].",
    [P("num_placeholders", int, "the minimum number N", min=0)],
    group="detectable_content",
)
def number_placeholders(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = len(_PLACEHOLDER_RE.findall(response))
    return Verdict(
        n >= params["num_placeholders"], f"{n} placeholders, need at least {params['num_placeholders']}"
    )


_PS_PATTERNS = {"P.P.S": r"\s*p\.\s?p\.\s?s.*$", "P.S.": r"\s*p\.\s?s\..*$"}


def _v_postscript(p: Mapping[str, Any]) -> None:
    _valid_regex("detectable_content:postscript", "postscript_marker", p["postscript_marker"].strip().lower())


@register(
    "detectable_content:postscript",
    "A postscript line starting with the marker (e.g. 'P.S.' or 'P.P.S'), case-insensitive.",
    [P("postscript_marker", str, "the marker, e.g. 'P.S.' or 'P.P.S'")],
    group="detectable_content",
    check_params=_v_postscript,
)
def postscript(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    marker = params["postscript_marker"].strip()
    pat = _PS_PATTERNS.get(marker) or r"\s*" + marker.lower() + r".*$"
    found = _pattern(pat, re.MULTILINE).search(response.lower()) is not None
    return Verdict(found, f"postscript {marker!r} {'found' if found else 'missing'}")


# ---------------------------------------------------------------- format

_BULLET_STAR_RE = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_BULLET_DASH_RE = re.compile(r"^\s*-.*$", re.MULTILINE)


@register(
    "detectable_format:number_bullet_lists",
    "Exactly N markdown bullet points (lines starting with '* ' or '-').",
    [P("num_bullets", int, "the exact number N", min=0)],
    group="detectable_format",
)
def number_bullet_lists(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = len(_BULLET_STAR_RE.findall(response)) + len(_BULLET_DASH_RE.findall(response))
    return Verdict(n == params["num_bullets"], f"{n} bullet points, need exactly {params['num_bullets']}")


CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@register(
    "detectable_format:constrained_response",
    "Contains one of: 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'",
    [],
    group="detectable_format",
)
def constrained_response(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    r = response.strip()
    hit = next((o for o in CONSTRAINED_OPTIONS if o in r), None)
    return Verdict(hit is not None, f"contains {hit!r}" if hit else "none of the options")


_HIGHLIGHT_RE = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT_RE = re.compile(r"\*\*[^\n\*]*\*\*")


@register(
    "detectable_format:number_highlighted_sections",
    "At least N highlighted sections in markdown, *like this* (bold **sections** count too).",
    [P("num_highlights", int, "the minimum number N", min=0)],
    group="detectable_format",
)
def number_highlighted_sections(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = sum(1 for h in _HIGHLIGHT_RE.findall(response) if h.strip("*").strip())
    n += sum(1 for h in _DOUBLE_HIGHLIGHT_RE.findall(response) if h[2:-2].strip())
    return Verdict(
        n >= params["num_highlights"], f"{n} highlighted sections, need at least {params['num_highlights']}"
    )


def _v_sections(p: Mapping[str, Any]) -> None:
    _valid_regex(
        "detectable_format:multiple_sections",
        "section_spliter",
        r"\s?" + p["section_spliter"].strip() + r"\s?\d+\s?",
    )


@register(
    "detectable_format:multiple_sections",
    "At least N sections, each started by the splitter word and a number (e.g. 'Section 1').",
    [
        P("section_spliter", str, "the splitter word, e.g. 'Section' or 'SECTION' (a regex, as in IFEval)"),
        P("num_sections", int, "the minimum number N", min=0),
    ],
    group="detectable_format",
    check_params=_v_sections,
)
def multiple_sections(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    splitter = params["section_spliter"].strip()
    n = len(_pattern(r"\s?" + splitter + r"\s?\d+\s?").split(response)) - 1
    return Verdict(n >= params["num_sections"], f"{n} sections, need at least {params['num_sections']}")


@register(
    "detectable_format:json_format",
    "The whole response is valid JSON (optionally inside a ``` / ```json fence).",
    [],
    group="detectable_format",
)
def json_format(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    v = response.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        v = v.removeprefix(prefix)
    v = v.removesuffix("```").strip()
    try:
        json.loads(v)
    except ValueError as e:
        return Verdict(False, f"not JSON: {e}")
    except RecursionError:
        return Verdict.undecided("JSON nested too deeply to parse")
    return Verdict(True, "valid JSON")


_TITLE_RE = re.compile(r"<<[^\n]+>>")


@register(
    "detectable_format:title",
    "Contains a non-empty title in double angular brackets, such as <<poem of joy>>.",
    [],
    group="detectable_format",
)
def title(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ok = any(t.lstrip("<").rstrip(">").strip() for t in _TITLE_RE.findall(response))
    return Verdict(ok, "title found" if ok else "no <<title>>")


# ---------------------------------------------------------------- combination / start-end / punctuation


@register(
    "combination:two_responses",
    "Exactly two different responses separated by six asterisks ******.",
    [],
    group="combination",
)
def two_responses(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    parts = response.split("******")
    valid = []
    for i, part in enumerate(parts):
        if part.strip():
            valid.append(part)
        elif 0 < i < len(parts) - 1:
            return Verdict(False, "empty response between separators")
    if len(valid) != 2:
        return Verdict(False, f"{len(valid)} responses, need 2")
    if valid[0].strip() == valid[1].strip():
        return Verdict(False, "the two responses are identical")
    return Verdict(True, "two different responses")


def _v_repeat(p: Mapping[str, Any]) -> None:
    if not p["prompt_to_repeat"]:
        raise ParamError("combination:repeat_prompt", "prompt_to_repeat", "must be a non-empty string")


@register(
    "combination:repeat_prompt",
    "Starts by repeating the request word for word (case-insensitive, surrounding whitespace ignored).",
    [P("prompt_to_repeat", str, "the request text to repeat first")],
    group="combination",
    check_params=_v_repeat,
)
def repeat_prompt(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ok = response.strip().lower().startswith(params["prompt_to_repeat"].strip().lower())
    return Verdict(ok, "starts with the request" if ok else "does not start with the request")


@register(
    "startend:end_checker",
    "Ends with the exact phrase (case-insensitive; trailing spaces and double quotes ignored).",
    [P("end_phrase", str, "the required final phrase")],
    group="startend",
)
def end_checker(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    ok = response.strip().strip('"').lower().endswith(params["end_phrase"].strip().lower())
    return Verdict(ok, "ends with the phrase" if ok else "does not end with the phrase")


@register(
    "startend:quotation",
    "The whole response is wrapped in double quotation marks.",
    [],
    group="startend",
)
def quotation(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    v = response.strip()
    ok = len(v) > 1 and v[0] == '"' and v[-1] == '"'
    return Verdict(ok, "wrapped in double quotes" if ok else "not wrapped in double quotes")


@register(
    "punctuation:no_comma",
    "The response contains no comma.",
    [],
    group="punctuation",
)
def no_comma(response: str, params: Mapping[str, Any], prompt: str) -> Verdict:
    n = response.count(",")
    return Verdict(n == 0, f"{n} commas" if n else "no comma")
