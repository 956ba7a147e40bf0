"""Speed of sandboxed dataset-code checking vs the original in-process exec (no isolation).

Baseline = what VerInstruct's original code does per call: ast-parse the source, exec each import
statement, exec the source, call check_following; in a ThreadPoolExecutor(max_workers=8).
Shapes: one GRPO step (512 responses x ~1.5 code checks, sources shared by the 8 rollouts of a prompt)
and 10,000 calls. Sandbox start-up is reported separately and excluded from the steady-state rate.
Last line: ``ratio: X`` = sandboxed checks/s / baseline checks/s on the 10k batch.
"""

from __future__ import annotations

import argparse
import ast
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

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


def grpo_step(rng: random.Random, responses: int = 512, rollouts: int = 8) -> list[CodeCall]:
    """Prompts x rollouts responses; each prompt carries 1 or 2 code checks (~1.5 on average)."""
    calls = []
    for p in range(responses // rollouts):
        prompt = f"Prompt {p}: write about {rng.choice(WORDS)}."
        sources = [make_source(rng) for _ in range(rng.choice((1, 2)))]
        for _ in range(rollouts):
            resp = make_response(rng)
            calls += [CodeCall(s, prompt, resp) for s in sources]
    return calls


def baseline_one(call: CodeCall) -> bool | None:
    """The original project's way: parse, exec imports, exec source, call check_following in-process."""
    try:
        tree = ast.parse(call.source)
        env: dict = {}
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                exec(compile(ast.Module(body=[node], type_ignores=[]), "<imports>", "exec"), env)  # noqa: S102
        exec(call.source, env)  # noqa: S102
        return bool(env["check_following"](call.prompt, call.response))
    except Exception:  # noqa: BLE001
        return None


def run_baseline(calls: list[CodeCall]) -> list[bool | None]:
    with ThreadPoolExecutor(max_workers=8) as ex:
        return list(ex.map(baseline_one, calls))


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(0)
    step = grpo_step(rng)
    big = []
    while len(big) < 10_000:
        big += grpo_step(rng)
    big = big[:10_000]
    print(f"GRPO step: {len(step)} calls, {len({c.source for c in step})} distinct sources; "
          f"10k batch: {len({c.source for c in big})} distinct sources")

    t0 = time.perf_counter()
    sb = Sandbox(workers=args.workers)
    startup = time.perf_counter() - t0
    with sb:
        print(f"sandbox start-up ({sb.workers} workers): {startup * 1000:.0f} ms")
        ours = [v.passed for v in sb.run(big)]
        base = run_baseline(big)
        assert ours == base, "sandbox and baseline disagree"
        for name, calls in (("GRPO step", step), ("10k calls", big)):
            t_ours = timeit(lambda c=calls: sb.run(c), args.repeats)
            t_base = timeit(lambda c=calls: run_baseline(c), args.repeats)
            print(f"{name}: sandbox {len(calls) / t_ours:,.0f} checks/s ({t_ours * 1000:.0f} ms), "
                  f"baseline {len(calls) / t_base:,.0f} checks/s ({t_base * 1000:.0f} ms)")
            if name == "GRPO step":
                first = time.perf_counter()
                with Sandbox(workers=args.workers) as cold:
                    cold.run(calls)
                print(f"GRPO step incl. start-up (fresh sandbox): {(time.perf_counter() - first) * 1000:.0f} ms")
        ratio = (len(big) / t_ours) / (len(big) / t_base)
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
