"""Judge prompt templates: VerIF's Chinese prompts (in meaning), English equivalents and user templates.

A template is a user-message text with named placeholders ``{instruction}``, ``{response}`` and either
``{constraint}`` (one constraint per call) or ``{constraints}`` (all of an item's constraints at once).
Placeholders are checked when the template is loaded (``string.Formatter`` parsing), so a typo fails
early and names the field. Content is substituted as *values* of one ``str.format_map`` call, so braces in
instructions or responses are never read as format fields.

Each template declares its answer strings for ``score`` mode (``yes``/``no``: the first is the canonical
form, the others are alternative surface forms whose probabilities are summed) and a name + version that
go into the cache key together with a hash of the text.

Two kinds of built-ins (``BUILTIN``), in English and Chinese, per constraint or per item:

* answer-only (``en``, ``zh``, ``en-item``, ``zh-item``): the answer comes first (Yes/No, 是/否, or
  VerIF's ``[[1]]``/``[[0]]`` at the start). The default for ``score`` mode, which reads the answer
  tokens right after the prompt.
* reasoning (``en-reason``, ``zh-reason``, ``en-item-reason``, ``zh-item-reason``, ``reasoning: yes``):
  brief step-by-step reasoning, then a last line ``Final answer: [[1]]`` / ``[[0]]``
  (``最终答案：[[1]]``). The default for ``generate`` mode; parsed with
  :func:`verifier.parsing.parse_verdict` (``reasoning=True``: the last final-answer line / last mark wins).
  Score mode refuses them, since the answer is not meant to come right after the prompt.

Template files are plain text with an optional front matter block of ``key: value`` lines::

    ---
    name: strict-en
    version: 2
    yes: Yes | yes
    no: No | no
    system: You are a strict grader.
    reasoning: no
    ---
    Does the text satisfy the constraint? ... {instruction} ... {response} ... {constraint}
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier.backends.base import Messages

#: placeholders a judge template may use
KNOWN_FIELDS = ("instruction", "response", "constraint", "constraints")
_CJK = re.compile(r"[\u4e00-\u9fff]")


class TemplateError(ValueError):
    """A judge template is malformed (unknown or missing placeholder, bad front matter, ...)."""


@dataclass(frozen=True, slots=True)
class Template:
    """A validated judge prompt. ``granularity`` is "constraint" or "item", from its placeholders."""

    name: str
    version: str
    text: str
    yes: tuple[str, ...]
    no: tuple[str, ...]
    system: str | None = None
    language: str = "en"
    granularity: str = "constraint"
    #: the model reasons first and gives its verdict at the end (generate mode only)
    reasoning: bool = False
    #: the text used instead of ``text`` when the instruction is empty (a benchmark's judge that leaves out its
    #: "Input:" block when there is no input, as InFoBench's does); same placeholders minus ``instruction``
    no_instruction_text: str | None = None

    def __post_init__(self) -> None:
        if not self.yes or not self.no:
            raise TemplateError(
                f"template {self.name!r}: needs at least one 'yes' and one 'no' answer string"
            )
        if set(self.yes) & set(self.no):
            raise TemplateError(f"template {self.name!r}: answer strings overlap between yes and no")
        fields = validate_text(self.text, where=f"template {self.name!r}")
        object.__setattr__(self, "granularity", "item" if "constraints" in fields else "constraint")
        if self.no_instruction_text is not None:
            alt = validate_text(self.no_instruction_text.replace("{response}", "{response}{instruction}"),
                                where=f"template {self.name!r} (no-instruction text)")
            if (alt - {"instruction"}) != (fields - {"instruction"}):
                raise TemplateError(f"template {self.name!r}: its no-instruction text must use the same "
                                    "placeholders as its text, minus {instruction}")

    @property
    def digest(self) -> str:
        """Hash of everything that changes what the model sees or how it is scored (for cache keys)."""
        h = hashlib.sha256()
        parts = [self.text, self.system or "", "\x1f".join(self.yes), "\x1f".join(self.no)]
        if self.reasoning:  # changes how the output is parsed; answer-only digests stay as before
            parts.append("reasoning")
        if self.no_instruction_text is not None:
            parts.append(self.no_instruction_text)
        for part in parts:
            h.update(part.encode())
            h.update(b"\x1e")
        return h.hexdigest()[:16]

    @property
    def candidates(self) -> tuple[str, ...]:
        """All answer strings to score: yes forms then no forms."""
        return self.yes + self.no

    def render(self, instruction: str, response: str, constraints: str | tuple[str, ...]) -> Messages:
        """Fill the placeholders and return chat messages (content is never parsed as a format string)."""
        if self.granularity == "item":
            items = (constraints,) if isinstance(constraints, str) else tuple(constraints)
            values = {"constraints": format_constraint_list(items)}
        else:
            if not isinstance(constraints, str):
                if len(constraints) != 1:
                    raise ValueError(f"template {self.name!r} judges one constraint, got {len(constraints)}")
                constraints = constraints[0]
            values = {"constraint": constraints}
        values.update(instruction=instruction, response=response)
        text = self.no_instruction_text if self.no_instruction_text is not None and not instruction else self.text
        content = text.format_map(values)
        messages: Messages = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": content})
        return messages


def format_constraint_list(constraints: tuple[str, ...]) -> str:
    if len(constraints) == 1:
        return constraints[0]
    return "\n".join(f"{i}. {c}" for i, c in enumerate(constraints, 1))


def validate_text(text: str, *, where: str = "template") -> set[str]:
    """Return the placeholder names in ``text``; raise TemplateError naming any problem."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:  # unbalanced braces
        raise TemplateError(f"{where}: {e} (write literal braces as '{{{{' and '}}}}')") from None
    fields: set[str] = set()
    for _, field, spec, conv in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise TemplateError(
                f"{where}: positional placeholder '{{{field}}}' is not allowed; use named placeholders "
                f"{', '.join('{' + f + '}' for f in KNOWN_FIELDS)}"
            )
        if field not in KNOWN_FIELDS:
            raise TemplateError(
                f"{where}: unknown placeholder '{{{field}}}' (allowed: "
                f"{', '.join('{' + f + '}' for f in KNOWN_FIELDS)}; write literal braces as '{{{{' and '}}}}')"
            )
        if spec or conv:
            raise TemplateError(
                f"{where}: placeholder '{{{field}}}' must not have a format spec or conversion"
            )
        fields.add(field)
    if "response" not in fields:
        raise TemplateError(f"{where}: missing required placeholder '{{response}}'")
    if "constraint" in fields and "constraints" in fields:
        raise TemplateError(f"{where}: use either '{{constraint}}' or '{{constraints}}', not both")
    if "constraint" not in fields and "constraints" not in fields:
        raise TemplateError(
            f"{where}: missing required placeholder '{{constraint}}' (one constraint per call) "
            "or '{constraints}' (all constraints at once)"
        )
    return fields


