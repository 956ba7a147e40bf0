"""Each benchmark's Hub dataset, in the layout the Hub serves it, loads through the code path a Hub load takes
after download (``datasets.load_dataset`` on the repository's files, then the benchmark's converter) and gives the
same samples as the authors' own release file. The layouts are rebuilt locally from the release files (no network):

* ``google/IFEval``: ``ifeval_input_data.jsonl`` (JSON Lines);
* ``allenai/IFBench_test``: ``data/train-00000-of-00001.parquet``;
* ``facebook/Multi-IF``: one CSV (``multiIF_20241018.csv``; ``datasets`` reads "None" cells as null, keys as int);
* ``kqsong/InFoBench``: ``InFoBench.json``, JSON Lines under a .json name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks.base import load_hub, samples_sha256
from benchmarks.ifbench import BENCHMARK as IFBENCH
from benchmarks.ifeval import BENCHMARK as IFEVAL
from benchmarks.infobench import BENCHMARK as INFOBENCH
from benchmarks.multi_if import BENCHMARK as MULTI_IF

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parent.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)


def _need(path: Path) -> None:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {path}")
        pytest.skip(f"reference data missing: {path}")


def _first_lines(src: Path, dst: Path, n: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8")
    return dst


def test_ifeval_hub_jsonl(tmp_path: Path) -> None:
    _need(SHARED / "ifeval")
    release = _first_lines(SHARED / "ifeval" / "input_data.jsonl", tmp_path / "release.jsonl", 60)
    _first_lines(release, tmp_path / "hub" / "ifeval_input_data.jsonl", 60)
    rows = load_hub("ifeval", str(tmp_path / "hub"), None, "train")
    assert samples_sha256(IFEVAL.to_samples(rows)) == samples_sha256(IFEVAL.load_samples(release))


def test_ifbench_hub_parquet(tmp_path: Path) -> None:
    _need(SHARED / "ifbench")
    import datasets

    release = _first_lines(SHARED / "ifbench" / "IFBench_test.jsonl", tmp_path / "release.jsonl", 60)
    parquet = tmp_path / "hub" / "data" / "train-00000-of-00001.parquet"
    parquet.parent.mkdir(parents=True)
    datasets.Dataset.from_json(str(release)).to_parquet(str(parquet))  # how the Hub's copy was uploaded
    rows = load_hub("ifbench", str(tmp_path / "hub"), None, "train")
    assert samples_sha256(IFBENCH.to_samples(rows)) == samples_sha256(IFBENCH.load_samples(release))


def test_multi_if_hub_csv(tmp_path: Path) -> None:
    release = TESTS / "fixtures" / "benchmarks" / "multi_if_authors" / "multiIF_authors_cases.csv"
    (tmp_path / "hub").mkdir()
    shutil.copy(release, tmp_path / "hub" / "multiIF_20241018.csv")
    rows = load_hub("multi_if", str(tmp_path / "hub"), None, "train")
    assert rows[0]["turn_3_prompt"] is None and isinstance(rows[0]["key"], int)  # what datasets makes of the CSV
    assert samples_sha256(MULTI_IF.to_samples(rows)) == samples_sha256(MULTI_IF.load_samples(release))


def test_infobench_hub_json_lines(tmp_path: Path) -> None:
    release = TESTS / "fixtures" / "benchmarks" / "infobench_authors" / "InfoBench.json"
    (tmp_path / "hub").mkdir()
    shutil.copy(release, tmp_path / "hub" / "InFoBench.json")
    rows = load_hub("infobench", str(tmp_path / "hub"), None, "train")
    assert samples_sha256(INFOBENCH.to_samples(rows)) == samples_sha256(INFOBENCH.load_samples(release))
