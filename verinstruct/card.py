"""The dataset card (README.md with YAML metadata) written next to exported files, so the folder can be
``push_to_hub``-ed as is: license, source dataset, ``dataset_info`` features and splits, and ``configs``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

TEMPLATE = Path(__file__).with_name("dataset_card_template.md")


def card_metadata(ds: datasets.Dataset, file_name: str, *, source_name: str, split: str) -> dict[str, Any]:
    from datasets import DatasetInfo, SplitDict, SplitInfo

    splits = SplitDict()
    splits.add(SplitInfo(name=split, num_examples=len(ds)))
    info = DatasetInfo(features=ds.features, splits=splits)._to_yaml_dict()
    return {
        "license": "apache-2.0",
        "language": ["en", "zh"],
        "pretty_name": "VerInstruct (typed)",
        "task_categories": ["text-generation"],
        "tags": ["instruction-following", "verifiable-rewards", "rlvr", "verif"],
        "source_datasets": [source_name],
        "dataset_info": info,
        "configs": [{"config_name": "default", "data_files": [{"split": split, "path": file_name}]}],
    }


def render_card(ds: datasets.Dataset, file_name: str, *, source_name: str = "THU-KEG/VerInstruct",
                split: str = "train") -> str:
    import yaml

    from verinstruct import __version__

    meta = card_metadata(ds, file_name, source_name=source_name, split=split)
    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for cons in ds["constraints"]:
        for c in cons:
            kinds[c["kind"]] += 1
            types[c["check_type"]] += 1
            sources[c["text_source"]] += 1
    return TEMPLATE.read_text(encoding="utf-8").format(
        yaml=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
        pretty_name=meta["pretty_name"],
        source_name=source_name,
        version=__version__,
        num_rows=len(ds),
        split=split,
        file=file_name,
        num_constraints=sum(kinds.values()),
        hard=kinds["hard"],
        soft=kinds["soft"],
        check_types=", ".join(f"{k} {v}" for k, v in sorted(types.items())) or "none",
        text_sources=", ".join(f"{k} {v}" for k, v in sorted(sources.items())) or "none",
    )


def write_card(ds: datasets.Dataset, data_path: Path, *, source_name: str = "THU-KEG/VerInstruct",
               split: str = "train") -> Path:
    out = data_path.parent / "README.md"
    out.write_text(render_card(ds, data_path.name, source_name=source_name, split=split), encoding="utf-8")
    return out


def read_card_metadata(path: Path) -> dict[str, Any]:
    """The YAML block of a card (used by tests and `verif data info`)."""
    import yaml

    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}
