"""Deterministic perturbations of IFBench's sample outputs: a large IFBench-format input for the benchmark and
the differential check against the reference (``perf/bench_ifbench.py``, ``perf/diff_ifbench.py``).

Each variant of a response is one edit the issue names (case changes, dropped or added lines, punctuation
removed, text truncated or duplicated, markdown stripped) or an edge case (empty, one word, unicode, trailing
whitespace, very long), drawn with a seeded ``random.Random`` so the file is the same on every run.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "data" / "ifbench" / "reference_verdicts.jsonl"
#: their reference checkers need NLTK data that is not installable here: left out of generated rows
NOT_RUNNABLE = frozenset(("ratio:stop_words", "words:start_verb"))

_MD_RE = re.compile(r"[*_#`>]+")


def _lines(f: Callable[[list[str], random.Random], list[str]]) -> Callable[[str, random.Random], str]:
    return lambda s, rng: "\n".join(f(s.split("\n"), rng))


def _drop_line(lines: list[str], rng: random.Random) -> list[str]:
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    return lines


def _add_line(lines: list[str], rng: random.Random) -> list[str]:
    extra = rng.choice(["", "Sure! Here is my answer:", "* extra bullet", "Thanks for asking.", "  indented"])
    lines.insert(rng.randrange(len(lines) + 1), extra)
    return lines


def _truncate(s: str, rng: random.Random) -> str:
    return s[: rng.randrange(len(s) + 1)] if s else s


def _swap_case(s: str, rng: random.Random) -> str:
    return rng.choice([str.upper, str.lower, str.title, str.swapcase, str.capitalize])(s)


def _unicode(s: str, rng: random.Random) -> str:
    extra = rng.choice(["😀", "ñandú", "日本語の文", "‽", "“quoted”", "naïve café", "\u200b", "🇫🇷 ok."])
    i = rng.randrange(len(s) + 1)
    return s[:i] + extra + s[i:]


PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "same": lambda s, rng: s,
    "upper/lower/title case": _swap_case,
    "drop a line": _lines(_drop_line),
    "add a line": _lines(_add_line),
    "remove punctuation": lambda s, rng: s.translate(str.maketrans("", "", string.punctuation)),
    "truncate": _truncate,
    "duplicate": lambda s, rng: s + rng.choice(["", "\n", "\n\n", " "]) + s,
    "strip markdown": lambda s, rng: _MD_RE.sub("", s),
    "trailing whitespace": lambda s, rng: s + rng.choice([" ", "\n", "\n\n", "\t \n"]),
    "insert unicode": _unicode,
    "first word only": lambda s, rng: (s.split() or [""])[0],
    "empty": lambda s, rng: rng.choice(["", " ", "\n"]),
    "very long": lambda s, rng: (s + "\n") * 8,
}


def load_rows(path: Path = REF) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _iter_perturbed(seed: int, rows: list[dict]) -> Iterator[dict]:
    """The perturbed rows in order, without end: generation step ``k`` uses sample row ``k mod len(rows)``
    (left out when none of its ids is runnable), its perturbation cycling before it is drawn at random."""
    rng = random.Random(seed)
    names = list(PERTURBATIONS)
    for k in itertools.count():
        r = rows[k % len(rows)]
        keep = [j for j, i in enumerate(r["instruction_id_list"]) if i not in NOT_RUNNABLE]
        if not keep:
            yield {}
            continue
        name = names[k % len(names)] if k < len(rows) * len(names) else rng.choice(names)
        yield {
            "key": f"{r['key']}/{k}",
            "prompt": r["prompt"],
            "instruction_id_list": [r["instruction_id_list"][j] for j in keep],
            "kwargs": [r["kwargs"][j] for j in keep],
            "response": PERTURBATIONS[name](r["response"], rng),
            "perturbation": name,
        }  # fmt: skip


def perturbed_rows(n_rows: int, seed: int = 0, rows: list[dict] | None = None) -> list[dict]:
    """The rows of the first ``n_rows`` generation steps (``key``, ``prompt``, ``instruction_id_list``,
    ``kwargs``, ``response``, plus ``perturbation``), cycling over the sample rows; the steps on a row
    without runnable ids are left out, so there are fewer than ``n_rows``."""
    steps = itertools.islice(_iter_perturbed(seed, rows if rows is not None else load_rows()), n_rows)
    return [r for r in steps if r]


def perturbed_file(n_rows: int, seed: int = 0) -> list[dict]:
    """Exactly ``n_rows`` rows: the first ones :func:`perturbed_rows` gives (the whole-process benchmark's
    file: 7,911 rows, 27 per sample row as IFEval's is)."""
    return list(itertools.islice((r for r in _iter_perturbed(seed, load_rows()) if r), n_rows))


def write_jsonl(rows: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
