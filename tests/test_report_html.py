"""The HTML report in a real browser (headless Debian chromium driven by Playwright): the numbers on the page
are read from the DOM and compared with ``summary.json``; filters, the sample view, keyboard navigation and a
comparison of two runs are checked against the runs' own ``samples/*.jsonl`` records. One browser for the
whole module (CI has 2 cores). The screenshot it takes is ``docs/report.png`` (shown in the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from verinstruct.cli import _register, app

_register()

ROOT = Path(__file__).resolve().parents[1]
IFEVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ifeval"
CHROMIUM = os.environ.get("VERINSTRUCT_CHROMIUM", "/usr/bin/chromium")
THOUGHT = "Plan: answer in lowercase only."
HELDOUT_DATA = ROOT / "tests" / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (playwright)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()
    assert not errors, f"the page logged errors: {errors}"


def _eval(out: Path, responses: Path, limit: int = 20) -> Path:
    rel = os.path.relpath(responses, Path.cwd())  # the model name shows the path as given: stable in the screenshot
    res = CliRunner().invoke(app, ["eval", "--responses", rel, "--benchmarks", "ifeval", "--data",
                                   str(IFEVAL / "input_data.jsonl"), "--limit", str(limit), "--out", str(out),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's command on 20 IFEval prompts with GPT-4's published responses: it ends with report.html."""
    out = _eval(tmp_path_factory.mktemp("runs") / "gpt4", IFEVAL / "responses_gpt4.jsonl")
    assert (out / "report.html").is_file()
    return out


