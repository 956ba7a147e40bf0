"""Lint: every broken fixture checker lands in its class; good ones do not."""

from __future__ import annotations

import json
from pathlib import Path

from checkers.base import Verdict
from checkers.sandbox import Sandbox, SandboxLimits
from verinstruct.convert import from_verif
from verinstruct.lint import CLASSES, classify, lint, lint_class, summarize

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
ROWS = [json.loads(line) for line in (FIXTURES / "verinstruct_fixtures.jsonl").read_text().splitlines()]
TIMEOUT_ROW = json.loads((FIXTURES / "timeout.jsonl").read_text())

EXPECTED = {
    ("vi-006", "Sentence_Count"): "compile",
    ("vi-007", "Keyword_Frequency"): "raises",
    ("vi-008", "Line_Count"): "no_check_following",
    ("vi-009", "Word_Limit"): "non_bool",
    ("vi-010", "Readability"): "import_error",
    ("vi-011", "Response_Length"): "constant",
}


def test_lint_classifies_the_fixtures() -> None:
    insts = [from_verif(r) for r in ROWS]
    with Sandbox(workers=2) as box:
        findings = lint(insts, sandbox=box)
    n_code = sum(1 for i in insts for c in i.constraints if c.code)  # code checks and llm checks recognised in code
    assert len(findings) == n_code
    got = {(f.id, f.constraint): f.cls for f in findings}
    for key, cls in EXPECTED.items():
        assert got[key] == cls, key
    # every checker that needs the LLM is counted as such (not broken); everything else is ok
    needs = {(str(r["id"]), c.name) for r in ROWS for c in from_verif(r).constraints if c.needs_llm and c.code}
    assert {k for k, v in got.items() if v == "needs_llm"} == needs
    assert {k for k, v in got.items() if v not in ("ok", "needs_llm")} == set(EXPECTED)
    s = summarize(findings, worst=3)
    assert s["broken"] == len(EXPECTED) and s["needs_llm"] == len(needs)
    assert sum(s["classes"].values()) == n_code and list(s["classes"]) == list(CLASSES)
    assert [w["class"] for w in s["worst"]] == ["compile", "no_check_following", "import_error"]
    assert s["worst"][0]["message"].startswith("syntax error")


def test_lint_reports_timeouts() -> None:
    with Sandbox(workers=2, limits=SandboxLimits(wall_timeout_s=0.3, cpu_seconds=1)) as box:
        (f,) = lint([from_verif(TIMEOUT_ROW)], sandbox=box)
    assert f.cls == "timeout" and f.message.startswith("timeout")


def test_classify_rules() -> None:
    ok, no = Verdict(True), Verdict(False)
    assert classify([ok, no, ok]) == ("ok", "")
    assert classify([ok, ok, ok])[0] == "constant"
    assert classify([ok, Verdict.undecided("raised ValueError: x"), no]) == ("raises", "raised ValueError: x")
    # needs-LLM wins over a raise on another probe (the code cannot be judged without the verifier)
    assert classify([Verdict.undecided("raised KeyError: k"), Verdict.undecided("needs LLM verifier: llm_judge")])[0] \
        == "needs_llm"
    assert lint_class("bad return: returned int 1, expected bool") == "non_bool"
    assert lint_class("timeout: used more than 2s CPU time") == "timeout"
    assert lint_class("worker crashed: signal 9") == "raises"
