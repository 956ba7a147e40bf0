"""Issue 9, as a new user meets the CLI: one-line errors instead of tracebacks, honest exit codes and summaries,
resume that refuses to mix settings, progress feedback, display details and `verif data convert`.

CLI cases run the real `verif` entry point in a subprocess and check the exit code, the stderr line and that no
traceback is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
RAW = FIXTURES / "verinstruct_fixtures.jsonl"
IFEVAL = ROOT / "examples" / "ifeval_sample.jsonl"
SAMPLE = ROOT / "examples" / "verinstruct_sample.jsonl"
VERIF = [sys.executable, "-c", "from verinstruct.cli import main; main()"]


def verif(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "VERINSTRUCT_PROGRESS": "0", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([*VERIF, *args], capture_output=True, text=True, env=full, timeout=timeout, cwd=ROOT)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    return lines[0]


def _latin1_file(tmp_path: Path, first: str) -> Path:
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(first.encode() + b"\n" + '{"prompt": "caf\xe9"}'.encode("latin-1") + b"\n")
    return p


# ---------------------------------------------------------------------------------- 1: one-line errors


def test_check_output_into_a_missing_folder_creates_it(tmp_path: Path) -> None:
    out = tmp_path / "out" / "deeper" / "ifeval.jsonl"
    proc = verif("check", "--input", str(IFEVAL), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == len(IFEVAL.read_text().splitlines())
    assert json.loads(out.with_name("ifeval.jsonl.meta.json").read_text())["command"] == "verif check"


@pytest.mark.parametrize("cmd", ["check", "score"])
def test_output_naming_a_folder_is_one_line(tmp_path: Path, cmd: str) -> None:
    src = IFEVAL if cmd == "check" else RAW
    extra = ["--no-llm"] if cmd == "score" else []
    one_line_error(verif(cmd, "--input", str(src), "--output", str(tmp_path), *extra), 2, "is a folder")


def test_score_non_utf8_names_the_line_and_skip_invalid_counts_it(tmp_path: Path) -> None:
    p = _latin1_file(tmp_path, RAW.read_text().splitlines()[0])
    one_line_error(verif("score", "--input", str(p), "--no-llm"), 2, "line 2: not UTF-8 text")
    proc = verif("score", "--input", str(p), "--no-llm", "--skip-invalid", "-q")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "skipped: line 2: not UTF-8 text (invalid continuation byte at byte 16 of the line)"]
    assert "scored 1 rows of 1; 1 invalid line skipped" in proc.stdout
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    one_line_error(verif("score", "--input", str(binary), "--no-llm"), 2, "line 1: not UTF-8 text")


def test_check_non_utf8_names_the_line_and_skip_invalid_counts_it(tmp_path: Path) -> None:
    p = _latin1_file(tmp_path, IFEVAL.read_text().splitlines()[0])
    one_line_error(verif("check", "--input", str(p)), 2, "line 2: not UTF-8 text")
    proc = verif("check", "--input", str(p), "--skip-invalid")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "skipping line 2: not UTF-8 text" in proc.stderr
    assert "rows evaluated: 1" in proc.stdout and "skipped invalid rows: 1" in proc.stdout


# ------------------------------------------------------------------------------ 2: exit codes, summaries


@pytest.mark.parametrize("cmd", ["check", "score"])
def test_no_valid_row_is_an_error_in_both_commands(tmp_path: Path, cmd: str) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    extra = ["--no-llm"] if cmd == "score" else []
    one_line_error(verif(cmd, "--input", str(empty), *extra), 2, "no valid rows")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n[1]\n")
    proc = verif(cmd, "--input", str(bad), "--skip-invalid", *extra)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("no valid rows (2 invalid lines skipped)"), proc.stderr


def test_score_summary_counts_skipped_lines(tmp_path: Path) -> None:
    lines = RAW.read_text().splitlines()[:3]
    p = tmp_path / "some_bad.jsonl"
    p.write_text("\n".join([lines[0], "{oops", lines[1], "42", lines[2]]) + "\n")
    proc = verif("score", "--input", str(p), "--no-llm", "--skip-invalid", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "scored 3 rows of 3; 2 invalid lines skipped" in proc.stdout


def test_unreachable_verifier_is_one_line_and_exit_1(tmp_path: Path, unused_port: int) -> None:
    typed = {"id": "t1", "prompt": "Say hi.", "response": "hi", "constraints": [
        {"name": "friendly", "kind": "soft", "text": "Be friendly.", "check": {"type": "llm"}},
        {"name": "short", "kind": "hard", "text": "Be short.", "check": {"type": "registry",
                                                                           "checker": "punctuation:no_comma"}}]}
    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps(typed) + "\n" + json.dumps({**typed, "id": "t2", "response": "hello"}) + "\n")
    proc = verif("score", "--input", str(p), "--verifier", "openai:judge", "-q",
                 "--base-url", f"http://127.0.0.1:{unused_port}/v1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "never answered" in errors[0] and f"127.0.0.1:{unused_port}" in errors[0]
    assert proc.stderr.strip().splitlines()[-1] == errors[0]
    assert "verifier: 2 requests (2 distinct)" in proc.stdout and "2 failed" in proc.stdout


def test_partial_verifier_failures_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    from verifier import VerifierStats
    from verinstruct.cli.score import _report_verifier, _Tally

    _report_verifier(VerifierStats(calls=10, unique=8, cache_hits=3, cache_misses=5, backend_items=5, errors=2),
                     "openai:judge", None, _Tally())
    out, err = capsys.readouterr()
    assert "verifier: 10 requests (8 distinct), cache hits 3, misses 5, 5 sent, 2 failed" in out
    assert err.strip() == "warning: 2 of 5 verifier requests failed; those verdicts are undecided"


def _summary(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("hard:", "soft:", "mean ", "undecided"))]


def test_totals_after_resume_cover_the_whole_output(tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    first = verif("score", "--input", str(RAW), "--no-llm", "-q", "-o", str(full))
    assert first.returncode == 0, first.stderr
    part = tmp_path / "part.jsonl"
    part.write_text("".join(full.read_text().splitlines(keepends=True)[:5]))
    (tmp_path / "part.jsonl.meta.json").write_text((tmp_path / "full.jsonl.meta.json").read_text())
    resumed = verif("score", "--input", str(RAW), "--no-llm", "-q", "-o", str(part))
    assert resumed.returncode == 0, resumed.stderr
    assert "scored 29 rows (5 already done) of 34" in resumed.stdout
    assert f"totals over all 34 rows in {part}" in resumed.stdout
    assert _summary(resumed.stdout) == _summary(first.stdout) and _summary(first.stdout)


def test_resume_refuses_without_meta_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    assert verif("score", "--input", str(RAW), "--no-llm", "-q", "-o", str(out)).returncode == 0
    meta = tmp_path / "o.jsonl.meta.json"
    meta.unlink()
    one_line_error(verif("score", "--input", str(RAW), "--no-llm", "-o", str(out)), 2,
                   "no o.jsonl.meta.json records the settings")
    proc = verif("score", "--input", str(RAW), "--no-llm", "-q", "-o", str(out), "--force-resume")
    assert proc.returncode == 0 and "(34 already done)" in proc.stdout, proc.stderr
    assert json.loads(meta.read_text())["force_resumed"] is True
    # other settings are refused too, and the message says how to go on
    line = one_line_error(verif("score", "--input", str(RAW), "--no-llm", "--loose", "-o", str(out)), 2,
                          "different settings (ifeval_mode)")
    assert "--overwrite" in line and "--force-resume" in line


# --------------------------------------------------------------------- 3: one convention for empty kinds


def test_rows_without_soft_constraints_rate_1_in_api_output_and_cli(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    proc = verif("score", "--input", str(IFEVAL), "--no-llm", "-q", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["soft_pass_rate"] == 1.0 and r["soft"]["total"] == 0 for r in rows)
    assert "soft: 0/0 passed (no soft constraints), 0 undecided" in proc.stdout
    assert "mean soft_pass_rate per row: 1.000" in proc.stdout
    assert "n/a" not in proc.stdout


# ------------------------------------------------------------------------------------ 4: feedback


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    proc = verif("check", "--input", str(IFEVAL), env={"VERINSTRUCT_PROGRESS": "1",
                                                          "VERINSTRUCT_PROGRESS_INTERVAL": "0"})
    n = len(IFEVAL.read_text().splitlines())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"check: {n}/{n} rows (100%), ") and " rows/s, elapsed " in lines[-1]
    assert "\r" not in proc.stderr


def test_score_summary_reports_cache_hits_and_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from verifier import ResultCache, Verifier, load_template
    from verifier.backends.base import GenResult
    from verinstruct.cli import score as score_cli

    class Yes:
        kind, model = "fake", "yes"

        def generate(self, batch, config):  # type: ignore[no-untyped-def]
            return [GenResult("Yes") for _ in batch]

        def score(self, batch, candidates):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def close(self) -> None:
            pass

    db = tmp_path / "cache.db"
    monkeypatch.setattr(score_cli, "_build_verifier", lambda *a: Verifier(
        Yes(), mode="generate", template=load_template("en"), cache=ResultCache(db)))  # type: ignore[arg-type]
    typed = {"id": "t", "prompt": "Say hi.", "response": "hi", "constraints": [
        {"name": "a", "kind": "soft", "text": "Be friendly.", "check": {"type": "llm"}},
        {"name": "b", "kind": "soft", "text": "Be brief.", "check": {"type": "llm"}}]}
    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps(typed) + "\n")
    app = typer.Typer()
    app.callback()(lambda: None)
    score_cli.register(app)
    first = CliRunner().invoke(app, ["score", "--input", str(p), "-q"])
    assert first.exit_code == 0, first.output
    assert "cache hits 0, misses 2, 2 sent, 0 failed" in first.output
    second = CliRunner().invoke(app, ["score", "--input", str(p), "-q"])
    assert "cache hits 2, misses 0, 0 sent, 0 failed" in second.output


def test_load_offline_fails_fast_without_retry_noise(tmp_path: Path, unused_port: int) -> None:
    code = ("import verinstruct\nfrom verinstruct.dataset import DatasetUnavailableError\n"
            "try:\n    verinstruct.load()\nexcept DatasetUnavailableError as e:\n    print('ERR', e)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{unused_port}", HF_HOME=str(tmp_path / "hf"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.startswith("ERR cannot load 'THU-KEG/VerInstruct'"), proc.stdout + proc.stderr
    assert "cannot be reached" in proc.stdout and "local copy" in proc.stdout
    assert "Retry" not in proc.stderr and proc.stderr.strip() == "", proc.stderr


# ------------------------------------------------------------------------------------ 5: display


def test_checkers_list_keeps_brackets_and_does_not_truncate() -> None:
    from checkers import specs

    wide = verif("checkers", "list", env={"COLUMNS": "400"})
    assert wide.returncode == 0, wide.stderr
    bracketed = [s for s in specs() if "[" in s.description]
    assert bracketed, "expected a description with [brackets] in the registry"
    for s in bracketed:
        assert s.description in wide.stdout, s.id
    for s in specs():  # each parameter summary whole on one line when the terminal is wide enough
        for p in s.params:
            assert f"{p.name}: " in wide.stdout, (s.id, p.name)
    narrow = verif("checkers", "list", env={"COLUMNS": "80"})
    assert narrow.returncode == 0 and f"{len(specs())} checkers" in narrow.stdout
    # folded, never cut: no ellipsis beyond the ones some descriptions contain themselves
    own = sum(s.description.count("...") + sum((p.description or "").count("...") for p in s.params)
              for s in specs())
    assert "…" not in narrow.stdout and narrow.stdout.count("...") <= own


def test_help_has_no_bool_labels_and_shows_template_default() -> None:
    proc = verif("score", "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout and "BOOLEAN" not in proc.stdout
    assert "en for --mode score, en-reason for --mode generate" in proc.stdout


def test_details_align_by_display_width() -> None:
    from rich.cells import cell_len

    from checkers.base import Verdict
    from verinstruct.cli.score import _detail_line
    from verinstruct.scoring import ConstraintResult

    lines = [_detail_line(ConstraintResult(name, "soft", "llm", Verdict(True, "REASON"), ""))
             for name in ("Friendly tone", "保持友好的语气", "回答需要使用正式的书面语言并且避免口语化表达同时保持礼貌")]
    cols = {cell_len(line[: line.index("REASON")]) for line in lines}
    assert len(cols) == 1, lines


def test_license_is_an_spdx_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


# ------------------------------------------------------------------------------ 6: verif data convert


def _card(folder: Path) -> tuple[dict, str]:
    from verinstruct.card import read_card_metadata

    return read_card_metadata(folder / "README.md"), (folder / "README.md").read_text()


def test_convert_into_a_folder_names_its_real_source(tmp_path: Path) -> None:
    out = tmp_path / "typed"
    proc = verif("data", "convert", str(RAW), str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 34 rows (84 constraints) to {out / 'train.jsonl'}" in proc.stdout
    meta, text = _card(out)
    assert "THU-KEG/VerInstruct" not in text and "Typed export of `verinstruct_fixtures.jsonl`" in text
    assert meta["license"] == "other" and "source_datasets" not in meta
    split = meta["dataset_info"]["splits"][0]
    assert split["num_examples"] == 34 and split["num_bytes"] > 0
    assert meta["dataset_info"]["download_size"] == (out / "train.jsonl").stat().st_size
    import verinstruct

    assert verinstruct.load(str(out)).to_list() == verinstruct.load(str(RAW)).to_list()


def test_convert_with_a_hub_source_and_parquet(tmp_path: Path) -> None:
    out = tmp_path / "hub"
    out.mkdir()
    proc = verif("data", "convert", str(RAW), str(out), "--to", "parquet", "--source", "THU-KEG/VerInstruct")
    assert proc.returncode == 0, proc.stderr
    meta, text = _card(out)
    assert (out / "train.parquet").is_file() and meta["source_datasets"] == ["THU-KEG/VerInstruct"]
    assert meta["license"] == "apache-2.0" and "https://huggingface.co/datasets/THU-KEG/VerInstruct" in text


def test_convert_bad_output_is_one_line(tmp_path: Path) -> None:
    one_line_error(verif("data", "convert", str(RAW), str(tmp_path / "o.csv")), 2, "must be .jsonl or .parquet")
    one_line_error(verif("data", "convert", str(RAW), str(tmp_path / "x"), "--to", "csv"), 2, "--to must be")


def test_data_commands_name_a_non_utf8_line(tmp_path: Path) -> None:
    p = _latin1_file(tmp_path, RAW.read_text().splitlines()[0])
    one_line_error(verif("data", "info", str(p)), 2, "latin1.jsonl line 2: not UTF-8 text (invalid continuation byte)")


def test_check_still_streams_from_a_pipe() -> None:
    proc = subprocess.run([*VERIF, "check", "--input", "/dev/stdin"], input=IFEVAL.read_text(), capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "VERINSTRUCT_PROGRESS": "0"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert f"rows evaluated: {len(IFEVAL.read_text().splitlines())}" in proc.stdout
