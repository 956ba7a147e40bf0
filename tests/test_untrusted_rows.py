"""One row's hostile source cannot crash, stall or hang a run in the parent process (issue 16, item 1).

Every row here is the smallest form given in the issue, run through the command the user runs: a function
body the parser cannot build (``return ---...-1``: RecursionError / MemoryError) is that row's one-line
error naming the row (exit 2), or is skipped and counted with ``--skip-invalid``; a 20,000-digit hex literal
(``str()`` of it raises ValueError) is just data. Before the fix each of these printed a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

PROMPT = "Write a poem.\nUse at least 3 lines."
BODIES = {
    "recursion": "-" * 5000 + "1",  # RecursionError during ast construction
    "memory": "-" * 10000 + "1",  # MemoryError in the parser (under the parent's size cap)
}


def _row(rid: str, body: str, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "prompt": PROMPT, "checkers": ["[rule] Number_Lines"],
            "functions": [f"def check_following(instruction, response):\n    return {body}\n"], **extra}


GOOD = "len(response.splitlines()) >= 3"


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


_APP: typer.Typer | None = None


def verif(*args: str) -> Any:
    global _APP
    if _APP is None:
        from verinstruct import cli

        cli._register()
        _APP = cli.app
    return CliRunner().invoke(_APP, list(args))


def _one_error_line(r: Any) -> str:
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_score_names_the_row_and_skip_invalid_goes_on(tmp_path: Path, kind: str) -> None:
    rows = [_row("a", GOOD, response="x\ny\nz"), _row("bad", BODIES[kind], response="x"),
            _row("c", GOOD, response="x")]
    src = _write(tmp_path / "in.jsonl", rows)
    line = _one_error_line(verif("score", "-i", str(src), "--no-llm", "-q"))
    assert "line 2 (id 'bad')" in line and "functions'[0]" in line and ("Error (" in line), line

    out = tmp_path / "out.jsonl"
    r = verif("score", "-i", str(src), "--no-llm", "-q", "--skip-invalid", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "1 invalid line skipped" in r.output
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(d["id"], d["hard"]["passed"]) for d in scored] == [("a", 1), ("c", 0)]


@pytest.mark.parametrize("cmd", [("data", "info"), ("data", "lint"), ("data", "convert"), ("rl", "prepare")])
def test_data_and_rl_commands_name_the_row(tmp_path: Path, cmd: tuple[str, str]) -> None:
    src = _write(tmp_path / "in.jsonl", [_row("a", GOOD), _row("bad", BODIES["recursion"])])
    extra = {"convert": [str(tmp_path / "out")], "prepare": [str(tmp_path / "out.parquet")]}.get(cmd[1], [])
    line = _one_error_line(verif(*cmd, str(src), *extra))
    assert "line 2 (id 'bad')" in line and "RecursionError" in line, line


def test_eval_names_the_row(tmp_path: Path) -> None:
    data = _write(tmp_path / "data.jsonl", [_row("a", GOOD), _row("bad", BODIES["recursion"])])
    resp = _write(tmp_path / "resp.jsonl", [{"id": "a", "response": "x"}, {"id": "bad", "response": "x"}])
    r = verif("eval", "-b", "verinstruct", "--data", str(data), "--responses", str(resp), "--no-llm",
              "--out", str(tmp_path / "ev"))
    assert r.exit_code == 2, r.output
    assert "(id 'bad')" in r.output and "RecursionError" in r.output and "Traceback" not in r.output


def test_huge_hex_literal_is_data(tmp_path: Path) -> None:
    """``0x`` + 20,000 hex digits parses, but ``str()`` of it raises ValueError: it crashed ``verif score``."""
    body = "0x" + "f" * 20000 + " > 0 and len(response.splitlines()) >= 3"
    src = _write(tmp_path / "in.jsonl", [_row("hex", body, response="x\ny\nz")])
    out = tmp_path / "out.jsonl"
    r = verif("score", "-i", str(src), "--no-llm", "-q", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["hard"]["passed"] == 1  # the sandbox ran it: 3 lines, so it passes
    r = verif("data", "info", str(src), "--json")
    assert r.exit_code == 0 and json.loads(r.output)["rows"] == 1, r.output


@pytest.mark.parametrize("body", ["-" * 100000 + "1", "+".join(["1"] * 200000)])
def test_code_over_the_parse_cap_goes_to_the_sandbox(tmp_path: Path, body: str) -> None:
    """Sources over the parent's parse cap (the issue's 100 KB unary chain and 200k-term sum) are not parsed
    in the parent: the row is scored, its check is undecided with the sandbox's reason, the run goes on."""
    src = _write(tmp_path / "in.jsonl", [_row("big", body, response="x"), _row("b", GOOD, response="x\ny\nz")])
    out = tmp_path / "out.jsonl"
    r = verif("score", "-i", str(src), "--no-llm", "-q", "-o", str(out))
    assert r.exit_code == 0, r.output
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(d["id"], d["hard"]["undecided"], d["hard"]["passed"]) for d in scored] == [("big", 1, 0), ("b", 0, 1)]


