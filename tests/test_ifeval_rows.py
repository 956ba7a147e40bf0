"""The one IFEval row parser (CLI and conversion) and `verif check`'s chunked batch evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checkers.modes import evaluate
from verinstruct.cli import _register, app
from verinstruct.cli import check as check_cmd
from verinstruct.convert import ConversionError, from_ifeval, parse_ifeval_row

_register()
runner = CliRunner()
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ifeval_sample.jsonl"
GOOD = {"key": 1, "prompt": "p", "response": "no commas here", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"prompt": 5}, "line 3 (id 1): field 'prompt' must be a string, got int"),
        ({"kwargs": [{}, {}]}, "line 3 (id 1): 'kwargs' has 2 entries but 'instruction_id_list' has 1"),
        ({"instruction_id_list": [7]}, "line 3 (id 1): instruction_id_list[0] must be a string, got 7"),
        ({"kwargs": ["x"]}, "line 3 (id 1): kwargs[0] must be an object, got str"),
        ({"instruction_id_list": ["punctuation:no_comas"]}, "line 3 (id 1): instruction 0 (punctuation:no_comas)"),
        ({"key": [1]}, "line 3: field 'key' must be a string or integer, got list"),
    ],
)
def test_cli_and_conversion_give_the_same_message(tmp_path: Path, change: dict, needle: str) -> None:
    bad = {**GOOD, **change}
    with pytest.raises(ConversionError) as e:
        from_ifeval(bad, "line 3")
    assert needle in str(e.value)
    with pytest.raises(ConversionError) as e:
        parse_ifeval_row(bad, "line 3", response=True)
    assert needle in str(e.value)
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join([json.dumps(GOOD), "", json.dumps(bad)]) + "\n", encoding="utf-8")
    r = runner.invoke(app, ["check", "--input", str(p)])
    assert r.exit_code == 2 and needle in r.output, r.output


def test_response_is_required_only_by_the_cli() -> None:
    row = {k: v for k, v in GOOD.items() if k != "response"}
    assert from_ifeval(row).id == "1"
    with pytest.raises(ConversionError, match="missing field 'response'"):
        parse_ifeval_row(row, "line 1", response=True)


@pytest.mark.parametrize("chunk", [1, 2, 3, 256])
def test_chunked_check_equals_row_by_row_and_keeps_rows_before_an_error(tmp_path: Path, monkeypatch, chunk: int) -> None:
    monkeypatch.setattr(check_cmd, "CHUNK", chunk)
    src = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines() if x.strip()]
    lines = [json.dumps(r) for r in src] + ["{broken"] + [json.dumps(src[0])]
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["check", "--input", str(p), "--output", str(out)])
    assert r.exit_code == 2 and f"line {len(src) + 1}" in r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [g["key"] for g in got] == [s["key"] for s in src]  # every row before the bad line, in order
    for g, s in zip(got, src, strict=True):
        row = check_cmd.parse_row(1, json.dumps(s))
        for m in ("strict", "loose"):
            assert g[m] == [v.passed for v in evaluate(row.constraints, row.response, row.prompt, m)]


_HEAVY = ("torch", "transformers", "datasets", "numpy", "pyarrow", "pandas", "openai", "httpx", "fastapi",
          "uvicorn", "langdetect", "nltk", "yaml")


def test_verif_check_imports_no_heavy_library(tmp_path: Path) -> None:
    """Start-up is part of every `verif check` run: the ML/web stacks must stay unimported."""
    import subprocess
    import sys

    row = {"key": 1, "prompt": "p", "response": "Ceci est une réponse en français. Deux phrases.",
           "instruction_id_list": ["language:response_language", "change_case:capital_word_frequency"],
           "kwargs": [{"language": "fr"}, {"capital_frequency": 2, "capital_relation": "less than"}]}
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps(row) + "\n", encoding="utf-8")
    code = (
        "import sys\nfrom verinstruct.cli import main\n"
        f"sys.argv = ['verif', 'check', '--input', {str(p)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({_HEAVY!r})))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "1/1" in res.stdout  # it did judge the row
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_rows_before_undecodable_bytes_are_written(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    good = "".join(json.dumps({**GOOD, "key": k}) + "\n" for k in range(1000)).encode()
    p.write_bytes(good + b'{"key": "\xff\xfe"}\n')
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["check", "--input", str(p), "--output", str(out)])
    assert r.exit_code == 2 and "line 1001: not UTF-8" in r.output, r.output
    assert [json.loads(x)["key"] for x in out.read_text().splitlines()] == list(range(1000))