# --- built-in templates ----------------------------------------------------------------------------

_ZH_CONSTRAINT = (
    "请判断下面的文本是否满足给定的约束，只回答“是”或“否”，不要输出其他内容。\n"
    "原始指令：{instruction}\n"
    "文本：{response}\n"
    "约束：{constraint}\n"
    "原始指令说明了基本的任务信息，给定的约束说明了文本应当满足的一个具体约束。"
    "请只判断文本是否满足这一个约束，只回答“是”或“否”，不要输出其他内容。"
)

_ZH_ITEM = (
    "请判断给定的回复是否遵循了指令中的约束，例如长度、风格、格式等方面的约束。\n"
    "[指令]\n{instruction}\n"
    "[回复]\n{response}\n"
    "[约束]\n{constraints}\n"
    "请逐条检查上述约束。请在回答的最开始用[[score]]的格式给出分数："
    "如果遵循了所有约束，输出[[1]]，否则输出[[0]]。"
)

_EN_CONSTRAINT = (
    "Decide whether the text below satisfies the given constraint. Answer only Yes or No.\n"
    "Original instruction: {instruction}\n"
    "Text: {response}\n"
    "Constraint: {constraint}\n"
    "The original instruction gives the task; the constraint is one specific requirement the text "
    "should meet. Judge only whether the text satisfies this one constraint. Answer only Yes or No."
)

