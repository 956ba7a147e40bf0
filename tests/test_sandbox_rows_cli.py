"""A hostile row of ``verif score`` beside honest rows (process-per-row sandbox, issue 15): rows with the
hostile row's id, a row with its instruction but other code and plain rows keep their hand-known verdicts.

Apart from tests/test_sandbox_rows.py because the command line is not installed on the Python 3.10 line of
``.ci/run`` (only the sandbox and the Scorer are)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any


def _rows_module() -> Any:
    """tests/test_sandbox_rows.py (the attack and the honest checks), loaded by path (pytest imports test
    files with importlib: they are not importable by name)."""
    spec = importlib.util.spec_from_file_location("_sandbox_rows_sources", Path(__file__).with_name("test_sandbox_rows.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_ROWS = _rows_module()
F1_FORGE, HAS_OK, SHORT = _ROWS.F1_FORGE, _ROWS.HAS_OK, _ROWS.SHORT


def _raw(rid: str, prompt: str, functions: list[str], response: str) -> dict[str, Any]:
    return {"id": rid, "prompt": prompt, "checkers": [f"[rule] c{k}" for k in range(len(functions))],
            "functions": functions, "response": response}


def test_verif_score_hostile_row_forges_no_honest_row(tmp_path: Path):
    """F1 in a row of ``verif score`` beside honest rows: rows with the hostile row's id, a row with its
    instruction but other code, and plain rows; every honest verdict is the hand-known one."""
    from typer.testing import CliRunner

    from verinstruct import cli

    rows, expect = [], []
    for k in range(8):
        hostile_prompt = f"Reply with ok, briefly ({k})."
        rows.append(_raw("h", hostile_prompt, [F1_FORGE, HAS_OK, SHORT], "nope, far too long"))
        expect.append(None)
        for rid, prompt in (("h", f"Other task {k}."), ("h", hostile_prompt), (f"x{k}", f"Task {k}.")):
            resp = ("ok", "ok, but too long", "no", "nope, far too long")[(k + len(rows)) % 4]
            rows.append(_raw(rid, prompt, [HAS_OK, SHORT], resp))
            expect.append(["ok" in resp, len(resp) < 6])
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    cli._register()
    r = CliRunner().invoke(cli.app, ["score", "-i", str(src), "--no-llm", "-q", "-o", str(out)])
    assert r.exit_code == 0, r.output
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(scored) == len(rows)
    assert any(e == [False, False] for e in expect) and any(e == [True, True] for e in expect)
    for k, (s, e) in enumerate(zip(scored, expect, strict=True)):
        if e is not None:
            assert [c["passed"] for c in s["constraints"]] == e, (k, s)
        else:
            # the attack returns False: it runs first in its row's process (the rows holding the same
            # instruction and code would share it, and the attack could forge their verdicts: its own row)
            assert s["constraints"][0]["passed"] is False
