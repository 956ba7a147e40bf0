"""`verif report RUN_DIR...`: one self-contained HTML file per run (or per comparison of runs).

Why one file: a run is judged by its numbers but understood by its samples (which constraint types fail,
which prompts flipped between the base and the RL checkpoint, whether a judge says yes to anything). The
file carries its styles, its script (``benchmarks/html/report.js``, plain JS, no build step) and its data
inline, so it opens from ``file://`` with no network, can be mailed or attached to an issue, and shows the
same numbers as ``summary.json`` (they are copied from it, never recomputed in the page).

Size per sample is bounded: a response is stored once (the scored text only when thinking removal changed
it), the prompt of a turn is only the messages that turn added, and any text longer than ``TEXT_LIMIT``
characters is cut with a note pointing at the line of ``samples/<benchmark>.jsonl`` that holds it whole.

Comparisons (two or more runs) add what the page cannot compute from summaries alone: the exact McNemar test
(``benchmarks.stats.mcnemar_exact``) on prompt-level pass/fail of the samples two runs share, and the
constraints that flipped between them, grouped by constraint type.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks.base import BenchmarkError, all_passed
from benchmarks.compare import compare, load_summary
from benchmarks.stats import mcnemar_exact

#: characters of one text (prompt, response, reason) kept in the page; the rest stays in samples/*.jsonl
TEXT_LIMIT = 6000
#: characters of a constraint's reason / judge output kept in the page
REASON_LIMIT = 1500


@dataclass
class Run:
    """A run folder as ``verif eval --out DIR`` writes it: its summary and its records per benchmark."""

    path: Path
    summary: dict[str, Any]
    records: dict[str, list[dict[str, Any]]]


def partial_summary(root: Path) -> dict[str, Any]:
    """The summary of a run that has not finished (still running, or killed before ``summary.json``): rebuilt by
    the run's own aggregation from the complete records in ``samples/``, marked ``"partial": true``."""
    from benchmarks import get
    from benchmarks.report import build_summary
    from benchmarks.runner import BenchResult
    from verinstruct.jsonl import complete_records

    try:
        config = json.loads((root / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BenchmarkError(f"{root}: no summary.json and no readable run.json ({e})") from None
    results = [BenchResult(get(p.stem), complete_records(p), p) for p in sorted((root / "samples").glob("*.jsonl"))]
    if not results:
        raise BenchmarkError(f"{root}: no summary.json and no samples/*.jsonl yet")
    summary = build_summary(results, model=str(config.get("model")), generation=config.get("generation") or {},
                            judge=None)
    summary["partial"] = True
    return summary


def load_run(d: Path) -> Run:
    """``summary.json`` and every benchmark's ``samples/<name>.jsonl`` (complete records only); a run without
    ``summary.json`` yet (running, or interrupted) is shown from the records it has."""
    from verinstruct.jsonl import complete_records

    root = d if d.is_dir() else d.parent
    unfinished = d.is_dir() and not (d / "summary.json").exists() and (d / "run.json").is_file()
    summary = partial_summary(root) if unfinished else load_summary(d)
    records = {}
    for name, b in summary["benchmarks"].items():
        path = root / str(b.get("file") or f"samples/{name}.jsonl")
        if not path.is_file():
            raise BenchmarkError(f"{root}: summary.json lists benchmark {name!r} but {path} is missing")
        records[name] = complete_records(path)
    return Run(root, summary, records)


# ----------------------------------------------------------------------------------------- compaction


def _cut(text: str | None, limit: int, where: str) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n\n[... {len(text) - limit} more characters: see {where}]"


def _new_messages(messages: Sequence[Mapping[str, Any]] | None) -> list[list[str]]:
    """The messages this turn added: everything after the last assistant message (system + user, first turn)."""
    if not messages:
        return []
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return [[str(m.get("role", "")), str(m.get("content", ""))] for m in messages[last + 1:]]


def _source(check: str | None) -> str:
    """Where a verdict came from, as a reader names it: code (dataset code), registry (a checker), judge."""
    return {"llm": "judge", None: "?"}.get(check, check or "?")


class _Names:
    """A string table: constraint names repeat across thousands of samples, so each is stored once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def __call__(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.index[name]


def prompt_verdict(record: Mapping[str, Any], mode: str) -> bool | None:
    """A sample's prompt-level verdict in ``mode`` over all its scored turns (the report's pass/fail)."""
    vs = []
    for turn in record.get("turns") or ():
        scores = turn.get("scores")
        if scores and mode in scores:
            vs += [c.get("passed") for c in scores[mode].get("constraints", ())]
    return all_passed(vs)


def _compact(record: Mapping[str, Any], modes: Sequence[str], names: _Names, where: str) -> dict[str, Any]:
    turns = []
    for t in record.get("turns") or ():
        resp, scored = t.get("response"), t.get("scored_text")
        entry: dict[str, Any] = {"u": [[r, _cut(c, TEXT_LIMIT, where)] for r, c in _new_messages(t.get("messages"))],
                                 "r": _cut(resp, TEXT_LIMIT, where)}
        if scored is not None and scored != resp:
            entry["s"] = _cut(scored, TEXT_LIMIT, where)
        for key, src in (("k", "thinking"), ("e", "error"), ("f", "finish_reason")):
            if t.get(src) not in (None, "none"):
                entry[key] = t[src]
        if t.get("extra"):
            entry["x"] = t["extra"]
        scores = t.get("scores") or {}
        entry["c"] = {m: [[names(str(c.get("name"))), c.get("passed"), c.get("kind"), _source(c.get("check")),
                           _cut(c.get("reason") or "", REASON_LIMIT, where), c.get("error"), c.get("prob")]
                          for c in scores[m].get("constraints", ())]
                      for m in modes if m in scores}
        turns.append(entry)
    return {"v": prompt_verdict(record, modes[0]) if modes else None, "t": turns, "m": record.get("meta") or {}}


# ----------------------------------------------------------------------------------------- comparison


def _against_first(runs: Sequence[Run]) -> Iterator[tuple[int, str, Mapping[str, Any], dict[str, Any],
                                                           dict[str, Any]]]:
    """Each later run ``k`` and benchmark it shares with the first run: ``(k, benchmark, the first run's summary
    of it, the first run's records by id, run k's records by id)``."""
    base = runs[0]
    by_id = {bname: {r["id"]: r for r in recs} for bname, recs in base.records.items()}
    for k, run in enumerate(runs[1:], start=1):
        for bname, b in base.summary["benchmarks"].items():
            if bname in run.summary["benchmarks"]:
                yield k, bname, b, by_id[bname], {r["id"]: r for r in run.records[bname]}


def paired_tests(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Each later run against the first: McNemar on prompt-level pass/fail of the samples both decided."""
    out = []
    for k, bname, b, a_recs, b_recs in _against_first(runs):
        shared = [i for i in a_recs if i in b_recs]
        for mode in b.get("modes") or ["strict"]:
            pairs = [(prompt_verdict(a_recs[i], mode), prompt_verdict(b_recs[i], mode)) for i in shared]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            n_b = sum(1 for x, y in pairs if x and not y)
            n_c = sum(1 for x, y in pairs if not x and y)
            out.append({"benchmark": bname, "run": k, "mode": mode, "shared": len(shared), "paired": len(pairs),
                        "a_passed": sum(1 for x, _ in pairs if x), "b_passed": sum(1 for _, y in pairs if y),
                        "regressed": n_b, "fixed": n_c, "p_value": mcnemar_exact(n_b, n_c)})
    return out


def flips(runs: Sequence[Run], index: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Constraints that passed in the first run and failed in a later one (regressed), or the reverse (fixed),
    on the same sample, turn and position, grouped by constraint type; most regressions first."""
    out = []
    for k, bname, b, _, later in _against_first(runs):
        mode = (b.get("modes") or ["strict"])[0]
        groups: dict[str, dict[str, list[int]]] = {}
        for ra in runs[0].records[bname]:
            rb = later.get(ra["id"])
            if rb is None:
                continue
            for ta, tb in zip(ra.get("turns") or (), rb.get("turns") or (), strict=False):
                ca = ((ta.get("scores") or {}).get(mode) or {}).get("constraints", ())
                cb = ((tb.get("scores") or {}).get(mode) or {}).get("constraints", ())
                for x, y in zip(ca, cb, strict=False):
                    if x.get("name") != y.get("name") or x.get("passed") is None or y.get("passed") is None \
                            or x["passed"] == y["passed"]:
                        continue
                    g = groups.setdefault(str(x["name"]), {"regressed": [], "fixed": []})
                    lst = g["regressed" if x["passed"] else "fixed"]
                    s = index[(bname, ra["id"])]
                    if not lst or lst[-1] != s:
                        lst.append(s)
        for name, g in sorted(groups.items(), key=lambda kv: (-len(kv[1]["regressed"]), -len(kv[1]["fixed"]), kv[0])):
            out.append({"benchmark": bname, "run": k, "type": name, **g})
    return out


# ----------------------------------------------------------------------------------------- the page


def build_data(runs: Sequence[Run]) -> dict[str, Any]:
    """Everything the page shows, as plain JSON (numbers from summary.json as they are)."""
    names = _Names()
    benches: list[str] = []
    for run in runs:
        benches += [b for b in run.summary["benchmarks"] if b not in benches]
    index: dict[tuple[str, str], int] = {}
    samples: list[list[Any]] = []
    for k, run in enumerate(runs):
        for bname, recs in run.records.items():
            modes = list(run.summary["benchmarks"][bname].get("modes") or ["strict"])
            file = run.summary["benchmarks"][bname].get("file") or f"samples/{bname}.jsonl"
            for line, r in enumerate(recs, start=1):
                key = (bname, str(r["id"]))
                if key not in index:
                    index[key] = len(samples)
                    samples.append([benches.index(bname), str(r["id"]), [None] * len(runs)])
                samples[index[key]][2][k] = _compact(r, modes, names, f"{run.path / file} line {line}")
    data: dict[str, Any] = {
        "runs": [{"label": chr(ord("A") + k) if k < 26 else f"R{k}", "dir": str(run.path),
                  **{f: run.summary.get(f) for f in ("model", "generation", "judge", "versions", "partial")},
                  "benchmarks": {n: {f: v for f, v in b.items() if f != "file"}
                                 for n, b in run.summary["benchmarks"].items()}}
                 for k, run in enumerate(runs)],
        "benches": benches, "names": names.names, "samples": samples,
    }
    if len(runs) > 1:
        data["deltas"] = compare([(str(r.path), r.summary) for r in runs], all_metrics=True)
        data["paired"] = paired_tests(runs)
        data["flips"] = flips(runs, index)
    return data


def _asset(name: str) -> str:
    return resources.files("benchmarks").joinpath("html", name).read_text(encoding="utf-8")


def render(data: Mapping[str, Any]) -> str:
    """The HTML page: styles, script and data inline (``<`` escaped so no text can close the script tag)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    runs = data["runs"]
    title = ("verif report: " + runs[0]["model"]) if len(runs) == 1 else \
        "verif compare: " + " vs ".join(str(r["model"]) for r in runs)
    parts = {"title": html.escape(title), "style": _asset("report.css"), "data": payload, "script": _asset("report.js")}
    # one pass over the template: text inside the data can never be taken for a placeholder
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], _asset("report.html"))


def write_report(dirs: Sequence[Path], out: Path) -> Path:
    """Read the run folders and write one self-contained HTML file to ``out``."""
    if not dirs:
        raise BenchmarkError("no run directory given")
    runs = [load_run(Path(d)) for d in dirs]
    text = render(build_data(runs))
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a page
    return out