def test_typed_row_code_is_checked_at_validation(tmp_path: Path) -> None:
    """A typed row's code source goes through the same analysis: the error names the row and the field."""
    row = {"id": "t1", "prompt": "p", "response": "x", "constraints": [
        {"name": "n", "kind": "hard", "text": "t", "check": {"type": "code", "source":
         "def check_following(a, b):\n    return " + BODIES["recursion"] + "\n"}}]}
    src = _write(tmp_path / "in.jsonl", [row])
    line = _one_error_line(verif("score", "-i", str(src), "--no-llm"))
    assert "id 't1'" in line and "constraints[0].check.source" in line and "RecursionError" in line, line


def test_reward_conversion_raises_schema_error() -> None:
    """The RL reward converts VerIF ground truth with ``from_verif``: a SchemaError naming the sample (which
    ``rl`` turns into RewardInputError), never a RecursionError out of the trainer's reward call."""
    from verinstruct.convert import from_verif
    from verinstruct.schema import SchemaError

    with pytest.raises(SchemaError, match=r"sample 's1'.*RecursionError"):
        from_verif(_row("s1", BODIES["recursion"]), "sample 's1'")


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_rl_ground_truth_with_hostile_code_is_the_samples_input_error(kind: str) -> None:
    """What verl's reward function parses (``reward_model.ground_truth``, VerIF's checkers/functions): a row
    whose code breaks the parser is that sample's RewardInputError naming it, not a RecursionError/MemoryError
    escaping into the trainer."""
    from rl.reward import RewardInputError, parse_ground_truth

    row = _row("s1", BODIES[kind])
    gt = json.dumps({"checkers": row["checkers"], "functions": row["functions"]})
    with pytest.raises(RewardInputError, match=r"sample 's1'"):
        parse_ground_truth(gt, "s1", prompt=PROMPT)


