"""`verif rl prepare`: raw VerIF / IFEval / typed / VerIF's own verl Parquet -> verl rows; read back by verinstruct.load."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import verinstruct
from verinstruct.cli import app
from verinstruct.convert import from_ifeval, from_verif
from verinstruct.dataset import from_row, read_instances

HERE = Path(__file__).resolve().parent
RAW = HERE / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
IFEVAL = HERE.parent / "examples" / "ifeval_sample.jsonl"
ROWS = [json.loads(x) for x in RAW.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    from verinstruct.cli import _register_plugins

    if not any(g.name == "rl" for g in app.registered_groups):
        _register_plugins()
    return CliRunner()


def test_entry_point_adds_the_rl_group(cli: CliRunner) -> None:
    res = cli.invoke(app, ["rl", "--help"])
    assert res.exit_code == 0, res.output
    assert "prepare" in res.output and "train-trl" in res.output


def test_prepare_raw_verif(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    res = cli.invoke(app, ["rl", "prepare", str(RAW), str(out)])
    assert res.exit_code == 0, res.output
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(ROWS)
    r = rows[3]
    assert set(r) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert r["data_source"] == "verinstruct" and r["prompt"] == [{"role": "user", "content": ROWS[3]["prompt"]}]
    assert r["reward_model"]["style"] == "rule" and r["extra_info"] == {"id": ROWS[3]["id"], "index": 3, "split": "train"}
    # nothing dropped: the ground truth reads back to the instance, raw fields and all
    assert from_row(json.loads(r["reward_model"]["ground_truth"])) == from_verif(ROWS[3])
    assert [i for i in read_instances(out)] == [from_verif(x) for x in ROWS]
    ds = verinstruct.load(str(out))
    assert len(ds) == len(ROWS) and ds[0]["id"] == ROWS[0]["id"]


def test_prepare_ifeval_and_typed(tmp_path: Path) -> None:
    from rl.prepare import prepare

    p, n = prepare(IFEVAL, tmp_path / "val.parquet", data_source="ifeval", split="test")
    src = [json.loads(x) for x in IFEVAL.read_text().splitlines() if x.strip()]
    assert n == len(src)
    assert read_instances(p) == [from_ifeval(x) for x in src]
    # typed rows (verif data convert output) in, same instances out
    typed = tmp_path / "typed.jsonl"
    verinstruct.dataset.export([from_verif(x) for x in ROWS[:5]], typed, card=False)
    p2, _ = prepare(typed, tmp_path / "t.parquet")
    assert read_instances(p2) == read_instances(typed)


def test_verifs_own_preprocessed_parquet(tmp_path: Path) -> None:
    """VerIF's trainer format: chat prompt + ground_truth {"checkers", "functions"}; converted with nothing lost."""
    from rl.prepare import prepare

    raw = [{"data_source": "if", "prompt": [{"role": "user", "content": r["prompt"]}], "ability": "if",
            "reward_model": {"style": "rule", "ground_truth": json.dumps({"checkers": r["checkers"],
                                                                          "functions": r["functions"]})},
            "extra_info": {"id": r["id"], "index": k}} for k, r in enumerate(ROWS[:6])]
    src = tmp_path / "verif_own.parquet"
    pq.write_table(pa.Table.from_pylist(raw), src)
    insts = read_instances(src)
    assert [i.id for i in insts] == [r["id"] for r in ROWS[:6]]
    for i, r in zip(insts, ROWS[:6], strict=True):
        assert i.constraints == from_verif(r).constraints and i.prompt == r["prompt"]
    p, n = prepare(src, tmp_path / "out.parquet")
    assert n == 6 and [i.constraints for i in read_instances(p)] == [i.constraints for i in insts]


def test_bad_rows_are_named(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], "functions": ["x"]}) + "\n")
    res = cli.invoke(app, ["rl", "prepare", str(bad), str(tmp_path / "o.parquet")])
    assert res.exit_code == 2 and "bad.jsonl line 2" in res.output and "'functions'" in res.output
    gt = tmp_path / "gt.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": [{"role": "user", "content": "x"}],
                                          "reward_model": {"ground_truth": "{not json"}, "extra_info": {"index": 0}}]), gt)
    res = cli.invoke(app, ["rl", "prepare", str(gt), str(tmp_path / "o.parquet")])
    assert res.exit_code == 2 and "gt.parquet row 1" in res.output and "ground_truth" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/missing.parquet"], "no such file"),
    (["{raw}"], "not a .parquet"),
    (["{pq}", "--batch-size", "3"], "multiple of --num-generations"),
    (["{pq}", "--formula", "bogus"], "--formula must be one of"),
    (["{pq}", "--undecided", "maybe"], "--undecided must be one of"),
    (["{pq}", "--model", "/nonexistent"], "no such folder"),
])
def test_train_trl_bad_input_is_one_line(cli: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    pq = tmp_path / "t.parquet"
    pq.write_bytes(b"")  # never read: every case fails before loading it
    res = cli.invoke(app, ["rl", "train-trl", *(a.format(tmp=tmp_path, raw=RAW, pq=pq) for a in args)])
    assert res.exit_code == 2, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in res.output


def test_prepare_negative_limit_is_an_error(cli: CliRunner, tmp_path: Path) -> None:
    res = cli.invoke(app, ["rl", "prepare", str(RAW), str(tmp_path / "o.parquet"), "--limit", "-2"])
    assert res.exit_code == 2 and "--limit must be a positive" in res.output
    assert not (tmp_path / "o.parquet").exists()
