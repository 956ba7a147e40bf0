"""VerInstruct as a typed Hugging Face ``datasets.Dataset``: load (Hub or local files), convert, export.

Flattened row layout (``FEATURES``)::

    id: string, prompt: string, messages: list<{role, content}> (null when the prompt is plain text),
    constraints: list<{name, kind, text, text_source, tag, check_type, checker, params, code}>,
    source: string (JSON)

``params`` is a JSON string because every registry checker has its own parameters (Arrow needs one struct
type per column); ``checker``/``params`` are null except for registry checks and ``code`` is null except for
code checks. ``source`` is a JSON string of the raw fields kept for round trips (origin format, original
checker names, any extra raw fields such as ``response``); the dataset functions are not repeated there
because they equal the constraints' ``code``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verinstruct.convert import ConversionError, row_to_instance
from verinstruct.schema import (
    CodeCheck,
    Constraint,
    Instance,
    RegistryCheck,
    SchemaError,
    _plain,
    instance_from_dict,
)

if TYPE_CHECKING:
    import datasets

HUB_NAME = "THU-KEG/VerInstruct"
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


class DatasetUnavailableError(RuntimeError):
    """The dataset could not be found or fetched; the one-line message says what to pass instead."""


def features() -> datasets.Features:
    from datasets import Features, List, Value

    constraint = {
        "name": Value("string"),
        "kind": Value("string"),
        "text": Value("string"),
        "text_source": Value("string"),
        "tag": Value("string"),
        "check_type": Value("string"),
        "checker": Value("string"),
        "params": Value("string"),
        "code": Value("string"),
    }
    return Features({
        "id": Value("string"),
        "prompt": Value("string"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "constraints": List(constraint),
        "source": Value("string"),
    })


# ------------------------------------------------------------------------------------ flat <-> Instance


def _flat_constraint(c: Constraint) -> dict[str, Any]:
    return {
        "name": c.name,
        "kind": c.kind,
        "text": c.text,
        "text_source": c.text_source,
        "tag": c.tag,
        "check_type": c.check.type,
        "checker": c.check.checker if isinstance(c.check, RegistryCheck) else None,
        "params": json.dumps(_plain(dict(c.check.params)), ensure_ascii=False, sort_keys=True)
        if isinstance(c.check, RegistryCheck) else None,
        "code": c.code if isinstance(c.check, CodeCheck) else (c.code or None),
    }


def to_row(inst: Instance) -> dict[str, Any]:
    """Instance -> flattened row matching ``features()``."""
    source = dict(inst.source)
    codes = [c.code for c in inst.constraints]
    if source.get("functions") == codes:
        source.pop("functions")
        source["functions_from_constraints"] = True
    return {
        "id": inst.id,
        "prompt": inst.prompt,
        "messages": [dict(m) for m in inst.messages] if inst.messages is not None else None,
        "constraints": [_flat_constraint(c) for c in inst.constraints],
        "source": json.dumps(_plain(source), ensure_ascii=False, sort_keys=True),
    }


def from_row(row: dict[str, Any], where: str | None = None) -> Instance:
    """Flattened (or nested typed) row -> Instance."""
    row = dict(row)
    src = row.get("source")
    if isinstance(src, str):
        try:
            src = json.loads(src) if src.strip() else {}
        except json.JSONDecodeError as e:
            raise SchemaError(f"{where or 'row ' + repr(row.get('id'))}: field 'source' is not valid JSON: {e.msg}") from None
    src = dict(src or {})
    inst = instance_from_dict({**row, "source": src}, where)
    if src.pop("functions_from_constraints", False):
        src["functions"] = [c.code for c in inst.constraints]
        inst = Instance(inst.id, inst.prompt, inst.constraints, inst.messages, src)
    return inst


def from_instances(instances: Iterable[Instance]) -> datasets.Dataset:
    from datasets import Dataset

    return Dataset.from_list([to_row(i) for i in instances], features=features())


def to_instances(ds: Iterable[dict[str, Any]]) -> list[Instance]:
    return [from_row(r, f"row {k}") for k, r in enumerate(ds)]


# ------------------------------------------------------------------------------------------- reading


def data_files(path: Path, split: str | None = None) -> list[Path]:
    """The data files of a file or folder (split-named files first choice: ``train*.jsonl`` ...)."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES)
                   and not p.name.endswith(".meta.json"))
    if split:
        named = [p for p in files if p.name.startswith(split) or split in p.relative_to(path).parts[:-1]]
        if named:
            return named
    return files


def iter_raw_rows(path: Path, split: str | None = None) -> Iterator[tuple[str, Any]]:
    """(where, row) for every row of every data file; ``where`` is 'FILE line N' / 'FILE row N'."""
    files = data_files(path, split)
    if not files:
        raise DatasetUnavailableError(f"no .jsonl/.json/.parquet data files in {str(path)!r}")
    for f in files:
        if f.name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            for k, r in enumerate(pq.read_table(f).to_pylist(), start=1):
                yield f"{f.name} row {k}", r
            continue
        data = f.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise ConversionError(f"{f.name} line {line}: not UTF-8 text ({e.reason})") from None
        if f.name.lower().endswith(".json") and text.lstrip().startswith("["):
            for k, r in enumerate(json.loads(text), start=1):
                yield f"{f.name} row {k}", r
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"{f.name} line {n}", json.loads(line)
            except json.JSONDecodeError as e:
                raise ConversionError(f"{f.name} line {n}: invalid JSON: {e.msg} (column {e.colno})") from None


