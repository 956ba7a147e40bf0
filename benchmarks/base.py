"""What a benchmark declares, and the one aggregator every benchmark's metrics go through.

The contract (stable; extend it only in backwards-compatible ways):

1. **Declare.** A benchmark is a :class:`Benchmark` subclass with ``name``, ``hub_id`` (plus ``hub_config``,
   ``hub_split``), optionally ``bundled`` (a data file shipped inside the package, used when no path is
   given), ``modes`` (the scorer modes its metrics need: ``("strict",)`` or ``("strict", "loose")``) and
   ``headline`` (its published metric names, in table order). Register it in ``benchmarks.REGISTRY``.

2. **Load.** :meth:`Benchmark.load_rows` reads rows from a local path (JSONL / JSON / Parquet file or a
   folder of them), else the bundled file, else the Hub through ``datasets``. Offline without a path it
   raises :class:`BenchmarkError` with one line saying to pass ``--data PATH``. Override :meth:`read_rows`
   only for an unusual on-disk shape.

3. **Convert.** :meth:`Benchmark.to_sample` turns one row into a :class:`Sample` (override
   :meth:`to_samples` to expand or group rows). A sample is a conversation of one or more :class:`Turn`:
   each turn adds its ``messages`` (usually one user message) to the conversation, the model answers,
   and that answer is scored against the turn's ``instance`` (a :class:`verinstruct.schema.Instance`;
   None = generated but not scored). The runner generates turn by turn: turn k+1 is sent with the
   model's OWN answers to turns 1..k (Multi-IF). Sample ids are unique within a benchmark (resume keys).
   Errors name the row (``where``) and the field, as ``verinstruct.convert`` does.

4. **Score.** The runner scores every turn's answer through ``verinstruct.Scorer.score_batch`` once per
   mode in ``modes`` and appends one JSON *record* per sample to ``samples/<name>.jsonl``::

       {"id": ..., "benchmark": ..., "meta": {...},
        "turns": [{"messages": [...conversation sent...], "response": raw model text,
                   "scored_text": what was scored (thinking removed), "thinking": "none"|"removed"|"unfinished",
                   "error": generation error or null, "finish_reason": ..., "prompt_tokens": n,
                   "completion_tokens": n,
                   "scores": {"strict": ScoredResponse.to_dict(), "loose": {...}} | null,
                   "extra": {...} (only when the benchmark's extra_scores gives something)}]}

   A sample whose generation failed carries ``"failed": "turn N: error"`` (and the turn its ``error``) and
   no scores: it is no answer, so it is left out of the metrics, counted apart as a failed generation and
   generated again by the next run on the same folder. Records are plain JSON because a resumed run reads them
   back from disk; :func:`verdicts` reads them.

5. **Measure.** :meth:`Benchmark.contributions` yields ``(metric_name, value)`` pairs from all records;
   the default calls :meth:`record_contributions` per record (override the all-records form for metrics
   that group samples, e.g. FollowBench's CSL). ``value`` is True/False (pass/fail), None (undecided:
   counts in ``total``, not in ``passed``, and is reported), or a number (``passed`` is then the sum and
   ``rate`` the mean, e.g. a mean reward). :func:`aggregate` is the ONE aggregator: every metric comes
   out as ``{"passed": P, "total": T, "rate": R, "undecided": U}``. :meth:`type_contributions` does the
   same per constraint type (``per_type.png``); the default uses the constraint names of the first mode.

6. **Declare each metric.** :meth:`Benchmark.metric_info` says, per metric, its ``aggregation`` (one line: what
   is averaged over what), ``unit`` (``"rate"``, 0..1, or ``"mean"``, a value in the metric's own unit) and
   ``higher_is_better``; subclasses fill ``aggregations`` (metric-name suffix -> line). :meth:`uncertainty` gives
   each metric's standard error and seeded 95% bootstrap interval, resampling *samples* (a prompt's
   instructions move together); ``version`` names the benchmark definition and :func:`samples_sha256` hashes
   the samples as evaluated, so two runs can tell whether they measured the same thing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from verinstruct.schema import Instance

#: a per-sample record as written to samples/<benchmark>.jsonl (plain JSON)
Record = Mapping[str, Any]
#: a metric contribution value: pass/fail, undecided, or a number to average
Value = bool | None | float | int


class BenchmarkError(ValueError):
    """Bad benchmark data or an unavailable source; the message is one line naming what and where."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn: messages appended before generating, and what the answer is scored against."""

    messages: tuple[Mapping[str, str], ...]
    instance: Instance | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """A conversation to generate turn by turn; ``system`` (if any) opens it."""

    id: str
    turns: tuple[Turn, ...]
    system: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def single(cls, id: str, prompt: str, instance: Instance | None, *, system: str | None = None,
               meta: Mapping[str, Any] | None = None) -> Sample:
        """The common case: one user message, one scored answer."""
        return cls(str(id), (Turn(({"role": "user", "content": prompt},), instance),), system, dict(meta or {}))


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a metric is (lm-eval's declaration): how it aggregates, its unit, and which direction is better."""

    aggregation: str
    unit: str = "rate"  # "rate": a share in 0..1; "mean": an average in the metric's own unit
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"aggregation": self.aggregation, "unit": self.unit, "higher_is_better": self.higher_is_better}


