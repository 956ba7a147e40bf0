"""The typed registry: lookups, suggestions and parameter validation errors."""

from __future__ import annotations

import pytest

from checkers import ParamError, UnknownCheckerError, build, get, ids, specs
from checkers.ifeval import RELATIONS

IFEVAL_IDS = {
    "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
    "language:response_language", "length_constraints:number_sentences", "length_constraints:number_paragraphs",
    "length_constraints:number_words", "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders", "detectable_content:postscript",
    "detectable_format:number_bullet_lists", "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections", "detectable_format:multiple_sections",
    "detectable_format:json_format", "detectable_format:title", "combination:two_responses",
    "combination:repeat_prompt", "startend:end_checker", "change_case:capital_word_frequency",
    "change_case:english_capital", "change_case:english_lowercase", "punctuation:no_comma", "startend:quotation",
}  # fmt: skip


def test_all_25_ifeval_ids_registered() -> None:
    assert len(IFEVAL_IDS) == 25
    assert set(ids()) >= IFEVAL_IDS
    for s in specs():
        assert s.description and s.group, s.id
        for p in s.params:
            assert p.description, (s.id, p.name)


def test_unknown_id_suggests_closest() -> None:
    with pytest.raises(UnknownCheckerError) as e:
        build("keywords:existance", {"keywords": ["a"]})
    assert e.value.suggestions[0] == "keywords:existence"
    assert "keywords:existence" in str(e.value) and "keywords:existance" in str(e.value)


def test_unknown_id_suggests_by_suffix() -> None:
    with pytest.raises(UnknownCheckerError) as e:
        get("length:number_words")
    assert "length_constraints:number_words" in e.value.suggestions


def test_wrong_type_names_id_param_and_expectation() -> None:
    with pytest.raises(ParamError) as e:
        build("length_constraints:number_words", {"num_words": "many", "relation": "at least"})
    msg = str(e.value)
    assert "length_constraints:number_words" in msg and "num_words" in msg and "integer" in msg
    assert e.value.param == "num_words"


def test_integral_float_is_accepted_as_int() -> None:
    c = build("length_constraints:number_words", {"num_words": 300.0, "relation": "at least"})
    assert c.params["num_words"] == 300 and isinstance(c.params["num_words"], int)


def test_bad_choice_lists_allowed_values() -> None:
    with pytest.raises(ParamError) as e:
        build("length_constraints:number_words", {"num_words": 3, "relation": "at most"})
    assert all(r in str(e.value) for r in RELATIONS)


def test_out_of_range() -> None:
    with pytest.raises(ParamError) as e:
        build("detectable_format:number_bullet_lists", {"num_bullets": -1})
    assert ">= 0" in str(e.value) and "num_bullets" in str(e.value)


def test_unknown_param_lists_accepted_ones() -> None:
    with pytest.raises(ParamError) as e:
        build("punctuation:no_comma", {"commas": 0})
    assert "commas" in str(e.value) and "no parameters" in str(e.value)
    with pytest.raises(ParamError) as e:
        build("keywords:frequency", {"keyword": "a", "frequency": 2, "relation": "at least", "freq": 1})
    assert "'freq'" in str(e.value) and "frequency" in str(e.value)


def test_missing_required() -> None:
    with pytest.raises(ParamError) as e:
        build("keywords:frequency", {"keyword": "cat", "relation": "at least"})
    assert e.value.param == "frequency" and "required" in str(e.value)


def test_none_values_are_ignored_like_ifeval() -> None:
    c = build("punctuation:no_comma", {"keywords": None, "num_words": None})
    assert dict(c.params) == {}


def test_cross_parameter_rules() -> None:
    with pytest.raises(ParamError) as e:
        build("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "x"})
    assert "nth_paragraph" in str(e.value) and "<= num_paragraphs" in str(e.value)
    with pytest.raises(ParamError, match="single character"):
        build("keywords:letter_frequency", {"letter": "ab", "let_frequency": 1, "let_relation": "at least"})
    with pytest.raises(ParamError, match="regular expression"):
        build("keywords:existence", {"keywords": ["(unclosed"]})
    with pytest.raises(ParamError, match="non-empty"):
        build("keywords:existence", {"keywords": []})
    with pytest.raises(ParamError, match="list of strings"):
        build("keywords:existence", {"keywords": "cat"})


def test_json_schema_matches_params() -> None:
    schema = get("keywords:letter_frequency").json_schema()
    assert schema["required"] == ["letter", "let_frequency", "let_relation"]
    assert schema["properties"]["let_relation"]["enum"] == list(RELATIONS)
    assert schema["additionalProperties"] is False
