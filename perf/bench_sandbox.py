"""What isolation costs: sandboxed dataset-code checks/s of this tree vs the code of a base commit.

Since issue 15 dataset code runs in fresh processes forked from a clean zygote: one per dataset row (the
calls of one prompt's rollouts share it, as the Scorer sends them) or, with ``process_per="call"``, one per
call. Before, one persistent child per worker ran every call. The same batches run on both trees, each in
its own subprocess (the base commit's code extracted with ``git archive``; default ``--baseline
git:5023509``, the last commit with the persistent child), and must give identical verdicts (checked).
Shapes: one GRPO step (512 responses x ~1.5 code checks, sources shared by the 8 rollouts of a prompt), a
batch of ``--n`` calls (GRPO steps cut to size), and this tree alone with a process per call. Sandbox
start-up is excluded. Also prints the cost per call in ms.
Last line: ``ratio: X`` = this tree's checks/s / the base commit's checks/s on the ``--n`` batch (process
per row).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from git_tree import old_tree

from checkers.sandbox import CodeCall, Sandbox

CHECKS = [
    "def check_following(instruction, response):\n    return len(response.split()) < {n}\n",
    "def check_following(instruction, response):\n    return len(response.split()) >= {n}\n",
    "def check_following(instruction, response):\n    paragraphs = [p for p in response.split('\\n\\n') if p.strip()]\n"
    "    return len(paragraphs) == {k}\n",
    "def check_following(instruction, response):\n    keywords = ['{w}', 'energy']\n"
    "    return all(k in response.lower() for k in keywords)\n",
    "import re\ndef check_following(instruction, response):\n    return len(re.findall(r'^- ', response, re.M)) >= {k}\n",
    "import re\ndef check_following(instruction, response):\n    return re.search(r'\\b{w}\\b', response, re.I) is None\n",
    "def check_following(instruction, response):\n    return response.strip().endswith('?')\n",
    "def check_following(instruction, response):\n    return response == response.lower()\n",
    "def check_following(instruction, response):\n    return response.isupper() or len(response) < {n}\n",
    "import json\ndef check_following(instruction, response):\n    try:\n        json.loads(response)\n"
    "    except ValueError:\n        return False\n    return True\n",
    "def check_following(instruction, response):\n    return response.count('{w}') >= {k}\n",
    "import re\ndef check_following(instruction, response):\n    sents = [s for s in re.split(r'[.!?]+', response) if s.strip()]\n"
    "    return len(sents) <= {n}\n",
    "def check_following(instruction, response):\n    return response.startswith('{W}')\n",
    "def check_following(instruction, response):\n    return ',' not in response\n",
    "import string\ndef check_following(instruction, response):\n"
    "    return sum(c in string.punctuation for c in response) < {n}\n",
    "from collections import Counter\ndef check_following(instruction, response):\n"
    "    c = Counter(w.lower() for w in response.split())\n    return max(c.values(), default=0) <= {k} + 3\n",
    "import re\ndef check_following(instruction, response):\n    return len(re.findall(r'\\*[^\\n*]+\\*', response)) >= {k}\n",
    "def check_following(instruction, response):\n    lines = response.splitlines()\n"
    "    return all(len(l.split()) <= {n} for l in lines)\n",
    "def check_following(instruction, response):\n    words = response.split()\n"
    "    return sum(len(w) for w in words) / max(len(words), 1) < 7\n",
    "import re\ndef check_following(instruction, response):\n    return bool(re.search(r'P\\.S\\.', response))\n",
]
WORDS = ["fresh", "air", "energy", "walk", "morning", "city", "river", "light", "music", "garden"]


def make_response(rng: random.Random) -> str:
    paras = []
    for _ in range(rng.randint(1, 4)):
        sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))).capitalize() + "."
                 for _ in range(rng.randint(2, 6))]
        paras.append(" ".join(sents))
    return "\n\n".join(paras)


def make_source(rng: random.Random) -> str:
    w = rng.choice(WORDS)
    return rng.choice(CHECKS).format(n=rng.randint(20, 200), k=rng.randint(1, 4), w=w, W=w.capitalize())


def code_call(source: str, prompt: str, response: str, row: str) -> CodeCall:
    """With the row key where this tree's CodeCall has one (the base commit's has not)."""
    if "row" in getattr(CodeCall, "__dataclass_fields__", {}):
        return CodeCall(source, prompt, response, row=row)
    return CodeCall(source, prompt, response)


def grpo_step(rng: random.Random, responses: int = 512, rollouts: int = 8) -> list[CodeCall]:
    """Prompts x rollouts responses; each prompt carries 1 or 2 code checks (~1.5 on average). The row key
    is the prompt and its sources, as ``verinstruct.scoring.row_key`` makes it (with the row's id)."""
    calls = []
    for p in range(responses // rollouts):
        prompt = f"Prompt {p}: write about {rng.choice(WORDS)}."
        sources = [make_source(rng) for _ in range(rng.choice((1, 2)))]
        row = hashlib.sha256("\0".join([prompt, *sorted(sources)]).encode()).hexdigest()
        for _ in range(rollouts):
            resp = make_response(rng)
            calls += [code_call(s, prompt, resp, row) for s in sources]
    return calls


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


ROOT = Path(__file__).resolve().parents[1]


def batches(n: int) -> dict[str, list[CodeCall]]:
    rng = random.Random(0)
    step = grpo_step(rng)
    big: list[CodeCall] = []
    while len(big) < n:
        big += grpo_step(rng)
    return {"GRPO step": step, f"{n} calls": big[:n]}


def measure(n: int, workers: int | None, repeats: int) -> dict:
    """Checks/s of the ``Sandbox`` importable here, per batch shape; a digest of the verdicts."""
    out: dict = {"code": str(Path(sys.modules["checkers.sandbox"].__file__).parents[2])}
    with Sandbox(workers=workers) as sb:
        digest = hashlib.sha256()
        for name, calls in batches(n).items():
            digest.update(json.dumps([v.passed for v in sb.run(calls)]).encode())
            t = timeit(lambda c=calls: sb.run(c), repeats)
            out[name] = {"checks_s": len(calls) / t, "ms_per_call_per_worker": t * 1000 * sb.workers / len(calls)}
        out["digest"] = digest.hexdigest()[:16]
        out["workers"] = sb.workers
    if "process_per" in Sandbox.__init__.__code__.co_varnames:  # this tree: the per-call mode as well
        calls = batches(n)[f"{n} calls"]
        with Sandbox(workers=workers, process_per="call") as sb:
            t = timeit(lambda: sb.run(calls), repeats)
            out["per call"] = {"checks_s": len(calls) / t, "ms_per_call_per_worker": t * 1000 * sb.workers / len(calls)}
    return out


def run_on(tree: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", "--n", str(args.n), "--repeats", str(args.repeats)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=str(tree))
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--n", type=int, default=2000, help="calls in the large batch")
    ap.add_argument("--baseline", default="git:5023509", help="git:REF whose sandbox is the baseline")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    for name in ("n", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.workers is not None and args.workers < 1:
        ap.error(f"--workers must be at least 1, got {args.workers}")
    if args.measure:  # child mode: one JSON line for the code on PYTHONPATH
        print(json.dumps(measure(args.n, args.workers, args.repeats)))
        return
    if not args.baseline.startswith("git:"):
        raise SystemExit(f"--baseline must be git:REF, got {args.baseline!r}")
    with tempfile.TemporaryDirectory() as tmp:
        base = run_on(old_tree(args.baseline[4:], Path(tmp)), args)
    new = run_on(ROOT, args)
    if base["digest"] != new["digest"]:
        raise SystemExit(f"verdicts differ between {args.baseline} and this tree")
    print(f"{new['workers']} workers; verdicts identical on both trees")
    for name in batches(args.n):
        b, o = base[name], new[name]
        print(f"{name}: this tree {o['checks_s']:,.0f} checks/s ({o['ms_per_call_per_worker']:.2f} ms per call per worker), "
              f"{args.baseline} {b['checks_s']:,.0f} checks/s ({b['ms_per_call_per_worker']:.2f} ms)")
    if "per call" in new:
        o = new["per call"]
        print(f"{args.n} calls, a process per call (process_per='call'): this tree {o['checks_s']:,.0f} checks/s "
              f"({o['ms_per_call_per_worker']:.2f} ms per call per worker)")
    last = f"{args.n} calls"
    print(f"ratio: {new[last]['checks_s'] / base[last]['checks_s']:.2f}")


if __name__ == "__main__":
    main()
