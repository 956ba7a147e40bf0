"""The dataset card (README.md with YAML metadata) written next to exported files, so the folder can be
``push_to_hub``-ed as is: license, source dataset, ``dataset_info`` features and splits, and ``configs``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

TEMPLATE = Path(__file__).with_name("dataset_card_template.md")


#: the license recorded when the source is VerInstruct itself; for other data it is the source's to state
VERINSTRUCT = ("THU-KEG/VerInstruct", "apache-2.0")


def card_metadata(ds: datasets.Dataset, file_name: str, *, source_name: str | None, split: str,
                  num_bytes: int | None = None, license: str | None = None) -> dict[str, Any]:
    from datasets import DatasetInfo, SplitDict, SplitInfo

    # Arrow size in memory, as the Hub's own dataset_info reports it; the file's size is download_size
    nbytes = int(ds.data.nbytes)
    splits = SplitDict()
    splits.add(SplitInfo(name=split, num_bytes=nbytes, num_examples=len(ds)))
    info = DatasetInfo(features=ds.features, splits=splits, dataset_size=nbytes,
                       download_size=num_bytes)._to_yaml_dict()
    meta: dict[str, Any] = {
        "license": license or (VERINSTRUCT[1] if source_name == VERINSTRUCT[0] else "other"),
        "language": ["en", "zh"],
        "pretty_name": f"{source_name.split('/')[-1]} (typed)" if source_name else "VerInstruct-format dataset (typed)",
        "task_categories": ["text-generation"],
        "tags": ["instruction-following", "verifiable-rewards", "rlvr", "verif"],
    }
    if source_name:
        meta["source_datasets"] = [source_name]
    meta["dataset_info"] = info
    meta["configs"] = [{"config_name": "default", "data_files": [{"split": split, "path": file_name}]}]
    return meta


def render_card(ds: datasets.Dataset, file_name: str, *, source_name: str | None = None, origin: str | None = None,
                split: str = "train", num_bytes: int | None = None, license: str | None = None) -> str:
    """``source_name``: the Hub dataset the rows came from (linked, recorded in ``source_datasets``); else
    ``origin`` (e.g. the input file's name) is what the card says it was converted from."""
    import yaml

    from verinstruct import __version__

    meta = card_metadata(ds, file_name, source_name=source_name, split=split, num_bytes=num_bytes, license=license)
    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for cons in ds["constraints"]:
        for c in cons:
            kinds[c["kind"]] += 1
            types[c["check_type"]] += 1
            sources[c["text_source"]] += 1
    if source_name:
        export_of = f"[{source_name}](https://huggingface.co/datasets/{source_name})"
    else:
        export_of = f"`{origin}`" if origin else "local rows"
    if meta["license"] == "other":
        license_text = ("that of the source data (state it in the `license` field above "
                        "before publishing).")
    else:
        license_text = f"{meta['license']}" + (", as the source dataset." if source_name else ".")
    return TEMPLATE.read_text(encoding="utf-8").format(
        yaml=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
        pretty_name=meta["pretty_name"],
        export_of=export_of,
        license_text=license_text,
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


def write_card(ds: datasets.Dataset, data_path: Path, *, source_name: str | None = None, origin: str | None = None,
               split: str = "train", license: str | None = None) -> Path:
    out = data_path.parent / "README.md"
    size = data_path.stat().st_size if data_path.is_file() else None
    out.write_text(render_card(ds, data_path.name, source_name=source_name, origin=origin, split=split,
                               num_bytes=size, license=license), encoding="utf-8")
    return out


def read_card_metadata(path: Path) -> dict[str, Any]:
    """The YAML block of a card (used by tests and `verif data info`)."""
    import yaml

    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}
