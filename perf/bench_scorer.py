"""One GRPO-sized batch through the Scorer vs the path before it (batched LLM relay, concurrent phases).

Batch: 512 responses over the fixture rows whose ``[llm]`` functions call ``llm_*`` (tests/fixtures/verinstruct;
responses varied per rollout, a quarter of them judged "no"). Verifier: an in-process fake backend with a
fixed latency per call (20 ms) and any batch size, behind the real ``Verifier`` (dedupe, no cache).

* new: this tree's ``Scorer`` (LLM requests of all sandboxed calls gathered into batches; code checks and
  LLM judging at the same time);
* old (default ``--baseline git:56e68f5``): the same script run in a subprocess on the code of that commit
  (one relay request at a time, code checks then LLM judging); ``--baseline flags`` instead runs this tree
  with the old behaviour forced (``llm_replays=0, llm_batch_size=1``, sequential phases).

Both must give the same verdicts (checked). Each path scores the batch ``--repeats`` times in each of
``--rounds`` child processes, old and new in turn; prints verifier calls, largest batch and the median wall
time per path; last line ``ratio: X`` = old median wall time / new median wall time. Sandbox start-up is
excluded from both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from git_tree import old_tree

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


class FakeBackend:
    """Yes unless the judged text contains 'BAD'; ``latency`` seconds per call whatever the batch size."""

    kind = "fake"
    model = "fake-judge"

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self.largest = 0

    def generate(self, batch: Sequence, config: object) -> list:
        from verifier.backends.base import GenResult

        time.sleep(self.latency)
        self.calls += 1
        self.largest = max(self.largest, len(batch))
        return [GenResult("No" if any("BAD" in m["content"] for m in msgs) else "Yes") for msgs in batch]

    def score(self, batch: Sequence, candidates: Sequence[str]) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass


def batch(n: int, as_code: bool = False) -> tuple[list, list[str]]:
    """``as_code``: recognised llm code (an llm check since conversion learnt it) runs as code again, so
    every llm_* request goes through the sandbox's relay."""
    from verinstruct.convert import from_verif
    from verinstruct.schema import CodeCheck, Constraint, Instance

    rows = [json.loads(line) for line in FIXTURES.read_text().splitlines()]
    rows = [r for r in rows if any("llm_" in f for f in r["functions"])]
    insts, resps = [], []
    for k in range(n):
        r = rows[(k // 8) % len(rows)]  # 8 rollouts per prompt, as in a GRPO step
        inst = from_verif(r)
        if as_code:
            cons = tuple(Constraint(c.name, c.kind, c.text, CodeCheck(c.check.source), c.tag, c.text_source)
                         if c.check_type == "llm" and getattr(c.check, "source", "") else c for c in inst.constraints)
            inst = Instance(inst.id, inst.prompt, cons, inst.messages, inst.source)
        insts.append(inst)
        resps.append(f"{r['response']}\n(rollout {k})" + (" BAD" if k % 4 == 0 else ""))
    return insts, resps


def measure(n: int, latency: float, workers: int, old_flags: bool, as_code: bool, repeats: int = 1) -> dict:
    """Score the batch ``repeats`` times with this interpreter's ``verinstruct`` (one Scorer, workers
    started untimed); the median wall time, and a digest of the verdicts (the same every time: checked)."""
    from verifier import Verifier
    from verifier.prompts import load_template
    from verinstruct.scorer import Scorer

    insts, resps = batch(n, as_code)
    backend = FakeBackend(latency)
    v = Verifier(backend=backend, mode="generate", template=load_template("en"), chunk_size=1 << 20)
    kwargs = {"concurrent": False} if old_flags else {}
    scorer = Scorer(v, sandbox_workers=workers, **kwargs)
    if old_flags:
        from checkers.sandbox import Sandbox
        from verifier.bridge import LLMBridge

        scorer._sandbox = Sandbox(workers, llm=LLMBridge(v), llm_replays=0, llm_batch_size=1)
    else:
        _ = scorer.sandbox if hasattr(scorer, "sandbox") else scorer._box()  # start the workers untimed
    walls, digests = [], set()
    for _ in range(max(1, repeats)):
        backend.calls = backend.largest = 0
        t0 = time.perf_counter()
        scored = scorer.score_batch(insts, resps)
        walls.append(time.perf_counter() - t0)
        digests.add(json.dumps([[(c.verdict.passed, c.verdict.error) for c in s.constraints] for s in scored]))
    scorer.close()
    if len(digests) != 1:
        raise SystemExit("verdicts differ between repeats of the same batch")
    wall = statistics.median(walls)
    verdicts = [[(c.verdict.passed, c.verdict.error) for c in s.constraints] for s in scored]
    undecided = sum(p is None for row in verdicts for p, _ in row)
    digest = hashlib.sha256(json.dumps(verdicts).encode()).hexdigest()[:16]
    return {"wall_s": wall, "walls": walls, "verifier_calls": backend.calls, "largest_batch": backend.largest,
            "requests": v.stats.unique // max(1, repeats), "verdicts": sum(len(r) for r in verdicts), "undecided": undecided,
            "digest": digest, "code": str(Path(sys.modules["verinstruct.scorer"].__file__).parents[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="responses in the batch")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="fake verifier latency per call")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="sandbox workers")
    ap.add_argument("--baseline", default="git:56e68f5", help="git:REF (that commit's code) or flags")
    ap.add_argument("--relay-only", action="store_true",
                    help="run recognised llm code in the sandbox too (measures the batched relay alone)")
    ap.add_argument("--repeats", type=int, default=5, help="batches scored per child process")
    ap.add_argument("--rounds", type=int, default=3, help="child processes per path, old and new in turn "
                                                            "(wall time: the median of all their batches)")
    ap.add_argument("--measure", choices=["new", "flags"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    for name in ("n", "repeats", "rounds", "workers"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    latency = args.latency_ms / 1000
    if args.measure:  # child mode: print one JSON line
        print(json.dumps(measure(args.n, latency, args.workers, args.measure == "flags", args.relay_only,
                                 args.repeats)))
        return

    def child(path_root: Path, how: str) -> dict:
        env = dict(os.environ, PYTHONPATH=str(path_root))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", how, "--n", str(args.n),
               "--latency-ms", str(args.latency_ms), "--workers", str(args.workers), "--repeats", str(args.repeats)]
        cmd += ["--relay-only"] if args.relay_only else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=path_root).stdout
        return json.loads(out.strip().splitlines()[-1])

    def rounds(old_root: Path, old_how: str) -> tuple[dict, dict]:
        """``--rounds`` pairs of child processes, old and new in turn (this machine's speed drifts: pairs
        taken apart would compare two speeds); each side's wall time is the median of all its batches."""
        olds, news = [], []
        for _ in range(max(1, args.rounds)):
            olds.append(child(old_root, old_how))
            news.append(child(ROOT, "new"))
        out = []
        for runs in (olds, news):
            r = dict(runs[-1])
            r["walls"] = [w for x in runs for w in x["walls"]]
            r["wall_s"] = statistics.median(r["walls"])
            if len({x["digest"] for x in runs}) != 1:
                raise SystemExit("verdicts differ between runs of the same code")
            out.append(r)
        return out[0], out[1]

    if args.baseline.startswith("git:"):
        ref = args.baseline[4:]
        with tempfile.TemporaryDirectory(prefix="bench-scorer-") as tmp:
            old, new = rounds(old_tree(ref, Path(tmp)), "new")  # that commit's Scorer, measured the same way
        old_label = f"old (commit {ref})"
    elif args.baseline == "flags":
        old, new = rounds(ROOT, "flags")
        old_label = "old (this tree, relay batch 1 and sequential phases)"
    else:
        raise SystemExit(f"--baseline must be git:REF or flags, got {args.baseline!r}")
    if Path(old["code"]).resolve() == Path(new["code"]).resolve() and args.baseline != "flags":
        raise SystemExit(f"the baseline ran this tree's code ({old['code']}), not {args.baseline}")
    print(f"batch: {args.n} responses, fake verifier {args.latency_ms:g} ms per call, {args.workers} sandbox workers"
          + (", recognised llm code run as code" if args.relay_only else ""))
    for label, r in ((old_label, old), ("new (Scorer)", new)):
        print(f"{label:<55} code {r['code']}")
        print(f"{'':<55} verifier calls {r['verifier_calls']:>5}  largest batch {r['largest_batch']:>4}  "
              f"requests {r['requests']:>5}  wall {r['wall_s']:.2f}s  undecided {r['undecided']}/{r['verdicts']}")
    if old["digest"] != new["digest"]:
        raise SystemExit(f"verdicts differ: old {old['digest']} vs new {new['digest']}")
    print("verdicts: identical")
    load = os.getloadavg()[0]
    print(f"{args.rounds} rounds x {args.repeats} batches per path; 1-min load average {load:.2f} on "
          f"{os.cpu_count()} CPUs")
    print(f"ratio: {old['wall_s'] / new['wall_s']:.2f}")


if __name__ == "__main__":
    main()
