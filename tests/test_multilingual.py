"""Multi-IF's language-aware counts (checkers.multilingual), computed by hand per language."""

from __future__ import annotations

import os

import pytest

import checkers
from checkers import multilingual as ml
from checkers import text
from checkers.modes import evaluate_one

THAI = "ฉันชอบกินข้าว วันนี้อากาศดีมาก\nเราไปเที่ยวทะเลกันไหม"
HINDI = "यह एक परीक्षण वाक्य है। दूसरा वाक्य! तीसरा?"
CHINESE = "这是一个测试句子。我们今天去公园。"


def _needs(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed (pip install 'verinstruct[multilingual]')")
        pytest.skip(f"{module} is not installed")


def test_languages_are_detected() -> None:
    assert [ml.language_of(t) for t in (THAI, HINDI, CHINESE, "これは日本語のテストです。")] == ["th", "hi", "zh-cn", "ja"]
    assert ml.language_of("12345") == "en"  # undetectable counts as English


def test_chinese_japanese_counts_by_hand() -> None:
    _needs("emoji")
    # two runs ending in 。
    assert ml.count_sentences(CHINESE) == 2
    # 15 ideographs, no other word
    assert ml.count_words(CHINESE) == 15
    # the authors' own example: 12 kana + 2 emoji + 5 Latin words ("、" and "?" deleted)
    assert ml.cjk_words("こんにちは、ジェイソンさん、Jason? Nice to meet you☺ ❤") == 19
    # deleting punctuation joins words: "a,b c" is two words; a run without an end mark still counts
    assert ml.cjk_words("a,b c") == 2
    assert ml.cjk_sentences("你好。 再见\n\n第三句！第四") == 4
    assert ml.cjk_sentences("你好。 ") == 1  # each line is stripped first


def test_hindi_counts_by_hand() -> None:
    assert ml.count_sentences(HINDI) == 3
    assert ml.hindi_sentences("एक।। दो") == 3  # "एक।", "।", "दो"
    assert ml.hindi_sentences("   ") == 0
    # words: IFEval's \w+ count (Devanagari vowel signs stay inside their word)
    assert ml.count_words("हिन्दी भाषा में लिखिए।") == 4


def test_thai_counts_by_hand() -> None:
    _needs("pythainlp")
    _needs("pycrfsuite")
    # two sentences on the first line, one on the second
    assert ml.count_sentences(THAI) == 3
    # PyThaiNLP tokens, whitespace tokens included: 7 + the newline + 5
    assert ml.count_words(THAI) == 13


def test_other_languages_are_ifeval_counts() -> None:
    en = "First sentence here. Second one follows! Third?"
    assert ml.count_sentences(en) == text.count_sentences(en) == 3
    assert ml.count_words("Привет, мир! Как дела?") == 4


def test_checkers_use_the_language() -> None:
    words = checkers.build("multilingual:number_words", {"num_words": 15, "relation": "at least"})
    ifeval_words = checkers.build("length_constraints:number_words", {"num_words": 15, "relation": "at least"})
    _needs("emoji")
    v = evaluate_one(words, CHINESE)
    assert v.passed is True and "15 words (language 'zh-cn')" in v.reason
    assert evaluate_one(ifeval_words, CHINESE).passed is False  # IFEval sees 2 \w+ runs
    sentences = checkers.build("multilingual:number_sentences", {"num_sentences": 3, "relation": "less than"})
    assert evaluate_one(sentences, HINDI).passed is False
    assert evaluate_one(sentences, CHINESE).passed is True


def test_missing_package_makes_only_those_verdicts_undecided(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ml.MissingDependency("Thai counting needs pythainlp (test); " + ml.INSTALL_HINT)

    monkeypatch.setattr(ml, "_thai", missing)
    c = checkers.build("multilingual:number_words", {"num_words": 5, "relation": "at least"})
    v = evaluate_one(c, THAI)
    assert v.passed is None and "pythainlp" in (v.error or "") and "verinstruct[multilingual]" in (v.error or "")
    assert evaluate_one(c, "one two three four five six").passed is True
