"""Multi-IF (He et al., 2024): IFEval's instructions over three turns in eight-plus languages.

Rows (Hub ``facebook/Multi-IF``, one CSV; or a local JSONL/JSON/Parquet/CSV copy): ``key``, ``language`` and,
for n in 1..3, ``turn_n_prompt`` (a JSON-encoded chat message; "None"/empty when the conversation is
shorter), ``turn_n_instruction_id_list`` (JSON list of IFEval ids) and ``turn_n_kwargs`` (a JSON list whose
items are JSON strings). A row is one sample of up to three turns: the runner sends turn n with the model's
OWN answers to turns 1..n-1, and turn n's answer is checked against turn n's instructions (which repeat the
earlier turns': the constraints are cumulative).

Checking is IFEval's, through the same registry, except where the authors' ``ifeval.py`` / ``metrics.py`` differ
from Google's (each is the authors' behaviour, tested against their code's verdicts):

* word and sentence counts follow the response's language (:mod:`checkers.multilingual`: Thai, Hindi,
  Chinese/Japanese);
* ``startend:quotation`` also accepts ``“…”`` and ``「…」`` (``multilingual:quotation``);
* a ``keywords:frequency`` keyword that is not a valid regex fails that instruction instead of rejecting the
  file (``multilingual:keyword_frequency``);
* strict mode tests ``if response``, not ``response.strip()``: a whitespace-only answer is checked as it is
  (Google's convention, and this project's strict mode, fail it unchecked). Those verdicts are stored as the
  turn's ``extra["strict_as_authors"]`` and the strict metrics use them; loose mode already agrees (the
  authors' loose tries only non-blank variants).

Remaining departures: langdetect is seeded here (unseeded there, so their Thai/CJK/Hindi counts can vary from
run to run); a checker that raises is undecided here, where the authors' run stops.

Metrics, per turn and per language (``all_languages`` pools them): IFEval's four numbers
(``turn_1_English_prompt_strict``, ``..._inst_strict``, ``..._prompt_loose``, ``..._inst_loose``) and their plain
mean ``turn_1_English_overall`` (the authors' headline; its ``passed`` is the sum of the four rates and
``total`` 4, so ``rate`` is the mean). Intervals: see :mod:`benchmarks.stats` (``summary.json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import checkers
from benchmarks.base import (
    Benchmark,
    BenchmarkError,
    Record,
    Sample,
    Turn,
    Value,
    all_passed,
    constraint_verdicts,
    read_local,
    verdicts,
)
from verinstruct.convert import describe
from verinstruct.schema import Constraint, Instance, RegistryCheck, SchemaError, make_registry_check

TURNS: tuple[int, ...] = (1, 2, 3)
ALL = "all_languages"
#: IFEval ids whose Multi-IF checker differs from Google's: the variant registered in checkers.multilingual
LANGUAGE_AWARE: dict[str, str] = {
    "length_constraints:number_words": "multilingual:number_words",
    "length_constraints:number_sentences": "multilingual:number_sentences",
    "startend:quotation": "multilingual:quotation",
    "keywords:frequency": "multilingual:keyword_frequency",
}
#: turn["extra"] key holding the authors' strict verdicts of a whitespace-only answer
BLANK_STRICT = "strict_as_authors"
FOUR: tuple[str, ...] = ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose")


class MultiIF(Benchmark):
    name = "multi_if"
    version = "2"  # 2: the authors' quotation, keyword-frequency and whitespace-only rules
    aggregations: ClassVar[Mapping[str, str]] = {
        **{f"_{level}_{mode}": (f"conversations at this turn whose every instruction passes ({mode}) / "
                                "conversations at this turn" if level == "prompt" else
                                f"instructions of this turn that pass ({mode}) / instructions, pooled")
           + " (interval: samples resampled)" for level in ("prompt", "inst") for mode in ("strict", "loose")},
        "_overall": "mean of this turn's four rates (prompt/inst x strict/loose), the authors' headline; no interval",
    }
    hub_id = "facebook/Multi-IF"
    hub_split = "train"
    modes: ClassVar[tuple[str, ...]] = ("strict", "loose")
    headline: ClassVar[tuple[str, ...]] = tuple(f"turn_{n}_{ALL}_{m}" for n in TURNS for m in ("overall", *FOUR))

    def read_rows(self, path: Path) -> list[dict[str, Any]]:
        if path.is_file() and path.suffix == ".csv":
            import csv

            with path.open(newline="", encoding="utf-8") as f:
                return [dict(r) for r in csv.DictReader(f)]
        return read_local(self.name, path)

    # ---- convert -------------------------------------------------------------------------------
    def to_sample(self, row: Mapping[str, Any], where: str) -> Sample:
        key = row.get("key")
        if key is None or isinstance(key, (bool, dict, list)) or (isinstance(key, float) and math.isnan(key)):
            raise BenchmarkError(f"{where}: field 'key' must be a string or integer, got {key!r}")
        sid = str(int(key)) if isinstance(key, float) and key.is_integer() else str(key)
        where = f"{where} (key {sid!r})"
        language = row.get("language")
        if not isinstance(language, str) or not language.strip():
            raise BenchmarkError(f"{where}: field 'language' must be a non-empty string, got {language!r}")
        turns: list[Turn] = []
        for n in TURNS:
            message = _message(row.get(f"turn_{n}_prompt"), where, f"turn_{n}_prompt")
            if message is None:
                later = [k for k in TURNS if k > n and _message(row.get(f"turn_{k}_prompt"), where,
                                                                 f"turn_{k}_prompt") is not None]
                if later:
                    raise BenchmarkError(f"{where}: field 'turn_{later[0]}_prompt' is given but "
                                         f"'turn_{n}_prompt' is empty (turns must be consecutive)")
                break
            ids = _json_list(row.get(f"turn_{n}_instruction_id_list"), where, f"turn_{n}_instruction_id_list")
            kwargs = _kwargs(row.get(f"turn_{n}_kwargs"), where, f"turn_{n}_kwargs", len(ids))
            constraints = []
            for k, (cid, kw) in enumerate(zip(ids, kwargs, strict=True)):
                if not isinstance(cid, str):
                    raise BenchmarkError(f"{where}: field 'turn_{n}_instruction_id_list[{k}]' must be a string, "
                                         f"got {cid!r}")
                try:
                    check = make_registry_check(LANGUAGE_AWARE.get(cid, cid), kw, where,
                                                f"turn_{n}_instruction_id_list[{k}]")
                except SchemaError as e:
                    raise BenchmarkError(str(e)) from None
                constraints.append(Constraint(cid, "hard", describe(check.checker, check.params), check, None,
                                              "description"))
            inst = Instance(f"{sid}:turn_{n}", message["content"], tuple(constraints), None,
                            {"format": "multi_if", "extra": {"key": sid, "language": language, "turn": n}})
            turns.append(Turn((message,), inst))
        if not turns:
            raise BenchmarkError(f"{where}: field 'turn_1_prompt' must hold a chat message, got nothing")
        return Sample(sid, tuple(turns), None, {"language": language, "turns": len(turns)})

    # ---- authors' strict mode on whitespace-only answers ---------------------------------------
    def extra_scores(self, get_scorer: Any, instances: Sequence[Instance],
                     texts: Sequence[str]) -> list[dict[str, Any]] | None:
        """The authors' strict verdicts for answers that are whitespace only (``if response`` is true for them,
        so their checkers run on the text); nothing for any other answer."""
        if not any(t and not t.strip() for t in texts):
            return None
        out: list[dict[str, Any]] = []
        for inst, text in zip(instances, texts, strict=True):
            if not text or text.strip():
                out.append({})
                continue
            out.append({BLANK_STRICT: [_run_check(c, text, inst.prompt) for c in inst.constraints]})
        return out

    def strict_verdicts(self, record: Record, t: int) -> list[bool | None]:
        extra = record["turns"][t].get("extra") or {}
        return list(extra[BLANK_STRICT]) if BLANK_STRICT in extra else verdicts(record, t, "strict")

    def type_contributions(self, records: Sequence[Record]) -> Iterable[tuple[str, Value]]:
        for r in records:
            for t in range(len(r["turns"])):
                names = [n for n, _ in constraint_verdicts(r, t, "strict")]
                yield from zip(names, self.strict_verdicts(r, t), strict=True)

    # ---- measure -------------------------------------------------------------------------------
    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        language = record["meta"]["language"]
        for t, _ in enumerate(record["turns"]):
            for lang in (ALL, language):
                prefix = f"turn_{t + 1}_{lang}"
                for mode in self.modes:
                    vs = self.strict_verdicts(record, t) if mode == "strict" else verdicts(record, t, mode)
                    yield f"{prefix}_prompt_{mode}", all_passed(vs)
                    for v in vs:
                        yield f"{prefix}_inst_{mode}", v

    def metrics(self, records: Sequence[Record]) -> dict[str, dict[str, Any]]:
        agg = super().metrics(records)
        prefixes = sorted({m.rsplit("_", 2)[0] for m in agg if m.endswith(FOUR)})
        for p in prefixes:
            parts = [agg[f"{p}_{m}"] for m in FOUR if f"{p}_{m}" in agg]
            if len(parts) != len(FOUR):
                continue  # e.g. a turn whose prompts had no instructions: no instruction-level numbers
            rates = [x["rate"] for x in parts]
            agg[f"{p}_overall"] = {"passed": float(sum(rates)), "total": len(rates), "rate": sum(rates) / len(rates),
                                   "undecided": sum(x["undecided"] for x in parts)}
        order = [m for m in self.headline if m in agg] + sorted(m for m in agg if m not in self.headline)
        return {m: agg[m] for m in order}


def _run_check(c: Constraint, text: str, prompt: str) -> bool | None:
    """One registry check run directly on ``text`` (undecided if the checker raises, as everywhere here)."""
    check = c.check
    assert isinstance(check, RegistryCheck)
    try:
        built = checkers.build(check.checker, check.params)
        return built.spec.fn(text, built.params, prompt).passed
    except Exception:  # noqa: BLE001 - a broken checker is undecided, never a crashed run
        return None


def _absent(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() in ("", "None"))


def _message(v: Any, where: str, field: str) -> dict[str, str] | None:
    if _absent(v):
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as e:
            raise BenchmarkError(f"{where}: field {field!r} is not valid JSON: {e.msg}") from None
    if not (isinstance(v, Mapping) and isinstance(v.get("content"), str) and v.get("role", "user") == "user"):
        raise BenchmarkError(f"{where}: field {field!r} must be a user chat message "
                             f"{{'role': 'user', 'content': str}}, got {str(v)[:80]!r}")
    return {"role": "user", "content": v["content"]}


def _json_list(v: Any, where: str, field: str) -> list[Any]:
    if isinstance(v, str):
        try:
            v = json.loads(v) if v.strip() else None
        except json.JSONDecodeError as e:
            raise BenchmarkError(f"{where}: field {field!r} is not valid JSON: {e.msg}") from None
    if not isinstance(v, list):
        raise BenchmarkError(f"{where}: field {field!r} must be a JSON list, got {str(v)[:80]!r}")
    return v


def _kwargs(v: Any, where: str, field: str, n: int) -> list[dict[str, Any]]:
    items = _json_list(v, where, field)
    if len(items) != n:
        raise BenchmarkError(f"{where}: field {field!r} has {len(items)} items for {n} instruction ids")
    out = []
    for k, item in enumerate(items):
        if isinstance(item, str):  # each item is itself JSON-encoded
            try:
                item = json.loads(item) if item.strip() else {}
            except json.JSONDecodeError as e:
                raise BenchmarkError(f"{where}: field '{field}[{k}]' is not valid JSON: {e.msg}") from None
        if item is None:
            item = {}
        if not isinstance(item, Mapping):
            raise BenchmarkError(f"{where}: field '{field}[{k}]' must be an object, got {item!r}")
        out.append({key: val for key, val in item.items() if val is not None})
    return out


BENCHMARK = MultiIF()