_EN_ITEM = (
    "Decide whether the given response follows the constraints in the instruction, such as length, "
    "style and format constraints.\n"
    "[Instruction]\n{instruction}\n"
    "[Response]\n{response}\n"
    "[Constraints]\n{constraints}\n"
    "Check each constraint. Begin your answer with the score in the format [[score]]: "
    "output [[1]] if the response follows all the constraints, otherwise output [[0]]."
)

_ZH_REASON = (
    "请先简要地逐步分析（几句话即可），最后单独一行给出最终答案："
    "如果满足，写“最终答案：[[1]]”，否则写“最终答案：[[0]]”。"
)

_ZH_CONSTRAINT_REASON = (
    "请判断下面的文本是否满足给定的约束。\n"
    "原始指令：{instruction}\n"
    "文本：{response}\n"
    "约束：{constraint}\n"
    "原始指令说明了基本的任务信息，给定的约束说明了文本应当满足的一个具体约束。"
    "请只判断文本是否满足这一个约束。" + _ZH_REASON
)

_ZH_ITEM_REASON = (
    "请判断给定的回复是否遵循了指令中的约束，例如长度、风格、格式等方面的约束。\n"
    "[指令]\n{instruction}\n"
    "[回复]\n{response}\n"
    "[约束]\n{constraints}\n"
    "请逐条检查上述约束，只有全部遵循才算满足。" + _ZH_REASON
)

_EN_REASON = (
    "First reason briefly, step by step (a few sentences). Then end with a last line that is exactly "
    '"Final answer: [[1]]" if it does, or "Final answer: [[0]]" if it does not.'
)

_EN_CONSTRAINT_REASON = (
    "Decide whether the text below satisfies the given constraint.\n"
    "Original instruction: {instruction}\n"
    "Text: {response}\n"
    "Constraint: {constraint}\n"
    "The original instruction gives the task; the constraint is one specific requirement the text "
    "should meet. Judge only whether the text satisfies this one constraint. " + _EN_REASON
)

_EN_ITEM_REASON = (
    "Decide whether the given response follows all the constraints in the instruction, such as length, "
    "style and format constraints.\n"
    "[Instruction]\n{instruction}\n"
    "[Response]\n{response}\n"
    "[Constraints]\n{constraints}\n"
    "Check each constraint; the response follows them only if it follows every one. " + _EN_REASON
)

_MARKS = (("[[1]]",), ("[[0]]",))

BUILTIN: dict[str, Template] = {
    "zh": Template("zh", "1", _ZH_CONSTRAINT, ("是",), ("否",), language="zh"),
    "zh-item": Template("zh-item", "1", _ZH_ITEM, ("[[1]]",), ("[[0]]",), language="zh"),
    "en": Template("en", "1", _EN_CONSTRAINT, ("Yes", "yes"), ("No", "no"), language="en"),
    "en-item": Template("en-item", "1", _EN_ITEM, ("[[1]]",), ("[[0]]",), language="en"),
    "zh-reason": Template("zh-reason", "1", _ZH_CONSTRAINT_REASON, *_MARKS, language="zh", reasoning=True),
    "zh-item-reason": Template(
        "zh-item-reason", "1", _ZH_ITEM_REASON, *_MARKS, language="zh", reasoning=True
    ),
    "en-reason": Template("en-reason", "1", _EN_CONSTRAINT_REASON, *_MARKS, language="en", reasoning=True),
    "en-item-reason": Template(
        "en-item-reason", "1", _EN_ITEM_REASON, *_MARKS, language="en", reasoning=True
    ),
}


# ------------------------------------------------------------------------------ benchmarks' own judges

