"""The benchmark contract: the one aggregator, loading (local files, bundled, Hub failure) and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import benchmarks
from benchmarks.base import Benchmark, BenchmarkError, Sample, aggregate, all_passed, read_local


def test_aggregate_counts_bools_undecided_and_numbers() -> None:
    out = aggregate([("a", True), ("a", False), ("a", None), ("a", True), ("r", 0.5), ("r", 1.0), ("r", 0)])
    assert out["a"] == {"passed": 2, "total": 4, "rate": 0.5, "undecided": 1}
    assert out["r"] == {"passed": 1.5, "total": 3, "rate": 0.5, "undecided": 0}
    assert aggregate([]) == {}
    with pytest.raises(TypeError, match="metric 'x'"):
        aggregate([("x", "yes")])


def test_all_passed_is_undecided_only_without_a_failure() -> None:
    assert all_passed([True, True]) is True
    assert all_passed([True, None]) is None
    assert all_passed([None, False]) is False
    assert all_passed([]) is True


def test_read_local_formats_and_errors(tmp_path: Path) -> None:
    rows = [{"key": 1, "prompt": "a"}, {"key": 2, "prompt": "b"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "d.json").write_text(json.dumps({"data": rows}))
    assert read_local("x", tmp_path / "d.jsonl") == rows
    assert read_local("x", tmp_path / "d.json") == rows
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    assert read_local("x", tmp_path / "d.parquet") == rows
    assert len(read_local("x", tmp_path)) == 6  # a folder: every data file, sorted
    (tmp_path / "bad.jsonl").write_text('{"key": 1}\n{oops\n')
    with pytest.raises(BenchmarkError, match=r"bad.jsonl line 2: invalid JSON"):
        read_local("x", tmp_path / "bad.jsonl")
    with pytest.raises(BenchmarkError, match="no such data file"):
        read_local("x", tmp_path / "missing.jsonl")


def test_hub_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*a: object, **k: object) -> None:
        raise ConnectionError("Couldn't reach 'google/IFEval' on the Hub (LocalEntryNotFoundError)\nmore lines")

    monkeypatch.setattr(datasets, "load_dataset", offline)

    class Hubbed(Benchmark):
        name = "hubbed"
        hub_id = "google/IFEval"

    with pytest.raises(BenchmarkError) as e:
        Hubbed().load_rows()
    msg = str(e.value)
    assert "\n" not in msg and "google/IFEval" in msg and "--data PATH" in msg


def test_registry_lookup_and_errors() -> None:
    assert {"ifeval", "ifbench", "verinstruct", "followbench", "infobench", "multi_if"} <= set(benchmarks.names())
    assert benchmarks.get("IFEval").name == "ifeval"
    with pytest.raises(BenchmarkError, match="unknown benchmark 'nope'"):
        benchmarks.get("nope")


def test_duplicate_sample_ids_are_an_error() -> None:
    class Dup(Benchmark):
        name = "dup"

        def to_sample(self, row, where):  # type: ignore[no-untyped-def]
            return Sample.single("same", row["prompt"], None)

    with pytest.raises(BenchmarkError, match="duplicate sample id 'same'"):
        Dup().to_samples([{"prompt": "a"}, {"prompt": "b"}])