class Benchmark:
    """Base class; subclasses set the class attributes and implement :meth:`to_sample`."""

    name: ClassVar[str] = ""
    #: the benchmark definition's version (data reading, checkers, metrics); bump it when a number can change
    version: ClassVar[str] = "1"
    #: one line per metric, keyed by the metric name or its suffix after the last "/" or "_" group (longest match
    #: wins): what is averaged over what. Metrics without one get the generic line.
    aggregations: ClassVar[Mapping[str, str]] = {}
    hub_id: ClassVar[str | None] = None
    hub_config: ClassVar[str | None] = None
    hub_split: ClassVar[str] = "train"
    #: package-relative data file used when no path is given (offline default), or None
    bundled: ClassVar[str | None] = None
    modes: ClassVar[tuple[str, ...]] = ("strict",)
    headline: ClassVar[tuple[str, ...]] = ()
    #: metrics that are means of numbers, not pass rates (FollowBench's CSL, 0-5 levels): reports show
    #: them as values, not percentages; a name also matches its per-category form ``CATEGORY/name``
    mean_metrics: ClassVar[tuple[str, ...]] = ()
    #: whether scoring may need the LLM verifier (soft constraints); False lets the runner skip loading it
    needs_verifier: ClassVar[bool] = False
    #: the benchmark's own judge prompt (a name in ``verifier.prompts.BENCHMARK_TEMPLATES``), used by ``verif eval``
    #: unless ``--judge-template`` says otherwise; None: the project's generic VerIF template
    judge_template: ClassVar[str | None] = None

    # ---- load ----------------------------------------------------------------------------------
    def load_rows(self, path: str | Path | None = None) -> list[dict[str, Any]]:
        """Rows from ``path``, else the bundled file, else the Hub (one-line error when unreachable)."""
        if path is not None:
            return self.read_rows(Path(path))
        if self.bundled:
            return self.read_rows(Path(__file__).parent / self.bundled)
        if not self.hub_id:
            raise BenchmarkError(f"benchmark {self.name!r} has no Hub id: pass --data PATH (a local copy)")
        return load_hub(self.name, self.hub_id, self.hub_config, self.hub_split)

    def read_rows(self, path: Path) -> list[dict[str, Any]]:
        return read_local(self.name, path)

    # ---- convert -------------------------------------------------------------------------------
    def to_sample(self, row: Mapping[str, Any], where: str) -> Sample:
        raise NotImplementedError

    def to_samples(self, rows: Sequence[Mapping[str, Any]]) -> list[Sample]:
        samples = [self.to_sample(r, f"{self.name} row {i + 1}") for i, r in enumerate(rows)]
        seen: set[str] = set()
        for s in samples:
            if s.id in seen:
                raise BenchmarkError(f"benchmark {self.name!r}: duplicate sample id {s.id!r}")
            seen.add(s.id)
        return samples

    def load_samples(self, path: str | Path | None = None, limit: int | None = None) -> list[Sample]:
        samples = self.to_samples(self.load_rows(path))
        return samples[:limit] if limit is not None else samples

    # ---- extra scoring -------------------------------------------------------------------------
    def extra_scores(self, get_scorer: Callable[[bool], Any], instances: Sequence[Instance],
                     texts: Sequence[str]) -> list[dict[str, Any]] | None:
        """Optional numbers per scored turn beyond the verdicts, stored as ``turn["extra"]`` (None: nothing).

        ``get_scorer(needs_llm)`` gives the run's shared Scorer; e.g. the RL reward's parts for held-out data.
        """
        return None

    # ---- measure -------------------------------------------------------------------------------
    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        raise NotImplementedError

    def contributions(self, records: Sequence[Record]) -> Iterable[tuple[str, Value]]:
        for r in records:
            yield from self.record_contributions(r)

    def type_contributions(self, records: Sequence[Record]) -> Iterable[tuple[str, Value]]:
        mode = self.modes[0]
        for r in records:
            for t in range(len(r["turns"])):
                yield from constraint_verdicts(r, t, mode)

    def metrics(self, records: Sequence[Record]) -> dict[str, dict[str, Any]]:
        """All metrics, headline ones first in their declared order, then the rest by name."""
        agg = aggregate(self.contributions(records))
        order = [m for m in self.headline if m in agg] + sorted(m for m in agg if m not in self.headline)
        return {m: agg[m] for m in order}

    def per_type(self, records: Sequence[Record]) -> dict[str, dict[str, Any]]:
        agg = aggregate(self.type_contributions(records))
        return {k: agg[k] for k in sorted(agg)}

    # ---- declarations and uncertainty ----------------------------------------------------------
    def metric_info(self, metric: str) -> MetricInfo:
        """The declaration of ``metric`` (see ``aggregations``; a mean metric's unit is "mean")."""
        base = metric.rsplit("/", 1)[-1]
        mean = base in self.mean_metrics
        keys = sorted((k for k in self.aggregations if metric == k or metric.endswith(k)), key=len, reverse=True)
        line = self.aggregations[keys[0]] if keys else (
            "mean of the values over samples" if mean else
            "passed / total over every contribution (undecided counts in total, not as passed)")
        return MetricInfo(line, "mean" if mean else "rate", True)

    def metric_units(self, records: Sequence[Record]) -> dict[str, tuple[list[float], list[int]]]:
        """Per metric, the (sum, count) each independent unit contributes; undecided counts 0 in the sum, as in the
        rate. A unit is one record, unless the benchmark overrides :meth:`contributions` (values that span records,
        e.g. FollowBench's CSL): then each contribution is its own unit."""
        out: dict[str, tuple[list[float], list[int]]] = {}
        if self._values_per_record():
            groups: Iterable[Iterable[tuple[str, Value]]] = (self.record_contributions(r) for r in records)
        else:
            groups = ([pair] for pair in self.contributions(records))
        for group in groups:
            for name, (total, count) in _unit_sums(group).items():
                sums, counts = out.setdefault(name, ([], []))
                sums.append(total)
                counts.append(count)
        return out

    def sample_values(self, records: Sequence[Record]) -> dict[str, dict[str, tuple[float, int]]] | None:
        """Per metric, ``{sample id: (sum, count)}`` (undecided counts 0), for paired tests between two runs on the
        same samples; None when the benchmark's values span samples (it overrides :meth:`contributions`)."""
        if not self._values_per_record():
            return None
        out: dict[str, dict[str, tuple[float, int]]] = {}
        for r in records:
            for name, (total, count) in _unit_sums(self.record_contributions(r)).items():
                before, n = out.setdefault(name, {}).get(str(r["id"]), (0.0, 0))
                out[name][str(r["id"])] = (before + total, n + count)
        return out

    def _values_per_record(self) -> bool:
        """Whether each record's values are its own (the benchmark keeps :meth:`contributions` as it is)."""
        return type(self).contributions is Benchmark.contributions

    def uncertainty(self, records: Sequence[Record], metrics: Iterable[str] | None = None
                    ) -> dict[str, dict[str, Any]]:
        """``{metric: {"stderr", "ci95"}}``: the cluster standard error and the seeded 95% percentile bootstrap
        interval over samples (:mod:`benchmarks.stats`), in the metric's own unit; None where a metric is not an
        average of sample values (e.g. Multi-IF's ``overall``, a mean of four rates) or has under two samples."""
        from benchmarks import stats

        units = self.metric_units(records)
        out: dict[str, dict[str, Any]] = {}
        for m in metrics if metrics is not None else units:
            if m not in units:
                out[m] = {"stderr": None, "ci95": None}
                continue
            sums, counts = units[m]
            ci = stats.cluster_bootstrap_ci(sums, counts) if len(sums) >= 2 else None
            out[m] = {"stderr": stats.ratio_stderr(sums, counts), "ci95": None if ci is None else list(ci)}
        return out


