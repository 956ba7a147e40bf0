"""`verif data info|convert|lint` on the fixtures, IFEval input and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import verinstruct
from verinstruct.card import read_card_metadata
from verinstruct.cli import data as data_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
RAW = FIXTURES / "verinstruct_fixtures.jsonl"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    data_cli.register(app)
    return app


def run(*args: str) -> object:
    return CliRunner().invoke(_app(), ["data", *args])


def test_info_counts(tmp_path: Path) -> None:
    r = run("info", str(RAW), "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["rows"] == 34 and s["constraints"] == 84
    assert s["kind"] == {"hard": 64, "soft": 20}
    # 16 functions only return one llm_judge / llm_score call with literal text: llm checks, recognised in code
    assert s["check_type"] == {"code": 64, "llm<-code": 16, "code+llm": 1, "llm": 3}
    assert s["tag"] == {"rule": 59, "llm": 14, "(untagged)": 11}
    assert s["untagged_classified_as"] == {"hard/code": 6, "soft/llm<-code": 3, "soft/code+llm": 1, "soft/llm": 1}
    assert s["text_source"] == {"prompt": 82, "code": 1, "name": 1}
    assert set(s["category"]) == {"length", "keywords", "format", "content", "style"}
    text = run("info", str(RAW)).output
    assert "34 rows, 84 constraints" in text and "untagged ->" in text and "prompt 82" in text


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_convert_raw_to_typed_with_card(tmp_path: Path, ext: str) -> None:
    out = tmp_path / "typed" / f"train.{ext}"
    r = run("convert", str(RAW), str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote 34 rows (84 constraints) to {out}" in r.output
    assert read_card_metadata(out.parent / "README.md")["configs"][0]["data_files"][0]["path"] == out.name
    # the typed output reads back to the same dataset, and info agrees
    assert verinstruct.load(str(out)).to_list() == verinstruct.load(str(RAW)).to_list()
    assert json.loads(run("info", str(out), "--json").output)["kind"] == {"hard": 64, "soft": 20}


def test_convert_ifeval(tmp_path: Path) -> None:
    src = SHARED / "ifeval" / "input_data.jsonl"
    if not src.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {src}")
        pytest.skip(f"reference data not present at {src}")
    out = tmp_path / "ifeval.jsonl"
    r = run("convert", str(src), str(out))
    assert r.exit_code == 0, r.output
    n_rows = len(src.read_text().splitlines())
    n_cons = sum(len(json.loads(line)["instruction_id_list"]) for line in src.read_text().splitlines())
    assert f"wrote {n_rows} rows ({n_cons} constraints)" in r.output
    s = json.loads(run("info", str(out), "--json").output)
    assert s["check_type"] == {"registry": n_cons} and s["text_source"] == {"description": n_cons}


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    r = run("info", str(tmp_path / "nope.jsonl"))
    assert r.exit_code == 2 and r.output.strip() == f"error: no such file or folder: {str(tmp_path / 'nope.jsonl')!r}"
    bad = tmp_path / "bad.jsonl"
    row = json.loads(RAW.read_text().splitlines()[0])
    row["checkers"].append("[rule] Extra")
    bad.write_text(json.dumps(row) + "\n")
    r = run("convert", str(bad), str(tmp_path / "o.jsonl"))
    assert r.exit_code == 2
    assert r.output.strip() == ("error: bad.jsonl line 1 (id 'vi-001'): fields 'checkers' and 'functions' "
                                "must have the same length, got 4 and 3")
    r = run("convert", str(RAW), str(tmp_path / "o.csv"))
    assert r.exit_code == 2 and "must be .jsonl or .parquet" in r.output


def test_lint_json(tmp_path: Path) -> None:
    r = run("lint", str(RAW), "--json", "--worst", "50")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["checked"] == 81 and s["broken"] == 6 and s["needs_llm"] == 17 and s["ok"] == 58
    assert {(w["id"], w["class"]) for w in s["worst"]} == {
        ("vi-006", "compile"), ("vi-007", "raises"), ("vi-008", "no_check_following"), ("vi-009", "non_bool"),
        ("vi-010", "import_error"), ("vi-011", "constant")}
    text = run("lint", str(FIXTURES / "timeout.jsonl"), "--timeout", "0.3").output
    assert "1 broken" in text and "timeout" in text and "vi-timeout" in text