def _row_to_instance(row: Any, where: str, fmt: str | None) -> Instance:
    if fmt in (None, "typed") and isinstance(row, dict) and "constraints" in row and "reward_model" not in row:
        return from_row(row, where)
    return row_to_instance(row, where, fmt)


def read_instances(path: str | os.PathLike[str], split: str | None = None, *, format: str | None = None) -> list[Instance]:
    """Local file/folder -> Instances (raw VerIF, IFEval or typed rows, auto-detected per row)."""
    return [_row_to_instance(r, w, format) for w, r in iter_raw_rows(Path(path), split)]


def load(path_or_name: str = HUB_NAME, split: str = "train", *, format: str | None = None) -> datasets.Dataset:
    """Load VerInstruct (or any VerIF/IFEval/typed data) as a typed ``datasets.Dataset`` (``features()``).

    A local file or folder is read directly; anything else is fetched with ``datasets.load_dataset``.
    ``format`` forces the row format ('verif', 'ifeval', 'typed' or 'verl': the Parquet ``verif rl prepare``
    writes, or VerIF's own preprocessed Parquet); by default it is detected per row.
    """
    if format not in (None, "verif", "ifeval", "typed", "verl"):
        raise ValueError(f"format must be 'verif', 'ifeval', 'typed', 'verl' or None, got {format!r}")
    local = Path(path_or_name).expanduser()
    if local.exists():
        return from_instances(read_instances(local, split, format=format))
    if path_or_name.endswith(DATA_SUFFIXES) or path_or_name.startswith((".", "/", "~")):
        raise DatasetUnavailableError(f"no such file or folder: {path_or_name!r}")
    raw = _load_hub(path_or_name, split)
    return from_instances(_row_to_instance(dict(r), f"{path_or_name} row {k}", format) for k, r in enumerate(raw, 1))


#: seconds for the one reachability probe before asking the Hub (datasets' own retries take ~25 s to give up)
HUB_PROBE_TIMEOUT = 3.0


def _hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except Exception:  # pragma: no cover - huggingface_hub always comes with datasets
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """One quick request to the Hub endpoint: any HTTP answer counts as reachable."""
    import httpx

    try:
        httpx.head(_hub_endpoint(), timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


@contextlib.contextmanager
def _offline_mode() -> Iterator[None]:
    """As HF_HUB_OFFLINE=1 for this call only: datasets answers from its local cache, no network, no retries."""
    import datasets
    from huggingface_hub import constants

    saved = (datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _load_hub(name: str, split: str) -> Any:
    import datasets

    offline = any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    unreachable = not offline and not hub_reachable()
    try:
        if unreachable:  # fail fast, but a copy already in the local cache still loads
            with _offline_mode():
                return datasets.load_dataset(name, split=split)
        return datasets.load_dataset(name, split=split)
    except Exception as e:  # any failure to reach or find it: one actionable line, no traceback
        if offline:
            why = "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and it is not in the cache"
        elif unreachable:
            why = f"{_hub_endpoint()} cannot be reached (no answer within {HUB_PROBE_TIMEOUT:g} s) and it is not in the cache"
        else:
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'no details'}"
        raise DatasetUnavailableError(
            f"cannot load {name!r} (split {split!r}) from the Hugging Face Hub: {why}. "
            f"Pass a local copy instead, e.g. verinstruct.load('path/to/verinstruct.jsonl') or a folder of "
            f".jsonl/.parquet files (download it once with network access and HF_HUB_OFFLINE unset)") from None


# ------------------------------------------------------------------------------------------- writing


def export(data: datasets.Dataset | Sequence[Instance], path: str | os.PathLike[str], *,
           card: bool = True, source_name: str | None = None, origin: str | None = None, split: str = "train",
           license: str | None = None) -> Path:
    """Write typed rows to ``path`` (.jsonl or .parquet, by extension) and a dataset card README.md beside it.

    The card names ``source_name`` (a Hub id, e.g. ``THU-KEG/VerInstruct``) when given, else ``origin``.
    """
    from datasets import Dataset

    out = Path(path)
    ds = data if isinstance(data, Dataset) else from_instances(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        ds.to_parquet(str(out))
    elif suffix in (".jsonl", ".json"):
        with out.open("w", encoding="utf-8") as f:
            for r in ds:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"cannot export to {str(out)!r}: the extension must be .jsonl or .parquet")
    if card:
        from verinstruct.card import write_card

        write_card(ds, out, source_name=source_name, origin=origin, split=split, license=license)
    return out