@pytest.fixture(scope="module")
def run_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second 'checkpoint', a reasoning model: each answer lowercased (fixes lowercase constraints, breaks
    capitals) after a ``<think>`` block that the runner removes before scoring."""
    d = tmp_path_factory.mktemp("resp")
    rows = [json.loads(line) for line in (IFEVAL / "responses_gpt4.jsonl").read_text().splitlines() if line.strip()]
    path = d / "responses_lower.jsonl"
    path.write_text("".join(json.dumps({**r, "response": f"<think>{THOUGHT}</think>\n" + r["response"].lower()}) + "\n"
                            for r in rows))
    return _eval(d / "lower", path)


def _records(run: Path, bench: str = "ifeval") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "samples" / f"{bench}.jsonl").read_text().splitlines()]


def _strict_verdicts(rec: dict[str, Any], mode: str = "strict") -> list[bool | None]:
    return [c["passed"] for t in rec["turns"] for c in (t["scores"] or {}).get(mode, {}).get("constraints", [])]


def _open(page: Any, html: Path) -> None:
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")


def _visible_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#list .row", "rs => rs.map(r => r.dataset.id)")


# ------------------------------------------------------------------------------- page vs summary.json


def page_disagreements(page: Any, summary: dict[str, Any], run: int = 0) -> list[str]:
    """Every place where the numbers shown on the page differ from ``summary.json`` (empty: they agree)."""
    bad = []
    for bname, b in summary["benchmarks"].items():
        means = set(b.get("means") or ())
        rows = page.eval_on_selector_all(
            f"table.summary[data-bench='{bname}'] tr[data-metric]",
            f"""trs => trs.map(tr => [tr.dataset.metric, tr.querySelector("td.value[data-run='{run}']").textContent,
                                      tr.querySelector("td.count[data-run='{run}']").textContent])""")
        shown = {m: (v, c) for m, v, c in rows}
        if set(shown) != set(b["metrics"]):
            bad.append(f"{bname}: metrics on the page {sorted(shown)} != summary.json {sorted(b['metrics'])}")
        for m, v in b["metrics"].items():
            if m not in shown:
                continue
            value, count = shown[m]
            want = round(v["rate"], 2) if m in means else round(100 * v["rate"], 1)
            got = float(value.rstrip("%"))
            passed = v["passed"] if isinstance(v["passed"], int) else round(v["passed"], 2)
            if abs(got - want) > 1e-9 or count != f"{passed}/{v['total']}":
                bad.append(f"{bname}/{m}: page shows {value} {count}, summary.json has rate {v['rate']} "
                           f"({v['passed']}/{v['total']})")
        bars = page.eval_on_selector_all(
            f".bar[data-bench='{bname}'][data-run='{run}']",
            "bs => bs.map(b => [b.dataset.type, b.querySelector('.txt').textContent])")
        shown_pt = dict(bars)
        if set(shown_pt) != set(b.get("per_type") or {}):
            bad.append(f"{bname}: per-type bars {sorted(shown_pt)} != summary.json {sorted(b.get('per_type') or {})}")
        for t, v in (b.get("per_type") or {}).items():
            m = re.search(r"([\d.]+)% \((\d+)/(\d+)", shown_pt.get(t, ""))
            if not m or abs(float(m[1]) - round(100 * v["rate"], 1)) > 1e-9 or (int(m[2]), int(m[3])) != (v["passed"], v["total"]):
                bad.append(f"{bname} type {t}: page shows {shown_pt.get(t)!r}, summary.json has {v}")
    return bad


def test_report_numbers_equal_summary_json(page: Any, run_a: Path) -> None:
    summary = json.loads((run_a / "summary.json").read_text())
    _open(page, run_a / "report.html")
    assert page_disagreements(page, summary) == []
    assert page.inner_text("#count") == "20 of 20 samples"


def test_the_check_fails_when_the_page_disagrees(page: Any, run_a: Path, tmp_path: Path) -> None:
    """A page whose data says 13 passed where summary.json says 12 is caught (the check above can fail)."""
    summary = json.loads((run_a / "summary.json").read_text())
    m = summary["benchmarks"]["ifeval"]["metrics"]["prompt_strict"]
    text = (run_a / "report.html").read_text()
    needle = f'"prompt_strict":{{"passed":{m["passed"]},"total":{m["total"]},"rate":{m["rate"]}'
    assert text.count(needle) == 1
    bad_page = tmp_path / "bad.html"
    bad_page.write_text(text.replace(needle, needle.replace(f'"passed":{m["passed"]}', f'"passed":{m["passed"] + 1}')))
    _open(page, bad_page)
    found = page_disagreements(page, summary)
    assert len(found) == 1 and "ifeval/prompt_strict" in found[0]


# ------------------------------------------------------------------------------------ the sample browser


def test_filters_show_the_samples_the_records_say(page: Any, run_a: Path) -> None:
    recs = _records(run_a)
    _open(page, run_a / "report.html")
    page.select_option("#f-verdict", "failed")
    failed = [r["id"] for r in recs if False in _strict_verdicts(r)]
    assert 0 < len(failed) < len(recs)
    assert _visible_ids(page) == failed
    assert page.inner_text("#count") == f"{len(failed)} of {len(recs)} samples"
    page.select_option("#f-verdict", "passed")
    assert _visible_ids(page) == [r["id"] for r in recs if all(_strict_verdicts(r))]

    # a chart bar lists the samples behind it; the verdict filter then applies to that constraint type
    page.select_option("#f-verdict", "")
    page.click(".bar[data-type='length_constraints:number_words']")
    having = [r for r in recs if any(c["name"] == "length_constraints:number_words"
                                     for c in r["turns"][0]["scores"]["strict"]["constraints"])]
    assert _visible_ids(page) == [r["id"] for r in having]
    page.select_option("#f-verdict", "failed")
    assert _visible_ids(page) == [r["id"] for r in having if any(
        c["name"] == "length_constraints:number_words" and c["passed"] is False
        for c in r["turns"][0]["scores"]["strict"]["constraints"])]

    page.select_option("#f-type", "")
    page.select_option("#f-verdict", "")
    page.fill("#f-text", "raymond iii")
    page.wait_for_function("document.getElementById('count').textContent.startsWith('1 of')")
    assert _visible_ids(page) == ["1000"]


def test_a_sample_shows_its_verdicts(page: Any, run_a: Path) -> None:
    rec = next(r for r in _records(run_a) if r["id"] == "1000")
    _open(page, run_a / "report.html")
    page.click("#list .row[data-id='1000']")
    detail = page.locator("#detail")
    assert "Raymond III" in detail.inner_text()
    for mode in ("strict", "loose"):
        for c in rec["turns"][0]["scores"][mode]["constraints"]:
            cell = detail.locator(f"tr[data-constraint='{c['name']}'] td.verdict[data-mode='{mode}'] span")
            assert cell.get_attribute("data-verdict") == {True: "passed", False: "failed", None: "undecided"}[c["passed"]]
            assert c["reason"] in detail.locator(f"tr[data-constraint='{c['name']}'] td.reason").inner_text()
    # this sample failed (288 words, need at least 300): the page says so in words, not by colour alone
    assert "\u2717 failed" in detail.inner_text() and "288 words" in detail.inner_text()
    page.screenshot(path=str(ROOT / "docs" / "report.png"), full_page=True)


def test_keyboard_moves_through_the_samples(page: Any, run_a: Path) -> None:
    recs = _records(run_a)
    _open(page, run_a / "report.html")
    page.focus("#list")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.locator("#detail h3").first.inner_text() == f"ifeval / {recs[1]['id']}"
    assert page.get_attribute("#list", "aria-activedescendant") == "row-1"
    page.keyboard.press("End")
    assert page.locator("#detail h3").first.inner_text() == f"ifeval / {recs[-1]['id']}"
    # the address names the open sample, and opening that address opens it again
    assert page.url.endswith(f"#sample=ifeval/{recs[-1]['id']}")
    page.goto((run_a / "report.html").resolve().as_uri() + f"#sample=ifeval/{recs[3]['id']}")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#detail h3").first.inner_text() == f"ifeval / {recs[3]['id']}"
    # "/" jumps to the search box
    page.focus("#list")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "f-text"


# --------------------------------------------------------------------------- soft constraints (the judge)


class _ScoreJudge:
    """A judge backend for score mode: log P('Yes') high unless the judged text contains 'BAD'."""

    kind, model = "fake", "fake-score-judge"

    def generate(self, batch: Sequence[Any], config: Any) -> list[Any]:
        raise NotImplementedError

    def score(self, batch: Sequence[Any], candidates: Sequence[str]) -> list[Any]:
        from verifier.backends.base import ScoreResult

        out = []
        for msgs in batch:
            good = "BAD" not in "\n".join(m["content"] for m in msgs)
            out.append(ScoreResult({c: (-0.3 if c.strip().lower().startswith("y") == good else -1.6) for c in candidates}))
        return out

    def close(self) -> None:
        pass


def test_judge_verdicts_show_source_reason_and_p_yes(page: Any, tmp_path: Path) -> None:
    from benchmarks.html_report import write_report
    from benchmarks.report import build_summary, write_outputs
    from benchmarks.responses import ResponseFile
    from benchmarks.runner import RunOptions, run_benchmark
    from benchmarks.verinstruct_heldout import BENCHMARK as HELDOUT
    from verifier import Verifier, load_template
    from verinstruct.scorer import Scorer

    samples = HELDOUT.load_samples(HELDOUT_DATA, 8)
    gen = ResponseFile(HELDOUT_DATA).for_samples(HELDOUT.name, samples)
    verifier = Verifier(backend=_ScoreJudge(), mode="score", template=load_template("en"))
    with Scorer(verifier) as sc:
        res = run_benchmark(HELDOUT, samples, gen, lambda _: sc, tmp_path, RunOptions(progress=False))
    summary = build_summary([res], model="fixture-responses", generation={}, judge={"verifier": "fake", "used": True})
    write_outputs(tmp_path, summary)
    write_report([tmp_path], tmp_path / "report.html")
    _open(page, tmp_path / "report.html")
    assert page_disagreements(page, json.loads((tmp_path / "summary.json").read_text())) == []

    rec = next(r for r in res.records if any(c["check"] == "llm" for c in r["turns"][0]["scores"]["strict"]["constraints"]))
    soft = next(c for c in rec["turns"][0]["scores"]["strict"]["constraints"] if c["check"] == "llm")
    assert soft["prob"] is not None
    page.click(f"#list .row[data-id='{rec['id']}']")
    row = page.locator(f"#detail tr[data-constraint='{soft['name']}']")
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "judge"  # source
    assert cells[-1] == f"{soft['prob']:.3f}"  # P(yes)
    assert soft["reason"] in cells[-2]
    assert row.locator("td.verdict span").get_attribute("data-verdict") == ("passed" if soft["passed"] else "failed")
    # the RL reward's parts of this turn (verinstruct held-out's extra scores), as recorded
    reward = rec["turns"][0]["extra"]["reward"]
    shown = dict(zip(page.locator("#detail table[data-extra='reward'] th").all_inner_texts(),
                     page.locator("#detail table[data-extra='reward'] td").all_inner_texts(), strict=True))
    assert float(shown["score"]) == pytest.approx(reward["score"], abs=5e-4)
    assert float(shown["hard_pass_rate"]) == pytest.approx(reward["hard_pass_rate"], abs=5e-4)


# ------------------------------------------------------------------------------------------ comparison


def test_comparison_shows_deltas_paired_test_and_flips(page: Any, run_a: Path, run_b: Path, tmp_path: Path) -> None:
    from benchmarks.stats import mcnemar_exact

    out = tmp_path / "cmp.html"
    res = CliRunner().invoke(app, ["report", str(run_a), str(run_b), "--out", str(out)])
    assert res.exit_code == 0, res.output
    _open(page, out)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (run_a, run_b))
    assert page_disagreements(page, sa, run=0) == [] and page_disagreements(page, sb, run=1) == []

    # deltas in points, from the two summaries
    for m, v in sa["benchmarks"]["ifeval"]["metrics"].items():
        d = 100 * (sb["benchmarks"]["ifeval"]["metrics"][m]["rate"] - v["rate"])
        shown = page.inner_text(f"table.summary tr[data-metric='{m}'] td.delta")
        assert f"{d:+.1f} pt" in shown if round(d, 1) else shown == "+0.0 pt" or shown.endswith("0.0 pt")

    # the paired test: discordant prompt-level verdicts counted from the records
    ra, rb = {r["id"]: r for r in _records(run_a)}, {r["id"]: r for r in _records(run_b)}
    va = {i: all(_strict_verdicts(r)) for i, r in ra.items()}
    vb = {i: all(_strict_verdicts(r)) for i, r in rb.items()}
    b = sum(1 for i in va if va[i] and not vb[i])
    c = sum(1 for i in va if not va[i] and vb[i])
    assert b + c > 0
    cells = page.locator("table.paired tr").nth(1).locator("td").all_inner_texts()
    assert cells[2] == "strict" and cells[3:5] == ["20", "20"] and cells[7:9] == [str(b), str(c)]
    assert float(cells[9]) == pytest.approx(mcnemar_exact(b, c), abs=5e-4)

    # the Change filter: prompt-level verdicts that differ between the runs
    page.select_option("#f-flip", "regressed")
    assert _visible_ids(page) == [i for i in va if va[i] and not vb[i]]
    page.select_option("#f-flip", "fixed")
    assert _visible_ids(page) == [i for i in va if not va[i] and vb[i]]
    page.select_option("#f-flip", "")

    # flips by constraint type: lowercasing fixes english_lowercase constraints
    fixed = [i for i, r in ra.items() for x, y in zip(r["turns"][0]["scores"]["strict"]["constraints"],
                                                         rb[i]["turns"][0]["scores"]["strict"]["constraints"], strict=True)
             if x["name"] == "change_case:english_lowercase" and x["passed"] is False and y["passed"] is True]
    assert fixed
    row = page.locator("table.flips tr", has_text="change_case:english_lowercase")
    row.locator("td").nth(4).locator("button").click()
    assert _visible_ids(page) == fixed
    # the same sample side by side: run A fails it, run B passes it
    page.click(f"#list .row[data-id='{fixed[0]}']")
    cols = page.locator("#detail .cols").first.locator(":scope > div")
    assert cols.count() == 2
    for k, want in ((0, "failed"), (1, "passed")):
        cell = cols.nth(k).locator("tr[data-constraint='change_case:english_lowercase'] td.verdict[data-mode='strict'] span")
        assert cell.get_attribute("data-verdict") == want
    # B's reasoning is kept but collapsed: the scored answer is shown, the full response behind a <details>
    reasoning = cols.nth(1).locator("details")
    assert reasoning.count() == 1 and reasoning.get_attribute("open") is None
    assert THOUGHT not in cols.nth(1).inner_text()
    reasoning.locator("summary").click()
    assert THOUGHT in reasoning.inner_text()
    assert cols.nth(0).locator("details").count() == 0


def test_report_command_errors_are_one_line(tmp_path: Path, run_a: Path) -> None:
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no summary.json" in res.output
    broken = tmp_path / "broken"
    shutil.copytree(run_a, broken)
    (broken / "samples" / "ifeval.jsonl").unlink()
    res = CliRunner().invoke(app, ["report", str(broken)])
    assert res.exit_code == 2 and "ifeval" in res.output and "missing" in res.output


def test_intervals_and_benchmark_version_when_the_summary_has_them(page: Any, run_a: Path, tmp_path: Path) -> None:
    """summary.json may carry ``stderr``/``ci95`` per metric and ``version``/``data_sha256``/``metric_info`` per
    benchmark (older runs do not): shown when present, a dash when null."""
    run = tmp_path / "with_ci"
    shutil.copytree(run_a, run)
    s = json.loads((run / "summary.json").read_text())
    b = s["benchmarks"]["ifeval"]
    b["metrics"]["prompt_strict"].update(stderr=0.1124, ci95=[0.4, 0.8])
    b["metrics"]["inst_loose"].update(stderr=None, ci95=None)
    b.update(version="1.0.2", data_sha256="ab12" * 16, metric_info={
        m: {"aggregation": "mean", "unit": "rate", "higher_is_better": True} for m in b["metrics"]})
    (run / "summary.json").write_text(json.dumps(s))
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    _open(page, run / "report.html")
    assert page_disagreements(page, s) == []
    row = page.locator("table.summary tr[data-metric='prompt_strict']")
    assert row.locator("td.ci").inner_text() == "[40.0, 80.0]" and "\u00b111.2" in row.inner_text()
    assert page.locator("table.summary tr[data-metric='inst_loose'] td.ci").inner_text() == "\u2014"
    assert "version: 1.0.2" in page.inner_text("#summary") and "ab12ab12ab12" in page.inner_text("#summary")


def test_hostile_long_and_multi_turn_text_is_shown_as_text(page: Any, tmp_path: Path) -> None:
    """A response that closes the script tag or looks like a template placeholder is shown literally; a
    40,000-character response is cut (the rest named by file and line); a later turn shows only its new message."""
    import benchmarks as registry
    from benchmarks.report import build_summary, write_outputs
    from benchmarks.runner import BenchResult, append_records

    hostile = '</script><script>document.title="pwned"</script> {{data}} {{script}} <b>not bold</b> &amp;'
    long = "word " * 8000

    def turn(msgs: list[dict[str, str]], response: str, passed: bool) -> dict[str, Any]:
        c = [{"name": "punctuation:no_comma", "kind": "hard", "check": "registry", "passed": passed, "reason": hostile}]
        sr = {"id": "x", "constraints": c, "hard": {"passed": int(passed), "total": 1, "undecided": 0}}
        return {"messages": msgs, "response": response, "scored_text": response, "thinking": "none", "error": None,
                "finish_reason": "stop", "prompt_tokens": 0, "completion_tokens": 0,
                "scores": {"strict": sr, "loose": sr}}

    first = [{"role": "user", "content": "first question"}]
    second = first + [{"role": "assistant", "content": "first answer"}, {"role": "user", "content": "second question"}]
    recs = [{"id": "h1", "benchmark": "ifeval", "meta": {}, "turns": [turn([{"role": "user", "content": hostile}], hostile, True)]},
            {"id": "long", "benchmark": "ifeval", "meta": {}, "turns": [turn(first, long, False)]},
            {"id": "mt", "benchmark": "ifeval", "meta": {}, "turns": [turn(first, "first answer", True),
                                                                     turn(second, "second answer", False)]}]
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    append_records(run / "samples" / "ifeval.jsonl", recs)
    summary = build_summary([BenchResult(registry.get("ifeval"), recs, run / "samples" / "ifeval.jsonl")],
                            model="hand-made", generation={}, judge=None)
    write_outputs(run, summary)
    res = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "page.html")])
    assert res.exit_code == 0, res.output
    html_text = (tmp_path / "page.html").read_text()
    _open(page, tmp_path / "page.html")
    assert page.title() != "pwned"
    page.click("#list .row[data-id='h1']")
    assert hostile in page.locator("#detail pre.text").first.inner_text()
    assert hostile in page.locator("#detail td.reason").first.inner_text()

    from benchmarks.html_report import TEXT_LIMIT

    page.click("#list .row[data-id='long']")
    shown = page.locator("#detail pre.text").nth(1).inner_text()
    assert shown.startswith("word word") and len(shown) < TEXT_LIMIT + 200
    assert f"{len(long) - TEXT_LIMIT} more characters" in shown and "ifeval.jsonl line 2" in shown
    assert long[:TEXT_LIMIT] in html_text and long[:TEXT_LIMIT + 100] not in html_text  # the rest is not in the page

    page.click("#list .row[data-id='mt']")
    detail = page.locator("#detail")
    assert detail.locator("h3", has_text="Turn 2").count() == 1
    texts = detail.locator("pre.text").all_inner_texts()
    assert texts == ["first question", "first answer", "second question", "second answer"]


def test_an_unfinished_run_is_shown_from_its_complete_records(page: Any, run_a: Path, tmp_path: Path) -> None:
    """Killed mid-write (10 whole records and a torn line, no summary.json): the page shows the 10 samples and
    counts computed by hand from them, and says the run has not finished."""
    run = tmp_path / "killed"
    run.mkdir()
    shutil.copy(run_a / "run.json", run / "run.json")
    lines = (run_a / "samples" / "ifeval.jsonl").read_text().splitlines(keepends=True)
    (run / "samples").mkdir()
    (run / "samples" / "ifeval.jsonl").write_text("".join(lines[:10]) + lines[10][:200])
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    _open(page, run / "report.html")
    recs = [json.loads(line) for line in lines[:10]]
    assert page.inner_text("#count") == "10 of 10 samples" and _visible_ids(page) == [r["id"] for r in recs]
    assert "has not finished" in page.inner_text("#runs")
    passed = sum(1 for r in recs if all(_strict_verdicts(r)))
    inst = [v for r in recs for v in _strict_verdicts(r)]
    row = page.locator("table.summary tr[data-metric='prompt_strict']")
    assert row.locator("td.count").inner_text() == f"{passed}/10"
    assert page.locator("table.summary tr[data-metric='inst_strict'] td.count").inner_text() == f"{sum(inst)}/{len(inst)}"
