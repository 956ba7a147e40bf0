"""`verif score` verifier options: --granularity (VerIF's soft factor is one item-level judgement) and
--api-key, against `verif serve`'s app in-process over loopback HTTP with a fake model."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult
from verifier.server import create_app, serve_in_thread
from verinstruct.cli import score as score_cli

RAW = Path(__file__).resolve().parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


def _llm(name: str, text: str) -> dict:
    return {"name": name, "kind": "soft", "text": text, "check": {"type": "llm"}}


#: typed rows: 2 + 1 llm constraints, no dataset code (so no other LLM calls)
ROWS = [
    {"id": "a", "prompt": "Say hi.", "response": "hi", "constraints": [_llm("tone", "Be friendly."),
                                                                      _llm("brief", "At most 5 words.")]},
    {"id": "b", "prompt": "Describe rain.", "response": "Wet.", "constraints": [_llm("style", "Poetic.")]},
]
YES = {"Yes", "yes", "[[1]]", "是"}


class Judge:
    """Says yes to everything; records the prompts it scored."""

    kind = "fake"
    model = "judge"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        return [GenResult("Yes") for _ in batch]

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        self.prompts += [m[-1]["content"] for m in batch]
        return [ScoreResult({c: -0.1 if c in YES else -2.5 for c in candidates}) for _ in batch]

    def close(self) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Judge]]:
    judge = Judge()
    with serve_in_thread(create_app(judge, api_key="k3y")) as root:
        yield root + "/v1", judge


def run(*args: str) -> object:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    score_cli.register(app)
    return CliRunner().invoke(app, ["score", *args])


def _llm_checks(path: Path) -> list[tuple[str, dict]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["id"], c) for r in rows for c in r["constraints"] if c["check"] == "llm"]


def _score(tmp_path: Path, url: str, *extra: str) -> tuple[object, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src, out = tmp_path / "rows.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    args = ["--input", str(src), "--verifier", "openai:judge", "--base-url", url, "-o", str(out), "-q"]
    return run(*args, *extra), out


def test_granularity_item_judges_each_rows_llm_constraints_once(
    server: tuple[str, Judge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VERIF_API_KEY", raising=False)
    url, judge = server
    r, out = _score(tmp_path, url, "--api-key", "k3y")
    assert r.exit_code == 0, r.output
    # distinct prompts: a prompt's candidates may reach the server in two micro-batches
    assert len(set(judge.prompts)) == 3 and not any("[[1]]" in p for p in judge.prompts)  # one per constraint
    judge.prompts.clear()
    r, out = _score(tmp_path / "item", url, "--granularity", "item", "--api-key", "k3y")
    assert r.exit_code == 0, r.output
    prompts = sorted(set(judge.prompts), key=judge.prompts.index)
    assert len(prompts) == 2 and all("[[1]]" in p for p in prompts)  # one per row, item template
    # rows reach the server concurrently: which prompt comes first is not fixed
    assert sorted(("Be friendly." in p and "At most 5 words." in p, "Poetic." in p) for p in prompts) \
        == [(False, True), (True, False)]
    checks = _llm_checks(out)
    assert len(checks) == 3
    for _, c in checks:  # P(yes) = 1 / (1 + e^(-2.5 + 0.1)) from the fake judge's two answers
        assert c["passed"] is True and c["prob"] == pytest.approx(1 / (1 + math.exp(-2.4)))
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert meta["granularity"] == "item"
    # resuming with the other granularity would mix verdicts: refused
    again = run("--input", str(tmp_path / "item" / "rows.jsonl"), "--verifier", "openai:judge", "--base-url", url,
                "-o", str(out), "--api-key", "k3y")
    assert again.exit_code == 2 and "granularity" in again.output


def test_the_key_can_come_from_the_environment(
    server: tuple[str, Judge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, judge = server
    monkeypatch.setenv("VERIF_API_KEY", "k3y")
    r, out = _score(tmp_path, url)
    assert r.exit_code == 0, r.output
    assert judge.prompts and all(c["passed"] is True for _, c in _llm_checks(out))


def test_without_the_key_llm_verdicts_are_undecided(
    server: tuple[str, Judge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, judge = server
    monkeypatch.delenv("VERIF_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r, out = _score(tmp_path, url)
    assert not judge.prompts
    checks = _llm_checks(out)
    assert checks and all(c["passed"] is None and "401" in c["error"] for _, c in checks)


def test_bad_granularity_and_misplaced_key_are_one_line_errors(tmp_path: Path) -> None:
    r = run("--input", str(RAW), "--granularity", "row")
    assert r.exit_code == 2 and "--granularity must be constraint or item" in r.output
    r = run("--input", str(RAW), "--verifier", "transformers:default", "--api-key", "x", "-o", str(tmp_path / "o"))
    assert r.exit_code == 2 and "API key is only for openai" in r.output
