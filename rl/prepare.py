"""Raw VerInstruct / typed rows / IFEval rows / VerIF's preprocessed Parquet -> verl's RL Parquet schema.

One verl row per instance::

    data_source   "verinstruct" (or the name given)
    prompt        chat messages [{role, content}] (the instance's own messages when it has them)
    ability       "instruction_following"
    reward_model  {style: "rule", ground_truth: JSON of the typed row (``verinstruct.dataset.to_row``)}
    extra_info    {id, index, split}

The ground truth carries the whole typed row (constraints with their checks, and the raw source fields), so
``verinstruct.load`` reads the Parquet back to the same instances and nothing is dropped. Rows that cannot
be converted raise with the file and row named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from verinstruct.dataset import read_instances, to_row
from verinstruct.schema import Instance

DATA_SOURCE = "verinstruct"
ABILITY = "instruction_following"


def verl_row(inst: Instance, index: int, *, data_source: str = DATA_SOURCE, split: str = "train",
             system_prompt: str | None = None) -> dict[str, Any]:
    if inst.messages:
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in inst.messages]
    else:
        messages = [{"role": "user", "content": inst.prompt}]
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {
        "data_source": data_source,
        "prompt": messages,
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": json.dumps(to_row(inst), ensure_ascii=False)},
        "extra_info": {"id": inst.id, "index": index, "split": split},
    }


def write_parquet(rows: Iterable[dict[str, Any]], out: str | os.PathLike[str]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(out)
    if path.suffix.lower() != ".parquet":
        raise ValueError(f"output {str(path)!r} must end in .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def prepare(src: str | os.PathLike[str], out: str | os.PathLike[str], *, format: str | None = None,
            data_source: str = DATA_SOURCE, split: str = "train", system_prompt: str | None = None,
            limit: int | None = None) -> tuple[Path, int]:
    """Convert ``src`` (file or folder) to verl Parquet at ``out``; returns (path, rows written)."""
    instances = read_instances(src, format=format)
    if limit is not None:
        instances = instances[:limit]
    if not instances:
        raise ValueError(f"{src}: no rows to prepare")
    rows = [verl_row(inst, k, data_source=data_source, split=split, system_prompt=system_prompt)
            for k, inst in enumerate(instances)]
    return write_parquet(rows, out), len(rows)