#: InFoBench's judge instruction, verbatim from the authors' ``evaluation.py`` (qinyiwei/InfoBench, MIT licence,
#: commit 557fba0): its typos and its closing ``'''`` are part of what GPT-4 was shown for the published numbers
INFOBENCH_SYS_MSG = (
    "Based on the provided Input (if any) and Generated Text, answer the ensuing Questions with either a YES or NO "
    "choice. Your selection should be based on your judgment as well as the following rules:\n\n- YES: Select "
    "'YES' if the generated text entirely fulfills the condition specified in the question. However, note that even "
    "minor inaccuracies exclude the text from receiving a 'YES' rating. As an illustration. consider a question "
    "that asks. \"Does each sentence in the generated text use a second person?\u201d If even one sentence does not "
    "use the second person, the answer should NOT be 'YES'. To qualify for a 'YES' rating, the generated text must "
    "be entirely accurate and relevant to the question\n\n- NO: Opt for 'NO' if the generated text fails to meet "
    "the question's requirements or provides no information that could be utilized to answer the question. For "
    "instance, if the question asks. \"Is the second sentence in the generated text a compound sentence?\" and the "
    "generated text only has one sentence. it offers no relevant information to answer the question. "
    "Consequently, the answer should be 'NO'.'''"
)

#: Templates a benchmark declares as its own judge (``Benchmark.judge_template``). Each renders the first message
#: the authors' judge sends for a question, byte for byte; ``{instruction}`` is what their judge sees of the task.
BENCHMARK_TEMPLATES: dict[str, Template] = {
    "infobench": Template(
        "infobench", "1",
        INFOBENCH_SYS_MSG + '\n\nInput:\n"{instruction}"\n\nGenerated Text:\n"{response}"\n\nQuestion:\n{constraint}\n',
        ("YES", "Yes", "yes"), ("NO", "No", "no"), language="en",
        no_instruction_text=INFOBENCH_SYS_MSG + '\n\nGenerated Text:\n"{response}"\n\nQuestion:\n{constraint}\n',
    ),
}


def infobench_answer(reply: str) -> bool | None:
    """InFoBench's reading of a judge reply (their ``evaluation.py``): starts with "yes" / "no" (any case; a prefix,
    so "Not ..." reads as no), else "YES" without "NO" (or the reverse) anywhere in it; otherwise None, where the
    authors stop asking that instance's remaining questions."""
    low = reply.lower()
    if low.startswith("yes"):
        return True
    if low.startswith("no"):
        return False
    if ("YES" in reply) != ("NO" in reply):
        return "YES" in reply
    return None


def infobench_conversation(input_text: str, output: str, questions: list[str], replies: list[str]) -> Messages:
    """The conversation InFoBench's judge sees before answering question ``len(replies)``: the first question inside
    the full first message (rubric, input, generated text), each later one alone (``"{question}\n"``), with the
    judge's own earlier replies in between."""
    first = BENCHMARK_TEMPLATES["infobench"].render(input_text, output, questions[0])
    messages: Messages = list(first)
    for k, reply in enumerate(replies):
        messages.append({"role": "assistant", "content": reply})
        messages.append({"role": "user", "content": f"{questions[k + 1]}\n"})
    return messages


#: how FollowBench's judge prompt names an added constraint, per category (their ``gpt4_based_evaluation.py``)
FOLLOWBENCH_KINDS = {
    "content": "content constraint",
    "situation": "situation constraint (information to describe a specific situation/background)",
    "style": "style constraint",
    "format": "format constraint",
    "mixed": "constraint",
}


