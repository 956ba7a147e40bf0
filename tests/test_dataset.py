"""Loading, typed Features, export round trips, the dataset card and the offline error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import verinstruct
from verinstruct.card import read_card_metadata
from verinstruct.convert import from_verif
from verinstruct.dataset import (
    DatasetUnavailableError,
    export,
    features,
    from_instances,
    read_instances,
    to_instances,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
RAW = FIXTURES / "verinstruct_fixtures.jsonl"


def test_import_verinstruct_does_not_import_datasets() -> None:
    code = "import sys, verinstruct; assert 'datasets' not in sys.modules; assert callable(verinstruct.load); assert 'datasets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_raw_file_has_declared_features_and_all_constraints() -> None:
    ds = verinstruct.load(str(RAW))
    raw = [json.loads(line) for line in RAW.read_text().splitlines()]
    assert ds.features == features()
    assert len(ds) == len(raw)
    assert [len(r) for r in ds["constraints"]] == [len(r["checkers"]) for r in raw]
    first = ds[0]["constraints"][0]
    assert first["check_type"] == "code" and first["params"] is None and first["tag"] == "rule"
    # the typed rows come back as the same Instances the converter makes
    assert to_instances(ds) == [from_verif(r) for r in raw]


def test_from_instances_to_instances_round_trip_with_registry_params() -> None:
    row = {"key": 7, "prompt": "Hi.", "instruction_id_list": ["keywords:existence", "length_constraints:number_words"],
           "kwargs": [{"keywords": ["tea", "milk"]}, {"num_words": 10, "relation": "less than"}]}
    insts = read_instances(RAW) + [verinstruct.convert.row_to_instance(row)]
    ds = from_instances(insts)
    assert json.loads(ds[-1]["constraints"][0]["params"]) == {"keywords": ["tea", "milk"]}
    assert to_instances(ds) == insts


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_export_and_reload_are_identical(tmp_path: Path, ext: str) -> None:
    ds = verinstruct.load(str(RAW))
    out = export(ds, tmp_path / "data" / f"train.{ext}")
    again = verinstruct.load(str(out))
    assert again.features == ds.features
    assert again.to_list() == ds.to_list()
    # the folder works too (the README.md card beside the data is not read as data)
    assert verinstruct.load(str(out.parent)).to_list() == ds.to_list()
    assert (out.parent / "README.md").exists()


def test_folder_of_mixed_files_and_split_selection(tmp_path: Path) -> None:
    lines = RAW.read_text().splitlines()
    (tmp_path / "train-0.jsonl").write_text("\n".join(lines[:10]) + "\n")
    (tmp_path / "train-1.jsonl").write_text("\n".join(lines[10:]) + "\n")
    (tmp_path / "test.jsonl").write_text(lines[0] + "\n")
    assert len(verinstruct.load(str(tmp_path))) == len(lines)
    assert len(verinstruct.load(str(tmp_path), split="test")) == 1


def test_card_has_metadata_for_the_hub(tmp_path: Path) -> None:
    from datasets import DatasetInfo

    ds = verinstruct.load(str(RAW))
    out = export(ds, tmp_path / "train.parquet", source_name="THU-KEG/VerInstruct")  # rows taken from VerInstruct
    meta = read_card_metadata(tmp_path / "README.md")
    assert meta["license"] == "apache-2.0"
    assert meta["dataset_info"]["splits"][0]["num_bytes"] > 0
    assert meta["dataset_info"]["download_size"] == out.stat().st_size
    assert meta["source_datasets"] == ["THU-KEG/VerInstruct"]
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": out.name}]
    info = DatasetInfo._from_yaml_dict(dict(meta["dataset_info"]))
    assert info.features == ds.features
    assert info.splits["train"].num_examples == len(ds)
    body = (tmp_path / "README.md").read_text()
    n = sum(len(c) for c in ds["constraints"])
    assert f"rows: {len(ds)}" in body and f"constraints: {n}" in body and "arXiv:2506.09942" in body


def test_bad_local_input_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(RAW.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(verinstruct.convert.ConversionError, match=r"bad.jsonl line 2: invalid JSON"):
        verinstruct.load(str(p))
    with pytest.raises(DatasetUnavailableError, match="no such file"):
        verinstruct.load(str(tmp_path / "missing.jsonl"))


def test_offline_without_a_copy_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    monkeypatch.chdir(tmp_path)  # so "THU-KEG/VerInstruct" is not a local folder

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(DatasetUnavailableError) as e:
        verinstruct.load()
    msg = str(e.value)
    assert "\n" not in msg
    assert "THU-KEG/VerInstruct" in msg and "HF_HUB_OFFLINE" in msg and "local" in msg


def test_hub_path_is_used_when_not_local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datasets

    raw = [json.loads(line) for line in RAW.read_text().splitlines()[:3]]
    calls = []

    def fake_load_dataset(name: str, split: str) -> datasets.Dataset:
        calls.append((name, split))
        return datasets.Dataset.from_list(raw)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = verinstruct.load()
    assert calls == [("THU-KEG/VerInstruct", "train")]
    assert [r["id"] for r in ds] == ["vi-001", "vi-002", "vi-003"]