def test_each_source_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classification, forwarding detection and text recovery share one parse per function."""
    import ast

    from verinstruct import schema
    from verinstruct.convert import from_verif

    schema.analyse_code.cache_clear()
    calls: list[int] = []
    real = ast.parse
    monkeypatch.setattr(ast, "parse", lambda src, *a, **k: calls.append(1) or real(src, *a, **k))
    from_verif({"id": "p", "prompt": PROMPT, "checkers": ["A", "B"],
                "functions": ["def check_following(i, r):\n    return len(r) > 3 # a\n",
                              "from llm_call import llm_judge\ndef check_following(i, r):\n"
                              "    return llm_judge(i, r, 'Use at least 3 lines.')\n"]})
    assert len(calls) == 2


# ------------------------------------------------------------------------ any text is data (item 2)

SURROGATE_ROWS = {  # JSON's "\ud800" escape decodes to a lone surrogate, which no UTF-8 writer accepts
    "id": ('{"id": "a\\ud800"', "field 'id'"),
    "checker name": ('{"id": "n", "checkers": ["[rule] N\\udc00"]', "field 'checkers[0]'"),
    "prompt": ('{"id": "p", "prompt": "Write\\ud800.\\nUse at least 3 lines."', "field 'prompt'"),
    "response": ('{"id": "r", "response": "x\\ud800"', "field 'response'"),
}


def _surrogate_line(head: str) -> str:
    base = _row("?", GOOD, response="x\ny\nz")
    keys = json.loads(head.replace("\\ud800", "").replace("\\udc00", "") + "}")
    rest = {k: v for k, v in base.items() if k not in keys}
    return head + ", " + json.dumps(rest)[1:] + "\n"


@pytest.mark.parametrize("where", sorted(SURROGATE_ROWS))
def test_lone_surrogate_is_a_row_error_and_the_rest_is_written_and_resumed(tmp_path: Path, where: str) -> None:
    """Before the fix a lone surrogate in an id or checker name passed validation and crashed the writer
    (UnicodeEncodeError): the chunk was lost and every resume crashed again."""
    head, field = SURROGATE_ROWS[where]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(_row("a", GOOD, response="x\ny\nz")) + "\n" + _surrogate_line(head)
                   + json.dumps(_row("c", GOOD, response="x")) + "\n", encoding="utf-8")
    line = _one_error_line(verif("score", "-i", str(src), "--no-llm", "-q"))
    assert line.startswith("error: line 2 (id ") and field in line and "lone surrogate" in line, line
    out = tmp_path / "out.jsonl"
    for _ in range(2):  # the second run resumes the finished output
        r = verif("score", "-i", str(src), "--no-llm", "-q", "--skip-invalid", "-o", str(out))
        assert r.exit_code == 0, r.output
    assert "scored 0 rows (2 already done)" in r.output, r.output
    assert [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()] == ["a", "c"]
    for cmd in (("data", "convert", str(src), str(tmp_path / "conv")),
                ("rl", "prepare", str(src), str(tmp_path / "o.parquet"))):
        if where == "response" and cmd[0] == "rl":
            continue  # rl prepare does not read responses
        line = _one_error_line(verif(*cmd))
        assert "line 2 (id " in line and field in line, line


def test_dumps_line_escapes_what_utf8_cannot_write(tmp_path: Path) -> None:
    """Text produced by dataset code (an exception message) can still hold a lone surrogate: the output line
    is written with JSON escapes and reads back to the same string."""
    from verinstruct.jsonl import dumps_line, read_objects

    p = tmp_path / "o.jsonl"
    with p.open("w", encoding="utf-8") as f:
        f.write(dumps_line({"id": "é", "error": "boom \ud800"}))
        f.write(dumps_line({"id": "ü"}))
    assert [r for _, r in read_objects(p)] == [{"id": "é", "error": "boom \ud800"}, {"id": "ü"}]
    assert "ü" in p.read_text(encoding="utf-8")  # plain lines stay readable UTF-8


def test_terminal_gets_no_raw_control_sequences(tmp_path: Path) -> None:
    """A row id with an ANSI escape and a checker raising one (shown by --details) reached the terminal raw."""
    body = "(_ for _ in ()).throw(ValueError('\\x1b[2J cleared'))"
    src = _write(tmp_path / "in.jsonl", [_row("c\x1b[31mRED\x9b", GOOD, response="x"), _row("e", body, response="x")])
    r = verif("score", "-i", str(src), "--no-llm", "-d")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x9b" not in r.output, r.output
    assert "c\\x1b[31mRED\\x9b" in r.output and "\\x1b[2J cleared" in r.output, r.output


# ------------------------------------------------------------- odd row shapes are row errors, not tracebacks

ODD_ROWS = {  # the two chat prompts crashed every command with AttributeError before; the typed row's
    # non-JSON source was already caught by dataset.from_row and stays covered here
    "chat prompt with a bare string": ({"id": 1, "prompt": [{"role": "user", "content": "hi"}, "s"], "checkers": [],
                                        "functions": []}, "field 'prompt'[1]"),
    "verl row, chat prompt with a bare string": ({"prompt": [{"role": "user", "content": "hi"}, "s"],
                                                  "reward_model": {"ground_truth": {"checkers": [], "functions": []}},
                                                  "extra_info": {"id": 3}}, "field 'prompt'[1]"),
    "typed row, source not JSON": ({"id": 1, "prompt": "p", "constraints": [], "source": "{"},
                                   "field 'source' is not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(ODD_ROWS))
def test_odd_row_shapes_are_one_line_row_errors(tmp_path: Path, name: str) -> None:
    row, field = ODD_ROWS[name]
    src = _write(tmp_path / "in.jsonl", [_row("a", GOOD), row])
    line = _one_error_line(verif("data", "info", str(src)))
    assert "line 2" in line and field in line, line
    line = _one_error_line(verif("score", "-i", str(_write(tmp_path / "r.jsonl", [{**row, "response": "x"}])),
                                 "--no-llm"))
    assert "line 1" in line and field in line, line


def test_any_converter_failure_is_a_schema_error_naming_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The net under validation: a failure nobody anticipated (here a checker lookup raising KeyError) is the
    row's SchemaError, so commands report or skip it and the RL reward turns it into its input error."""
    from verinstruct import convert
    from verinstruct.schema import SchemaError

    def boom(*a: Any, **k: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(convert, "recover_texts", boom)
    with pytest.raises(SchemaError, match=r"^sample 's9' \(id 's9'\): cannot be read \(KeyError: 'surprise'\)"):
        convert.from_verif(_row("s9", GOOD), "sample 's9'")


def test_a_row_parses_at_most_its_budget_of_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing costs ~5 us a character for f-strings (quadratic in their length): past MAX_PARSED_PER_ROW of a
    row's code, functions are classified by a linear scan, which still finds their llm_* calls."""
    import ast

    from verinstruct import convert, schema

    schema.analyse_code.cache_clear()
    parsed: list[int] = []
    real = ast.parse
    monkeypatch.setattr(ast, "parse", lambda src, *a, **k: parsed.append(len(src)) or real(src, *a, **k))
    fstring = "def check_following(instruction, response):\n    x = {k}\n    return f'" + "{x}a" * 3900 + "' in response\n"
    llm = ("from llm_call import llm_judge\ndef check_following(instruction, response):\n"
           "    return llm_judge(instruction, response, 'Be kind.') and len(response) > 1  # " + "#" * 15000 + "\n")
    funcs = [fstring.replace("{k}", str(k)) for k in range(8)] + [llm]
    inst = convert.from_verif({"id": "b", "prompt": PROMPT, "checkers": [f"C{k}" for k in range(9)], "functions": funcs})
    assert sum(parsed) <= convert.MAX_PARSED_PER_ROW and len(parsed) < 9, parsed
    assert [c.kind for c in inst.constraints] == ["hard"] * 8 + ["soft"]