def followbench_judge_prompt(category: str, path: Sequence[str], answer: str) -> str:
    """FollowBench's judge prompt for a level-n instruction (``path``: the instructions of levels 0..n), as the
    authors' ``<category>_evaluation_prompt`` builds it (YJiangcm/FollowBench, Apache-2.0, commit 6278f4c): the
    constraint-evolution path, the answer, and a request for a Python list of n YES/NO verdicts on its last line."""
    n = len(path) - 1
    if n < 1:
        raise ValueError("a FollowBench judge prompt needs levels 0..n with n >= 1")
    kind = FOLLOWBENCH_KINDS[category]
    if n == 1:
        return (f"Given an initial instruction, we add one {kind} and obtain the final instruction with 1 additional "
                f"constraint.\n\n#Initial Instruction#\n{path[0]}\n\n#Initial Instruction + 1 constraint#\n{path[1]}"
                f"\n\n#Answer of Initial Instruction + 1 constraint#\n{answer}\n\n#System#\n1) Please identify the 1 "
                "added constraint.\n2) Please descriminate if the #Answer of Initial Instruction + 1 constraint# "
                "satisfies the 1 added constraint.\n3) In the final line, only output a Python LIST with 1 element "
                "('YES' or 'NO') indicating whether the answer satisfies the 1 added constraint.")
    steps = "".join(f"#Initial Instruction + {i} constraint{'s' if i > 1 else ''}#\n{path[i]}\n\n"
                    for i in range(1, n + 1))
    return (f"Given an initial instruction, we add one {kind} per time and obtain the final instruction with {n} "
            f"additional constraints.\n\n#Initial Instruction#\n{path[0]}\n\n{steps}"
            f"#Answer of Initial Instruction + {n} constraints#\n{answer}\n\n#System#\n1) Please identify all {n} "
            f"added constraints.\n2) For the {n} added constraints, discriminate if the #Answer of Initial "
            f"Instruction + {n} constraints# satisfies each constraint.\n3) In the final line, only output a Python "
            f"LIST with {n} elements ('YES' or 'NO') indicating whether the answer satisfies each constraint.")


#: list elements FollowBench's reader counts as "not satisfied" (anything else but YES makes the reply invalid)
FOLLOWBENCH_NOT_YES = ("NO", "PARTIAL", "MAYBE", "UNKNOWN", "N/A")


def followbench_verdicts(reply: str, level: int) -> list[bool] | None:
    """FollowBench's reading of a judge reply (their ``paring_discriminative_generation``): the last line after
    stripping backticks; level 1: "YES" in it, else "NO" in it; level n: the first ``[...]`` on it, a list of n
    items, each YES (satisfied) or NO/PARTIAL/MAYBE/UNKNOWN/N/A (not). None where their code logs "You must
    manually fix the evaluation" (and counts -1)."""
    import ast

    last = reply.strip("`").strip().split("\n")[-1]
    if level == 1:
        return [True] if "YES" in last else [False] if "NO" in last else None
    found = re.search(r"\[.*\]", last)
    if not found:
        return None
    try:
        items = ast.literal_eval(found.group())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(items, (list, tuple)) or len(items) != level:
        return None
    if not all(isinstance(x, str) and (x == "YES" or x in FOLLOWBENCH_NOT_YES) for x in items):
        return None
    return [x == "YES" for x in items]


def builtin_name(language: str, granularity: str, reasoning: bool) -> str:
    """Name of the built-in for a language ("zh" or "en"; others map to "en"), granularity and kind."""
    lang = language if language in ("zh", "en") else "en"
    return lang + ("-item" if granularity == "item" else "") + ("-reason" if reasoning else "")


def default_template_name(mode: str, language: str = "en", granularity: str = "constraint") -> str:
    """The built-in used when no template is given: answer-only for ``score``, reasoning for ``generate``."""
    return builtin_name(language, granularity, reasoning=mode == "generate")


#: VerIF's extraction prompt (llm_extract), per language
EXTRACT_PROMPTS = {
    "zh": "文本：{response}\n抽取要求：{requirement}\n请直接输出文本中的原文信息，不要改写，不要添加任何额外的信息。",
    "en": (
        "Text: {response}\nWhat to extract: {requirement}\nOutput the original wording from the text "
        "directly; do not rewrite it and do not add any extra information."
    ),
}


def extraction_messages(response: str, requirement: str, language: str = "zh") -> Messages:
    text = EXTRACT_PROMPTS.get(language, EXTRACT_PROMPTS["en"])
    return [{"role": "user", "content": text.format_map({"response": response, "requirement": requirement})}]


