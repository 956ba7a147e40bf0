"""``verif eval --responses FILE``: score existing generations instead of generating.

Two row shapes are read (JSONL):

* IFEval's ``{"prompt", "response"}`` (optionally ``key``/``id``): single-turn only;
* InFoBench's output files: the data row plus ``output`` (the response; ``null`` when not generated), by ``id``;
* FollowBench's ``api_output/<model>/<category>_constraint.jsonl``: ``{"prompt", "choices": [{"message":
  {"content": response}}]}``, matched by prompt; ``--responses`` may name that folder (its ``*.jsonl``, sorted);
* Multi-IF's ``results/<model>/`` folder: ``<prefix>_step_<n>.csv`` per turn n (the data's columns plus
  ``responses``, the turn-n answer), matched by ``key``;
* this project's sample records (``{"id", "turns": [{"response": ...}, ...]}``, e.g. a previous run's
  ``samples/<benchmark>.jsonl``): any number of turns; a ``benchmark`` field, when present, must match.

A sample takes the row with its id (``key``/``id``), else the row with its exact first user prompt, else
the row on the same line as the sample's row in the benchmark data when its prompt is nearly the same
(difflib ratio >= 0.9: Google's response files are line-aligned with ``input_data.jsonl``, and in the GPT-4
file one prompt was reworded after the responses were made). Each such match is reported on stderr.

A sample with no response (no row, or a turn whose response is null) is handled by ``--missing-responses``
(:data:`MISSING_POLICIES`): ``error`` (the default) refuses the file, naming how many and the first ids;
``fail`` scores every constraint of that turn False without running a checker, as the authors' IFEval/IFBench
``run_eval.py`` does (``evaluation_lib.empty_output``: the prompt stays in every total, all instructions
False); ``skip`` leaves the sample out of the run (and of every total). Either way the summary counts them.
AllenAI's IFBench ``sample_output.jsonl`` has no response for 7 test prompts (keys 268-274).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.base import BenchmarkError, Sample
from benchmarks.runner import GenRequest
from verifier.backends.base import GenResult
from verinstruct.jsonl import JSONLineError, iter_lines

#: what ``--missing-responses`` may say (see the module docstring); the first is the default
MISSING_POLICIES = ("error", "fail", "skip")

#: a line-matched response's prompt must be at least this similar to the sample's (a rewording, not another prompt)
MIN_SIMILARITY = 0.9


class ResponseFile:
    """Responses looked up by (sample id, turn); built per benchmark with :meth:`for_samples`."""

    def __init__(self, path: Path) -> None:
        steps = sorted(path.glob("*_step_*.csv")) if path.is_dir() else []
        if steps:  # Multi-IF's results/<model>/ folder: one CSV per turn
            self.path, self.rows = path, _multi_if_steps(path, steps)
            return
        if path.is_dir():  # FollowBench's api_output/<model>/ folder: one file per category
            files = sorted(p for p in path.iterdir() if p.suffix == ".jsonl" and p.is_file())
            if not files:
                raise BenchmarkError(f"--responses: no .jsonl files in {str(path)!r}")
        elif path.is_file():
            files = [path]
        else:
            raise BenchmarkError(f"--responses: no such file {str(path)!r}")
        self.path = path
        self.rows: list[dict[str, Any]] = []
        for f in files:
            self._read(f, prefix=f"{f.name} " if len(files) > 1 else "")

    def _read(self, path: Path, prefix: str) -> None:
        for n, row in iter_lines(path):
            if isinstance(row, JSONLineError):
                raise BenchmarkError(f"--responses {path} {row}")
            if "turns" in row:
                turns = row["turns"]
                if not isinstance(turns, list) or not all(
                        isinstance(t, Mapping) and isinstance(t.get("response"), (str, type(None))) for t in turns):
                    raise BenchmarkError(f"--responses {path} line {n}: field 'turns' must be a list of "
                                         "objects with a 'response' string")
                texts = [t.get("response") for t in turns]
            elif isinstance(row.get("response"), str):
                texts = [row["response"]]
            elif "output" in row and isinstance(row["output"], (str, type(None))):  # InFoBench's output files
                texts = [row["output"]]
            elif isinstance(row.get("choices"), list):  # FollowBench's api_output files (OpenAI response shape)
                try:
                    content = row["choices"][0]["message"]["content"]
                except (IndexError, KeyError, TypeError):
                    content = 0
                if not isinstance(content, str):
                    raise BenchmarkError(f"--responses {path} line {n}: field 'choices[0].message.content' must be "
                                         "a string (FollowBench's api_output format)")
                texts = [content]
            else:
                raise BenchmarkError(f"--responses {path} line {n}: expected a 'response' string, an 'output' "
                                     "string (InFoBench), 'choices' (FollowBench) or a 'turns' list (this "
                                     "project's sample records)")
            rid = row.get("id", row.get("key"))
            self.rows.append({"line": f"{prefix}{n}" if prefix else n, "id": None if rid is None else str(rid),
                              "prompt": row.get("prompt"),
                              "benchmark": row.get("benchmark"), "texts": texts})

    def for_samples(self, benchmark: str, samples: Sequence[Sample], positions: Sequence[int] | None = None,
                    missing: str = "error") -> ResponseGenerator:
        """Match every sample to a row (see module docstring); ``positions[i]`` is sample i's data row index.

        ``missing`` is the ``--missing-responses`` policy; with ``fail`` or ``skip`` the generator's
        :attr:`ResponseGenerator.missing` lists the ids of samples lacking a response for some turn."""
        rows = [r for r in self.rows if r["benchmark"] in (None, benchmark)]
        by_id = {r["id"]: r for r in rows if r["id"] is not None}
        by_prompt: dict[str, dict[str, Any]] = {}
        for r in rows:
            if isinstance(r["prompt"], str):
                by_prompt.setdefault(r["prompt"], r)
        by_stripped = {p.strip(): r for p, r in reversed(list(by_prompt.items()))}
        used: set[int] = set()
        table: dict[str, list[str | None]] = {}
        unmatched: list[int] = []
        for i, s in enumerate(samples):
            prompt = _first_prompt(s)
            r = by_id.get(s.id) or by_prompt.get(prompt) or by_stripped.get((prompt or "").strip())
            if r is None or id(r) in used:
                unmatched.append(i)
                continue
            if r is by_id.get(s.id) and isinstance(r["prompt"], str) and prompt is not None and r["prompt"] != prompt \
                    and _similarity(r["prompt"], prompt) < MIN_SIMILARITY:
                raise BenchmarkError(f"--responses {self.path} line {r['line']}: id {s.id!r} is {benchmark} sample "
                                     f"{s.id!r} but its prompt is a different one")
            used.add(id(r))
            table[s.id] = r["texts"]
        absent: list[str] = []
        for i in unmatched:
            s = samples[i]
            pos = positions[i] if positions is not None else i
            r = self.rows[pos] if pos < len(self.rows) else None
            if r is None or id(r) in used or r["benchmark"] not in (None, benchmark) or (
                    r["id"] is not None and r["id"] != s.id) or _similarity(r["prompt"], _first_prompt(s)) < MIN_SIMILARITY:
                absent.append(s.id)
                continue
            used.add(id(r))
            table[s.id] = r["texts"]
            print(f"verif eval: {benchmark} sample {s.id!r} matched by line ({self.path.name} line {r['line']}); "
                  "its prompt differs", file=sys.stderr)
        if absent and missing == "error":
            raise BenchmarkError(
                f"--responses {self.path}: no response for {len(absent)} {benchmark} sample(s) ({_ids(absent)}: no "
                "row with that id, its prompt, or on its line); --missing-responses fail scores them as failing "
                "every constraint, as the authors' code does, skip leaves them out")
        for sid in absent:
            table[sid] = []
        lacking = [s.id for s in samples if missing != "error" and any(
            t >= len(table[s.id]) or table[s.id][t] is None for t in range(len(s.turns)))]
        return ResponseGenerator(table, str(self.path), missing if lacking else "error", lacking)


def _multi_if_steps(path: Path, files: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of Multi-IF's step files: per ``key``, the ``responses`` of step 1, 2, 3 as its turns' answers."""
    import csv
    import re

    by_step: dict[int, Path] = {}
    for f in files:
        m = re.search(r"_step_(\d+)\.csv$", f.name)
        if m:
            by_step[int(m.group(1))] = f
    if sorted(by_step) != list(range(1, len(by_step) + 1)):
        raise BenchmarkError(f"--responses {path}: Multi-IF step files must be _step_1.csv .. _step_N.csv, "
                             f"got steps {sorted(by_step)}")
    texts: dict[str, list[str | None]] = {}
    for step, f in sorted(by_step.items()):
        with f.open(newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                if "key" not in row or "responses" not in row:
                    raise BenchmarkError(f"--responses {f} line {n}: Multi-IF step files need 'key' and 'responses'")
                got = texts.setdefault(str(row["key"]), [])
                got.extend([None] * (step - 1 - len(got)))
                got.append(row["responses"])
    return [{"line": f"key {k}", "id": k, "prompt": None, "benchmark": None, "texts": t} for k, t in texts.items()]


def _similarity(a: str | None, b: str | None) -> float:
    if not isinstance(a, str) or not isinstance(b, str):
        return 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _ids(ids: Sequence[str], shown: int = 5) -> str:
    head = ", ".join(repr(i) for i in ids[:shown])
    return f"ids {head}" + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _first_prompt(s: Sample) -> str | None:
    for m in s.turns[0].messages if s.turns else ():
        if m.get("role") == "user":
            return m.get("content")
    return None


class ResponseGenerator:
    """Stored responses as a :class:`benchmarks.runner.Generator`.

    ``missing`` lists the samples lacking a response for some turn (only under ``fail`` or ``skip``); under
    ``fail`` such a turn comes back as ``""`` with finish reason :data:`benchmarks.runner.MISSING_RESPONSE`,
    which the runner scores as failing every constraint; otherwise it is a failed generation, as before."""

    def __init__(self, table: Mapping[str, Sequence[str | None]], source: str, policy: str = "error",
                 missing: Sequence[str] = ()) -> None:
        self.table, self.source, self.policy, self.missing = table, source, policy, list(missing)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        from benchmarks.runner import MISSING_RESPONSE

        out = []
        for r in requests:
            texts = self.table[r.sample_id]
            text = texts[r.turn] if r.turn < len(texts) else None
            if text is None and self.policy == "fail":
                out.append(GenResult("", None, MISSING_RESPONSE))
            else:
                out.append(GenResult(text, None if text is not None else
                                     f"{self.source}: no response for turn {r.turn + 1}", "stop"))
        return out