# ---------------------------------------------------------------------------------------- aggregation


def aggregate(pairs: Iterable[tuple[str, Value]]) -> dict[str, dict[str, Any]]:
    """The one aggregator: ``{name: {"passed", "total", "rate", "undecided"}}`` from (name, value) pairs.

    Booleans count as 1/0, None is undecided (in ``total``, not ``passed``), numbers are summed; ``rate``
    is passed / total (0.0 with no contributions). ``passed`` stays an int when every value was boolean.
    """
    acc: dict[str, list[Any]] = {}
    for name, v in pairs:
        a = acc.setdefault(name, [0, 0, 0, True])  # passed, total, undecided, all-bool
        a[1] += 1
        if v is None:
            a[2] += 1
        elif isinstance(v, bool):
            a[0] += int(v)
        elif isinstance(v, (int, float)):
            a[0] += v
            a[3] = False
        else:
            raise TypeError(f"metric {name!r}: value must be bool, None or a number, got {type(v).__name__}")
    out = {}
    for name, (passed, total, undecided, all_bool) in acc.items():
        p = int(passed) if all_bool else float(passed)
        out[name] = {"passed": p, "total": total, "rate": (p / total) if total else 0.0, "undecided": undecided}
    return out


# ------------------------------------------------------------------------------------ record readers