_META_KEYS = ("name", "version", "yes", "no", "system", "language", "reasoning")
_BOOL = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def _parse_front_matter(text: str, where: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        raise TemplateError(f"{where}: front matter starts with '---' but has no closing '---' line")
    meta: dict[str, str] = {}
    for n, line in enumerate(text[4:end].splitlines(), 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or key not in _META_KEYS:
            raise TemplateError(
                f"{where}: front matter line {n} {line!r}: expected 'key: value' with key in "
                f"{', '.join(_META_KEYS)}"
            )
        meta[key] = value.strip()
    return meta, text[end + 5 :]


def template_from_text(text: str, *, name: str | None = None, where: str = "template") -> Template:
    """Build a template from text with optional front matter; answers default by language (是/否 or Yes/No)."""
    meta, body = _parse_front_matter(text, where)
    body = body.strip("\n")
    language = meta.get("language") or ("zh" if _CJK.search(body) else "en")
    validate_text(body, where=where)
    granularity = "item" if "{constraints}" in body else "constraint"
    reasoning = False
    if "reasoning" in meta:
        flag = meta["reasoning"].lower()
        if flag not in _BOOL:
            raise TemplateError(
                f"{where}: front matter 'reasoning' must be yes or no, got {meta['reasoning']!r}"
            )
        reasoning = _BOOL[flag]
    default = BUILTIN[builtin_name(language, granularity, reasoning)]

    def answers(key: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
        if key not in meta:
            return fallback
        forms = tuple(s.strip() for s in meta[key].split("|") if s.strip())
        if not forms:
            raise TemplateError(f"{where}: front matter '{key}' is empty")
        return forms

    return Template(
        name=meta.get("name") or name or "custom",
        version=meta.get("version") or "1",
        text=body,
        yes=answers("yes", default.yes),
        no=answers("no", default.no),
        system=meta.get("system") or None,
        language=language,
        reasoning=reasoning,
    )


def load_template(
    spec: str | Path | Template | None, granularity: str = "constraint", mode: str = "score"
) -> Template:
    """Resolve a template: a built-in name (see ``BUILTIN``), a file path or literal template text.

    ``None`` picks the default for ``mode`` (:func:`default_template_name`: "en" for score, "en-reason"
    for generate). A built-in name picks the variant of the same language and kind that matches
    ``granularity`` ("en" + "item" -> "en-item", "zh-reason" + "item" -> "zh-item-reason").
    """
    if isinstance(spec, Template):
        return spec
    if isinstance(spec, str) and spec in BENCHMARK_TEMPLATES:
        return BENCHMARK_TEMPLATES[spec] if granularity == "constraint" else companion(BENCHMARK_TEMPLATES[spec],
                                                                                      granularity)
    if spec is None:
        spec = default_template_name(mode, "en", granularity)
    if isinstance(spec, str) and spec in BUILTIN:
        t = BUILTIN[spec]
        return BUILTIN[builtin_name(t.language, granularity, t.reasoning)]
    path = Path(spec)
    is_file = False
    try:
        is_file = "\n" not in str(spec) and "{" not in str(spec) and path.is_file()
    except OSError:
        is_file = False
    if is_file:
        return template_from_text(
            path.read_text(encoding="utf-8"), name=path.stem, where=f"template file {str(path)!r}"
        )
    spec = str(spec)
    if "{" not in spec:
        raise TemplateError(
            f"template {spec!r} is neither a built-in name ({', '.join([*BUILTIN, *BENCHMARK_TEMPLATES])}), an existing file, "
            "nor template text with placeholders"
        )
    return template_from_text(spec, name="inline")


def companion(template: Template, granularity: str) -> Template:
    """The template to use for ``granularity`` given a chosen one: itself, or the built-in of its
    language and kind (answer-only or reasoning)."""
    if template.granularity == granularity:
        return template
    return BUILTIN[builtin_name(template.language, granularity, template.reasoning)]
