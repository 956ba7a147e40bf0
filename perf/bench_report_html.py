"""The HTML report of a 10,000-sample run, measured in headless chromium: load time and filter response time.

A synthetic IFEval-shaped run (seeded): 10,000 samples, 1-4 constraints each drawn from the IFEval registry
names, responses of 200-600 words (one in 200 of 40,000 characters, to exercise truncation), verdicts ~70%
passed, strict and loose. Its summary is made by the real aggregation (``benchmarks.report.build_summary``),
its page by ``benchmarks.html_report.write_report``, exactly as ``verif eval`` does. The page is opened from
``file://`` in Debian's chromium through Playwright and timed with the browser's own clock:

* load: navigation start to the ``report-ready`` performance mark (HTML + JSON parse + first render);
* filter: a filter change until the next frame (``change`` event -> list rebuilt -> requestAnimationFrame),
  median of 7, for verdict, constraint type, and free-text search (the page builds its search index in
  slices after load; the first search, 3 s after load, is reported apart);
* scroll: a jump to the middle of the list (or back to the top) until the next frame.

Prints the file size, bytes per sample and each time; last line ``ratio: X`` = the slowest median filter
time / 100 ms, the budget in which a response feels immediate (< 1: no filter freezes the page).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "it", "at", "from", "his", "her", "are", "an", "be", "this", "which", "or", "had", "not", "river", "model", "garden", "policy", "reward", "answer", "signal", "method", "paper", "light", "energy", "market", "winter", "summer", "city", "history", "music", "science", "letter", "travel", "story", "friend", "school", "water", "forest", "mountain", "ocean"]


def synthetic_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    import checkers

    names = sorted(i for i in checkers.ids() if ":" in i and not i.startswith(("followbench", "multilingual", "ifbench")))
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        k = rng.randint(1, 4)
        cons = rng.sample(names, k)
        words = rng.randint(200, 600)
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        if i % 200 == 7:
            text = (text + " ") * (40000 // len(text) + 1)
        prompt = f"Write about {rng.choice(WORDS)} and {rng.choice(WORDS)}. " + " ".join(f"Constraint: {c}." for c in cons)
        scores = {}
        for mode in ("strict", "loose"):
            cs = []
            for c in cons:
                p = rng.random() < (0.7 if mode == "strict" else 0.78)
                cs.append({"name": c, "kind": "hard", "check": "registry", "passed": p,
                           "reason": f"{rng.randint(1, 900)} {rng.choice(WORDS)}s, need {'at least' if p else 'at most'} 300"})
            passed = sum(c["passed"] for c in cs)
            scores[mode] = {"id": str(i), "constraints": cs, "hard_pass_rate": passed / k, "soft_pass_rate": 1.0,
                            "hard": {"passed": passed, "total": k, "undecided": 0},
                            "soft": {"passed": 0, "total": 0, "undecided": 0}}
        recs.append({"id": str(1000 + i), "benchmark": "ifeval", "meta": {}, "turns": [{
            "messages": [{"role": "user", "content": prompt}], "response": text, "scored_text": text,
            "thinking": "none", "error": None, "finish_reason": "stop", "prompt_tokens": 0, "completion_tokens": 0,
            "scores": scores}]})
    return recs


FILTER_JS = """([id, value]) => new Promise(done => {
  const t0 = performance.now();
  const f = document.getElementById(id);
  f.value = value;
  f.dispatchEvent(new Event(id === 'f-text' ? 'input' : 'change'));
  // the search box waits 120 ms for typing to stop: measure from when the filter actually runs
  const start = id === 'f-text' ? t0 + 120 : t0;
  const wait = () => requestAnimationFrame(() => setTimeout(() => done(performance.now() - start), 0));
  if (id === 'f-text') setTimeout(wait, 121); else wait();
})"""

SCROLL_JS = """() => new Promise(done => {
  const l = document.getElementById('list'); const t0 = performance.now();
  l.scrollTop = l.scrollTop > l.scrollHeight / 4 ? 0 : l.scrollHeight / 2;
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
})"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    import benchmarks as registry
    from benchmarks.html_report import write_report
    from benchmarks.report import build_summary, write_outputs
    from benchmarks.runner import BenchResult, append_records

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        (out / "samples").mkdir(parents=True)
        recs = synthetic_records(args.samples)
        append_records(out / "samples" / "ifeval.jsonl", recs)
        bench = registry.get("ifeval")
        summary = build_summary([BenchResult(bench, recs, out / "samples" / "ifeval.jsonl")],
                                model="synthetic", generation={}, judge=None)
        write_outputs(out, summary)
        t0 = time.perf_counter()
        write_report([out], out / "report.html")
        build_s = time.perf_counter() - t0
        size = (out / "report.html").stat().st_size
        jsonl = (out / "samples" / "ifeval.jsonl").stat().st_size
        print(f"samples: {args.samples}; samples/ifeval.jsonl {jsonl / 1e6:.1f} MB; report.html {size / 1e6:.1f} MB "
              f"({size / args.samples / 1e3:.2f} kB per sample); written in {build_s:.2f} s")

        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium)
            loads = []
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto((out / "report.html").as_uri())
                page.wait_for_selector("body[data-ready='1']", timeout=120_000)
                loads.append(page.evaluate("performance.getEntriesByName('report-ready')[0].startTime"))
                rows = page.eval_on_selector_all("#list .row", "rs => rs.length")
                if len(loads) < 3:
                    page.close()
            print(f"load (navigation start -> report ready), ms: median {statistics.median(loads):.0f} "
                  f"(runs {', '.join(f'{x:.0f}' for x in loads)}); rows in the DOM: {rows} of {args.samples}")
            medians = {}
            cases = [("verdict", "f-verdict", ["failed", "passed", "undecided", ""]),
                     ("type", "f-type", [str(i) for i in range(5)] + [""])]
            page.wait_for_timeout(3000)  # the search index is built in slices after load
            first_search = page.evaluate(FILTER_JS, ["f-text", "garden river"])
            page.evaluate(FILTER_JS, ["f-text", ""])
            cases.append(("search", "f-text", ["summer city", "need at most", "zzz", "1234", "ocean", "", "forest"]))
            for name, fid, values in cases:
                times = [page.evaluate(FILTER_JS, [fid, values[j % len(values)]]) for j in range(7)]
                page.evaluate(FILTER_JS, [fid, ""])
                medians[name] = statistics.median(times)
                print(f"filter by {name}, ms: median {medians[name]:.1f} (max {max(times):.1f})")
            print(f"first search, 3 s after load, ms: {first_search:.1f}")
            scroll = [page.evaluate(SCROLL_JS) for _ in range(5)]
            print(f"scroll jump, ms: median {statistics.median(scroll):.1f}")
            browser.close()
    print(f"ratio: {max(medians.values()) / 100:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