def turn_scores(record: Record, turn: int = 0, mode: str = "strict") -> Mapping[str, Any] | None:
    """The ScoredResponse dict of one turn in one mode (None when that turn was not scored)."""
    scores = record["turns"][turn].get("scores")
    return None if scores is None else scores[mode]


def constraint_verdicts(record: Record, turn: int = 0, mode: str = "strict") -> list[tuple[str, bool | None]]:
    """(constraint name, passed) for one turn, in constraint order."""
    s = turn_scores(record, turn, mode)
    return [] if s is None else [(c["name"], c["passed"]) for c in s["constraints"]]


def verdicts(record: Record, turn: int = 0, mode: str = "strict") -> list[bool | None]:
    return [p for _, p in constraint_verdicts(record, turn, mode)]


def all_passed(vs: Sequence[bool | None]) -> bool | None:
    """Prompt-level verdict: False if any failed, None if none failed but some undecided, else True."""
    if any(v is False for v in vs):
        return False
    if any(v is None for v in vs):
        return None
    return True


def _unit_sums(values: Iterable[tuple[str, Value]]) -> dict[str, tuple[float, int]]:
    """Per metric, the sum (undecided counts 0) and number of one unit's values."""
    out: dict[str, tuple[float, int]] = {}
    for name, v in values:
        total, count = out.get(name, (0.0, 0))
        out[name] = (total + (0.0 if v is None else float(v)), count + 1)
    return out


def samples_sha256(samples: Sequence[Sample]) -> str:
    """SHA-256 of the samples as evaluated (ids, messages, constraints with their parameters), whatever file
    layout they were read from: the same data from a JSONL copy or the Hub's Parquet gives the same hash, and a
    different ``--limit``, data release or converter gives another."""
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps(dataclasses.asdict(s), sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- loading


def read_local(name: str, path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL / JSON (list or {"data"|"rows": list}) / Parquet file, or a folder of them (sorted)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".json", ".parquet"))
        if not files:
            raise BenchmarkError(f"benchmark {name!r}: no .jsonl/.json/.parquet files in {str(path)!r}")
        return [r for f in files for r in read_local(name, f)]
    if not path.is_file():
        raise BenchmarkError(f"benchmark {name!r}: no such data file {str(path)!r}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise BenchmarkError(f"benchmark {name!r}: {path}: not UTF-8 text ({e.reason})") from None
        except json.JSONDecodeError as e:
            if e.msg != "Extra data":
                raise BenchmarkError(f"benchmark {name!r}: {path}: invalid JSON: {e.msg} (line {e.lineno})") from None
            # JSON Lines under a .json name (InFoBench's InfoBench.json, as its authors and the Hub ship it)
            return _read_jsonl(name, path)
        if isinstance(data, Mapping):
            data = data.get("data", data.get("rows"))
        if not isinstance(data, list):
            raise BenchmarkError(f"benchmark {name!r}: {path}: expected a JSON list of rows")
        return [_row(name, path, i + 1, r) for i, r in enumerate(data)]
    return _read_jsonl(name, path)


def _read_jsonl(name: str, path: Path) -> list[dict[str, Any]]:
    from verinstruct.jsonl import JSONLineError, read_objects

    try:
        return [row for _, row in read_objects(path)]
    except JSONLineError as e:
        raise BenchmarkError(f"benchmark {name!r}: {path} {e}") from None


def _row(name: str, path: Path, n: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise BenchmarkError(f"benchmark {name!r}: {path} row {n}: expected a JSON object, got {type(row).__name__}")
    return row


def load_hub(name: str, hub_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a Hub dataset through ``datasets``; any failure (offline, gated, missing) is one line."""
    from verifier.backends.transformers_backend import quiet_hub

    try:
        import datasets

        with quiet_hub():  # not a line per retry: the one error below says it all
            ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as e:  # network, auth, missing split: all mean "give a local copy"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BenchmarkError(
            f"benchmark {name!r}: cannot load {hub_id!r} from the Hugging Face Hub ({reason[:200]}); "
            "pass --data PATH (a local copy; `verif benchmarks` says what each benchmark reads)") from None
    return [dict(r) for r in ds]
