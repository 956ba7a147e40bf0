"""`verif check`'s light start-up path (no typer, no pydantic) against the typer command it stands in for.

The user runs `verif check` as a process, so these tests do too; the typer app (what the other tests and
every non-plain command line go through) is the oracle for output, files and exit codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from verinstruct.cli import _register, app
from verinstruct.cli import check as check_cmd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "ifeval_sample.jsonl"
_register()

# prints which of the libraries only typer needs were imported, after the command ran
_VERIF = (
    "import sys\nfrom verinstruct.cli import main\nsys.argv = ['verif', *sys.argv[1:]]\n"
    "try:\n    main()\nfinally:\n"
    "    print('IMPORTED', sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'pydantic', 'click'}),"
    " file=sys.stderr)\n"
)


def _verif(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _VERIF, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _imported(res: subprocess.CompletedProcess[str]) -> str:
    return res.stderr.strip().splitlines()[-1]


def test_plain_check_is_typers_check_without_typer(tmp_path: Path) -> None:
    fast_out, typer_out = tmp_path / "fast.jsonl", tmp_path / "typer.jsonl"
    res = _verif("check", "--input", str(SAMPLE), "-o", str(fast_out), "--mode=both")
    assert res.returncode == 0, res.stderr
    assert _imported(res) == "IMPORTED []"
    ref = CliRunner().invoke(app, ["check", "--input", str(SAMPLE), "-o", str(typer_out), "--mode=both"])
    assert ref.exit_code == 0, ref.output
    assert fast_out.read_bytes() == typer_out.read_bytes()
    assert res.stdout == ref.stdout
    by_key = {r["key"]: r for r in map(json.loads, fast_out.read_text(encoding="utf-8").splitlines())}
    assert by_key["ex-03"]["strict"] == [False] and by_key["ex-03"]["loose"] == [True]  # the sample's known verdicts


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--input", "{missing}"], "error: cannot read"),
        (["--input", "{sample}", "--mode", "lenient"], "--mode must be strict, loose or both, got 'lenient'"),
        (["--input", "{sample}", "--output", "{tmp}"], "is a folder"),
    ],
)
def test_plain_check_errors_match_typer(tmp_path: Path, args: list[str], needle: str) -> None:
    args = [a.format(missing=tmp_path / "nope.jsonl", sample=SAMPLE, tmp=tmp_path) for a in args]
    res = _verif("check", *args)
    ref = CliRunner().invoke(app, ["check", *args])
    assert res.returncode == ref.exit_code == 2
    assert needle in res.stderr and needle in ref.output
    assert res.stderr.splitlines()[0] == ref.output.splitlines()[0]  # one line, the same one
    assert _imported(res) == "IMPORTED []"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--help"], "--skip-invalid"),
        (["--inpt", "x"], "No such option"),
        (["--input"], "requires an argument"),
        (["--input", "a", "--input", "b", "--mode", "x", "--mode", "y"], "--mode must be"),
        ([], "Missing option"),
    ],
)
def test_anything_not_plain_goes_through_typer(args: list[str], needle: str) -> None:
    res = _verif("check", *args)
    assert needle in res.stdout + res.stderr
    assert "typer" in _imported(res)
    assert res.returncode == (0 if args == ["--help"] else 2)


def test_fast_parser_knows_exactly_typers_options() -> None:
    """The option table the light path parses is the typer command's: a new option must be added to both."""
    command = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    declared = {o: p.is_flag for p in command.params if p.name != "help" for o in p.opts}
    assert declared == {**dict.fromkeys(check_cmd.VALUE_OPTIONS, False), **dict.fromkeys(check_cmd.FLAG_OPTIONS, True)}
    names = {p.name for p in command.params if p.name != "help"}
    assert names == set(check_cmd.VALUE_OPTIONS.values()) | set(check_cmd.FLAG_OPTIONS.values())


def test_other_commands_still_registered() -> None:
    res = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "--help"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0
    for name in ("check", "checkers", "data", "score", "serve"):
        assert f" {name} " in res.stdout


def test_equal_rows_share_verdicts_and_different_kwargs_do_not(tmp_path: Path) -> None:
    """Rows equal in prompt, response, ids and kwargs are judged once; a row that differs only in its
    kwargs or only in its response is judged on its own."""
    base = {"prompt": "p", "response": "one two three four five",
            "instruction_id_list": ["length_constraints:number_words"],
            "kwargs": [{"num_words": 5, "relation": "at least"}]}
    rows = [
        {**base, "key": 1},
        {**base, "key": 2, "kwargs": [{"num_words": 5, "relation": "less than"}]},
        {**base, "key": 3},
        {**base, "key": 4, "kwargs": [{"num_words": 6, "relation": "at least"}]},
        {**base, "key": 5, "response": "one two three four"},
        {**base, "key": 6, "response": "one two three four five six"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows * 2), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = _verif("check", "--input", str(src), "--output", str(out), "--mode", "strict")
    assert res.returncode == 0, res.stderr
    got = [json.loads(x)["strict"] for x in out.read_text(encoding="utf-8").splitlines()]
    # 5 words: at least 5 yes, less than 5 no, at least 6 no; 4 words: at least 5 no; 6 words: yes
    want = [[True], [False], [True], [False], [False], [True]]
    assert got == want * 2
