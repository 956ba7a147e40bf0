"""Judge templates: validation at load time, safe rendering, built-ins, files and front matter."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.prompts import BUILTIN, TemplateError, companion, extraction_messages, load_template


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Judge {response} against {constraint} for {instrution}", "{instrution}"),
        ("Judge {response} against {constraint} {}", "positional"),
        ("Judge {response} against {constraint} {0}", "positional"),
        ("Judge {response.upper} against {constraint}", "{response.upper}"),
        ("Judge {response} against {constraint:>10}", "format spec"),
        ("Judge {instruction} against {constraint}", "{response}"),
        ("Judge {response} only", "{constraint}"),
        ("Judge {response} {constraint} {constraints}", "not both"),
        ("Judge {response} {constraint} {", "literal braces"),
    ],
)
def test_bad_templates_name_the_problem(text: str, names: str) -> None:
    with pytest.raises(TemplateError, match=None) as e:
        load_template(text)
    assert names in str(e.value)


def test_braces_in_content_are_never_format_fields() -> None:
    t = load_template("I: {instruction}\nR: {response}\nC: {constraint} {{literal}}")
    content = "{instruction} {0} {} {{x}} {response.__class__} }{"
    msgs = t.render(content, content, content)
    assert msgs == [{"role": "user", "content": f"I: {content}\nR: {content}\nC: {content} {{literal}}"}]


def test_builtin_zh_and_en_render() -> None:
    zh = load_template("zh")
    msgs = zh.render("写一首诗", "床前明月光", "使用五言")
    assert msgs[-1]["role"] == "user"
    body = msgs[-1]["content"]
    assert "原始指令：写一首诗" in body and "文本：床前明月光" in body and "约束：使用五言" in body
    assert zh.yes == ("是",) and zh.no == ("否",)
    en = load_template("en")
    body = en.render("Write a poem", "Roses are red", "Rhymes")[-1]["content"]
    assert "Original instruction: Write a poem" in body and "Constraint: Rhymes" in body
    assert "Yes" in en.yes and "No" in en.no


def test_item_templates_list_constraints() -> None:
    t = load_template("zh", granularity="item")
    assert t.name == "zh-item" and t.granularity == "item"
    body = t.render("指令", "回复", ("简洁", "正式"))[-1]["content"]
    assert "1. 简洁\n2. 正式" in body and "[[1]]" in body and "[[0]]" in body
    assert t.candidates == ("[[1]]", "[[0]]")
    assert load_template("en-item", granularity="constraint").name == "en"


def test_template_file_with_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "strict.txt"
    path.write_text(
        "---\nname: strict\nversion: 3\nyes: Y | y\nno: N\nsystem: Be strict.\n---\n"
        "Task {instruction}\nText {response}\nRule {constraint}\nAnswer Y or N.\n",
        encoding="utf-8",
    )
    t = load_template(str(path))
    assert (t.name, t.version, t.yes, t.no, t.language) == ("strict", "3", ("Y", "y"), ("N",), "en")
    msgs = t.render("i", "r", "c")
    assert msgs[0] == {"role": "system", "content": "Be strict."}
    assert msgs[1]["content"].startswith("Task i\nText r\nRule c")


def test_plain_chinese_text_defaults_to_zh_answers() -> None:
    t = load_template("文本：{response}\n约束：{constraint}\n回答是或否。")
    assert t.language == "zh" and t.yes == ("是",)


def test_digest_changes_with_text_and_answers() -> None:
    a = load_template("R {response} C {constraint}")
    b = load_template("R {response} C {constraint}!")
    c = load_template("---\nyes: Sure\n---\nR {response} C {constraint}")
    assert len({a.digest, b.digest, c.digest}) == 3


def test_bad_front_matter_and_unknown_name() -> None:
    with pytest.raises(TemplateError, match="front matter line 2"):
        load_template("---\ncolour: red\n---\n{response} {constraint}")
    with pytest.raises(TemplateError, match="neither a built-in name"):
        load_template("klingon")
    with pytest.raises(TemplateError, match="overlap"):
        load_template("---\nyes: ok\nno: ok\n---\n{response} {constraint}")


def test_extraction_prompt_keeps_braces() -> None:
    msgs = extraction_messages("a {b} c", "the {b}", "zh")
    assert msgs[0]["content"].startswith("文本：a {b} c\n抽取要求：the {b}\n")
    assert set(BUILTIN) == {
        "zh", "zh-item", "en", "en-item", "zh-reason", "zh-item-reason", "en-reason", "en-item-reason",
    }  # fmt: skip


def test_reasoning_builtins_ask_for_a_final_answer_line() -> None:
    en = load_template("en-reason")
    assert en.reasoning and en.granularity == "constraint" and en.candidates == ("[[1]]", "[[0]]")
    body = en.render("Write a poem", "Roses are red", "Rhymes")[-1]["content"]
    assert "Constraint: Rhymes" in body and "step by step" in body
    assert body.rstrip().endswith(
        '"Final answer: [[1]]" if it does, or "Final answer: [[0]]" if it does not.'
    )
    zh = load_template("zh-reason", granularity="item")
    assert (zh.name, zh.reasoning, zh.language) == ("zh-item-reason", True, "zh")
    assert "最终答案：[[1]]" in zh.render("指令", "回复", ("简洁", "正式"))[-1]["content"]
    assert load_template("en-item-reason", granularity="constraint").name == "en-reason"
    assert not any(BUILTIN[n].reasoning for n in ("en", "zh", "en-item", "zh-item"))


def test_default_template_depends_on_mode() -> None:
    assert load_template(None).name == "en"
    assert load_template(None, mode="score", granularity="item").name == "en-item"
    assert load_template(None, mode="generate").name == "en-reason"
    assert load_template(None, "item", "generate").name == "en-item-reason"
    # an explicit choice is kept whatever the mode
    assert load_template("en", mode="generate").name == "en"


def test_companion_keeps_language_and_kind() -> None:
    assert companion(BUILTIN["zh-reason"], "item").name == "zh-item-reason"
    assert companion(BUILTIN["en-item"], "constraint").name == "en"
    assert companion(BUILTIN["en-reason"], "constraint") is BUILTIN["en-reason"]


def test_reasoning_flag_in_front_matter(tmp_path: Path) -> None:
    t = load_template("---\nreasoning: yes\n---\nThink, then judge {response} for {constraint}.")
    assert t.reasoning and t.yes == ("[[1]]",) and t.no == ("[[0]]",)
    plain = load_template("---\nreasoning: no\n---\nThink, then judge {response} for {constraint}.")
    assert not plain.reasoning and plain.yes == ("Yes", "yes")
    assert t.digest != plain.digest
    with pytest.raises(TemplateError, match="'reasoning' must be yes or no"):
        load_template("---\nreasoning: maybe\n---\n{response} {constraint}")
