"""Find broken dataset checkers: run every code constraint in the sandbox against probe responses.

Each code constraint is run (in ONE ``Sandbox.run``) on a fixed set of probes (empty, a short sentence,
long multi-paragraph text, bullets, JSON, Chinese, ...) plus its row's own prompt and, when the row has one,
its ``response``. It is then classified by the first matching class, in this order:

``compile`` (does not compile), ``no_check_following``, ``import_error`` (imports a missing module),
``timeout`` (wall or CPU limit), ``needs_llm`` (calls llm_* — not broken, counted apart), ``raises`` (on some
probe; also crashes and memory limits), ``non_bool`` (returns something other than a bool),
``constant`` (the same answer on every probe: likely a checker that checks nothing), ``ok``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from checkers.base import Verdict
from verinstruct.schema import Instance

if TYPE_CHECKING:
    from checkers.sandbox import Sandbox

PROBES: tuple[tuple[str, str], ...] = (
    ("empty", ""),
    ("short", "Hello world."),
    ("long", "\n\n".join(
        f"Paragraph {k} talks about the history of tea, its trade routes, and how people in many countries "
        f"enjoy it today. It is written in plain English, with several sentences. Some are short. Others "
        f"run on for a while, listing facts, dates such as 1610 and 1773, and names like Darjeeling."
        for k in range(1, 6))),
    ("medium", "A good habit is easy to start and hard to break. Begin with something small, such as a short walk "
               "after lunch or ten minutes of reading before bed. Track it on a calendar, reward yourself at the end "
               "of each week, and forgive the days you miss. After a month the habit feels natural."),
    ("bullets", "Here are the points:\n" + "\n".join(f"- Point {k} about planning a trip" for k in range(1, 9))
                + "\n* A starred item\n* Another starred item"),
    ("numbered", "1. Wake up early.\n2. Drink water.\n3. Go for a walk.\n4. Read a book.\n5. Sleep well."),
    ("json", '{"name": "Ada", "age": 30, "skills": ["math", "poetry"], "active": true}'),
    ("chinese", "春节是中国最重要的传统节日。人们回家团圆，吃年夜饭，放烟花。\n\n孩子们收到压岁钱，非常开心。"),
    ("upper", "THIS IS AN ANSWER WRITTEN ENTIRELY IN CAPITAL LETTERS!"),
    ("lower_commas", "this answer is all lowercase, with commas, and no capital letters at all."),
    ("markdown", "<<A Title>>\n\n## Section 1\nSome *highlighted text* and **bold text**.\n\n## Section 2\n"
                 "| a | b |\n|---|---|\n| 1 | 2 |\n\nP.S. Thanks for reading [name]."),
    ("quoted", '"A whole response wrapped in double quotes. Is there anything else I can help with?"'),
    ("two_responses", "First answer here.\n******\nSecond, different answer here."),
)

CLASSES: tuple[str, ...] = ("compile", "no_check_following", "import_error", "timeout", "needs_llm", "raises",
                            "non_bool", "constant", "ok")
BROKEN: frozenset[str] = frozenset(CLASSES) - {"needs_llm", "ok"}
#: sandbox error class (``checkers.sandbox.error_class``) -> lint class
_SANDBOX_TO_LINT: dict[str, str] = {
    "syntax error": "compile",
    "source too large": "compile",
    "no check_following": "no_check_following",
    "import error": "import_error",
    "timeout": "timeout",
    "needs LLM verifier": "needs_llm",
    "bad return": "non_bool",
}


@dataclass(frozen=True, slots=True)
class LintFinding:
    id: str
    constraint: str
    index: int
    cls: str
    message: str
    #: verdict per probe: True / False / None (undecided)
    answers: tuple[bool | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class"] = d.pop("cls")
        d["answers"] = list(self.answers)
        return d


def lint_class(error: str | None) -> str:
    """Map a sandbox error string to a lint class by its error class (``checkers.sandbox.error_class``);
    anything else "raises" (raised, exited, memory limit, worker crashed, llm error ...)."""
    from checkers.sandbox import error_class

    return _SANDBOX_TO_LINT.get(error_class(error or "") or "", "raises")


def classify(verdicts: Sequence[Verdict]) -> tuple[str, str]:
    """(class, message) for one checker from its verdicts on all probes."""
    errors = [v.error or "" for v in verdicts if v.passed is None]
    classes = [lint_class(e) for e in errors]
    for cls in CLASSES[:7]:
        if cls in classes:
            return cls, errors[classes.index(cls)]
    if errors:
        return "raises", errors[0]
    answers = {v.passed for v in verdicts}
    if len(verdicts) > 1 and len(answers) == 1:
        return "constant", f"returns {verdicts[0].passed} on all {len(verdicts)} probes"
    return "ok", ""


def probes_for(inst: Instance, response: str | None = None) -> list[tuple[str, str]]:
    out = list(PROBES) + [("own prompt", inst.prompt)]
    extra = response if response is not None else (inst.source.get("extra") or {}).get("response")
    if isinstance(extra, str):
        out.append(("own response", extra))
    return out


def _literal_probe(source: str) -> str:
    """The code's own string literals, one per line: reaches checks like startswith('Dear Sir')."""
    from verinstruct.schema import analyse_code

    return "\n".join(dict.fromkeys(analyse_code(source).strings))


def lint(instances: Sequence[Instance], *, sandbox: Sandbox | None = None,
         responses: Sequence[str | None] | None = None) -> list[LintFinding]:
    """One finding per dataset function (class ``ok`` included), in dataset order: code checks, and llm
    checks recognised in code (they lint as the code they came from)."""
    from checkers.sandbox import CodeCall, Sandbox
    from verinstruct.scoring import row_key

    calls, spans = [], []
    for n, inst in enumerate(instances):
        probes = probes_for(inst, responses[n] if responses is not None else None)
        for j, c in enumerate(inst.constraints):
            if not c.code:
                continue
            start = len(calls)
            own = _literal_probe(c.code)
            row = row_key(inst.id, inst.instruction, [k.code for k in inst.constraints if k.code])
            for _, text in probes + ([("code literals", own)] if own else []):
                calls.append(CodeCall(c.code, inst.instruction, text, row=row))
            spans.append((inst, j, start, len(calls)))
    if not calls:
        return []
    if sandbox is None:
        with Sandbox() as box:
            results = box.run(calls)
    else:
        results = sandbox.run(calls)
    findings = []
    for inst, j, a, b in spans:
        vs = results[a:b]
        cls, msg = classify(vs)
        findings.append(LintFinding(inst.id, inst.constraints[j].name, j, cls, msg, tuple(v.passed for v in vs)))
    return findings


def summarize(findings: Sequence[LintFinding], worst: int = 20) -> dict[str, Any]:
    counts = Counter(f.cls for f in findings)
    broken = [f for f in findings if f.cls in BROKEN]
    order = {c: k for k, c in enumerate(CLASSES)}
    broken.sort(key=lambda f: (order[f.cls], f.id, f.index))
    return {
        "checked": len(findings),
        "classes": {c: counts.get(c, 0) for c in CLASSES},
        "broken": len(broken),
        "needs_llm": counts.get("needs_llm", 0),
        "ok": counts.get("ok", 0),
        "worst": [f.to_dict() for f in broken[:worst]],
    }
