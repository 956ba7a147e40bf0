"""Hostile dataset code: every attack ends undecided (or harmless), honest items keep their verdicts,
nothing is written outside the sandbox and no process outlives the batch."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from checkers.sandbox import CodeCall, Sandbox, SandboxLimits, error_class

REPO = Path(__file__).resolve().parents[1]
TAG = uuid.uuid4().hex[:12]
PWNED_TMP = f"/tmp/verinstruct_pwned_{TAG}"
PWNED_REPO = str(REPO / f"verinstruct_pwned_{TAG}")
SECRET = f"s3cret-{TAG}"

HONEST = "def check_following(instruction, response):\n    return 'ok' in response\n"
USES_RE = "import re\ndef check_following(instruction, response):\n    return re.search(r'\\d+', response) is not None\n"
USES_LEN = "def check_following(instruction, response):\n    return len(response) == 2\n"
USES_MORE = (
    "import collections, json, os, sys, time, warnings\n"
    "def check_following(instruction, response):\n"
    "    warnings.warn('harmless')\n"
    "    deep = (lambda f: f(f, 60))(lambda f, n: n and f(f, n - 1))\n"
    "    time.sleep(0.06)\n"
    "    return (json.loads(response)['a'] == 1.5 and collections.Counter('aab').most_common(1) == [('a', 2)]\n"
    "            and not os.path.exists('check.txt') and deep == 0)\n"
)


def fn(body: str) -> str:
    return "def check_following(instruction, response):\n" + "".join(f"    {line}\n" for line in body.splitlines())


# (name, source, expected error class or None when the attack must just fail harmlessly)
HOSTILE: list[tuple[str, str, str | None]] = [
    ("infinite loop", fn("while True:\n    pass"), "timeout"),
    ("long sleep", fn("import time\ntime.sleep(60)\nreturn True"), "timeout"),
    ("fork bomb", fn("import os\nwhile True:\n    os.fork()"), "raised"),
    ("memory bomb", fn("x = []\nwhile True:\n    x.append(' ' * 10**7)"), "memory limit"),
    ("write /tmp", fn(f"open({PWNED_TMP!r}, 'w').write('x')\nreturn True"), "raised"),
    ("write repo", fn(f"open({PWNED_REPO!r}, 'w').write('x')\nreturn True"), "raised"),
    ("read /etc/shadow", fn("return 'root' in open('/etc/shadow').read()"), "raised"),
    ("read /etc/passwd", fn("return 'root' in open('/etc/passwd').read()"), "raised"),
    ("env secret", fn("import os\nreturn 'VERINSTRUCT_TEST_SECRET' in os.environ"), None),
    ("proc environ", fn(f"return {SECRET!r} in open('/proc/1/environ').read()"), "raised"),
    ("subprocess", fn("import subprocess\nsubprocess.run(['true'])\nreturn True"), "raised"),
    ("os.system", fn(f"import os\nreturn os.system('touch {PWNED_TMP}') == 0"), None),
    ("ctypes segfault", fn("import ctypes\nctypes.string_at(0)"), "worker crashed"),
    ("os._exit", fn("import os\nos._exit(0)"), "exited"),
    ("sys.exit", fn("import sys\nsys.exit(3)"), "exited"),
    ("ignore SIGTERM then spin", fn("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass"),
     "timeout"),
    ("alarm", fn("import signal, time\nsignal.setitimer(signal.ITIMER_REAL, 0.2)\ntime.sleep(5)"), "worker crashed"),
    ("kill parent", fn("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nreturn True"), None),
    ("patch re", fn("import re\nre.search = lambda *a, **k: None\nreturn True"), None),
    ("patch builtins", fn("import builtins\nbuiltins.len = lambda x: 2\nreturn True"), None),
    # the names of modules a call imported teach the zygote what to preload: forged ones must not reach it,
    # nor break the hand-over of the next (honest) call
    ("teach bogus module names", fn("import sys\nsys.modules['json.\\u00e9t\\u00e9'] = sys\n"
                                    "sys.modules['re.a,b'] = sys\nreturn True"), None),
    ("patch class", fn("import collections\ncollections.Counter.most_common = lambda s, n=None: []\nreturn True"),
     None),
    ("patch module-level object", fn("import json\njson._default_decoder.parse_float = int\nreturn True"), None),
    ("replace sys.modules entry", fn("import sys, types\nsys.modules['re'] = types.ModuleType('re')\nreturn True"),
     None),
    ("thread left running", fn("import threading, time\nthreading.Thread(target=time.sleep, args=(30,)).start()\nreturn True"),
     None),
    ("lower an rlimit", fn("import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))\nreturn True"), None),
    ("swap function code", fn("import re\nre.search.__code__ = (lambda *a, **k: None).__code__\nreturn True"), None),
    ("walk frames", fn("import sys\nf = sys._getframe()\nwhile f.f_back:\n    f = f.f_back\nf.f_locals.clear()\nreturn True"),
     None),
    ("forge results via gc", fn("import gc, mmap\nfor m in gc.get_objects():\n    if isinstance(m, mmap.mmap):\n"
                                "        m[:] = b'\\x01' * len(m)\nreturn True"), None),
    ("write guessed fds", fn("import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'\\x00\\x00\\x00\\x02{}')\n"
                             "    except OSError:\n        pass\nreturn True"), "sandbox error"),
    ("sigalrm timer left", fn("import signal\nsignal.setitimer(signal.ITIMER_REAL, 0.05)\nreturn True"), None),
    ("strict warnings", fn("import warnings\nwarnings.simplefilter('error')\nimport sys\nsys.setrecursionlimit(40)\nreturn True"),
     None),
    ("file left in cwd", fn("open('check.txt', 'w').write('x')\nreturn True"), None),
    ("print 100 MB", fn("print('x' * 100_000_000)\nreturn True"), None),
    ("huge return", fn("return 'x' * 100_000_000"), "bad return"),
    ("deep recursion", fn("def f(n):\n    return f(n + 1)\nreturn f(0)"), "raised"),
    ("deep recursion, raised limit", fn("import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nreturn f(0)"),
     None),
    ("thread bomb", fn("import threading, time\nfor _ in range(10000):\n    threading.Thread(target=time.sleep, args=(60,)).start()"),
     None),
]


@pytest.fixture(scope="module")
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    hits: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            hits.append(conn.recv(100))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], hits
    srv.close()


@pytest.fixture(scope="module")
def outcome(listener, descendants):
    port, hits = listener
    net = fn(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\ns.sendall(b'pwned')\nreturn True")
    hostile = [*HOSTILE, ("network connect", net, "raised")]
    os.environ["VERINSTRUCT_TEST_SECRET"] = SECRET
    before = descendants()
    calls: list[CodeCall] = []
    expect: list[tuple[str, str | None, bool | None]] = []  # (name, error class, honest verdict)
    for name, src, cls in hostile:
        calls.append(CodeCall(src, "p", "x"))
        expect.append((name, cls, None))
        # honest items interleaved (they share workers and chunks with the attacks), including ones that would
        # see tampering with re/builtins/Counter/json/warnings/the recursion limit/files/the SIGALRM timer
        calls += [CodeCall(HONEST, "p", "ok"), CodeCall(USES_RE, "p", "no digits"), CodeCall(USES_LEN, "p", "abc"),
                  CodeCall(USES_MORE, "p", '{"a": 1.5}')]
        expect += [("honest", None, True), ("uses re", None, False), ("uses len", None, False),
                   ("uses more", None, True)]
    try:
        # CPU time decides timeouts; the wall-clock backstop (for the sleeper) is tight but not load-sensitive
        with Sandbox(workers=2, limits=SandboxLimits(wall_timeout_s=5.0, memory_mb=256)) as sb:
            verdicts = sb.run(calls)
            during = descendants() - before
        after = descendants() - before
    finally:
        del os.environ["VERINSTRUCT_TEST_SECRET"]
    return {"verdicts": verdicts, "expect": expect, "calls": calls, "hits": hits, "during": during, "after": after}


def test_hostile_items_end_undecided_with_their_error_class(outcome):
    bad = []
    for v, (name, cls, honest) in zip(outcome["verdicts"], outcome["expect"], strict=True):
        if honest is not None:
            continue
        if cls is not None and (v.passed is not None or error_class(v.error) != cls):
            bad.append((name, v))
    assert not bad, bad


def test_harmless_outcomes_did_not_leak(outcome):
    by_name = {name: v for v, (name, _, honest) in zip(outcome["verdicts"], outcome["expect"], strict=True) if honest is None}
    # the secret is not in the environment; os.system cannot run; patches are caught or die with the process
    assert by_name["env secret"].passed is False
    assert by_name["os.system"].passed is False
    # refused (Landlock signal scope) or silently ignored (PID 1 of a namespace); honest items prove it lived
    assert by_name["kill parent"].passed in (True, None)
    assert by_name["print 100 MB"].passed is True  # output went to /dev/null
    assert by_name["deep recursion, raised limit"].passed is None
    assert by_name["thread bomb"].passed is None
    # whatever a call changes in its own process dies with it: its own verdict stands, and the honest
    # calls beside it (test_honest_items_keep_correct_verdicts) see none of it
    for name in ("patch re", "patch builtins", "teach bogus module names", "patch class", "patch module-level object", "replace sys.modules entry",
                 "thread left running", "lower an rlimit", "walk frames", "swap function code",
                 "forge results via gc", "sigalrm timer left", "strict warnings", "file left in cwd"):
        assert by_name[name].passed is True, (name, by_name[name])


def test_honest_items_keep_correct_verdicts(outcome):
    wrong = [(name, v) for v, (name, _, honest) in zip(outcome["verdicts"], outcome["expect"], strict=True)
             if honest is not None and v.passed is not honest]
    assert not wrong, wrong


def test_nothing_written_outside_the_sandbox(outcome):
    assert not os.path.exists(PWNED_TMP)
    assert not os.path.exists(PWNED_REPO)


def test_network_is_unreachable(outcome):
    assert outcome["hits"] == []


def test_no_process_outlives_the_batch(outcome):
    assert outcome["during"], "workers should be alive while the sandbox is open"
    assert outcome["after"] == set()


def test_worker_dies_during_chunk_rest_retried():
    """Killing the worker mid-chunk fails only the in-flight call; later calls of the chunk still run."""
    kill_zygote = fn("import os, signal\nos.kill(1, signal.SIGKILL)\nreturn True")
    calls = [CodeCall(HONEST, "p", "ok"), CodeCall(kill_zygote, "p", "x"), CodeCall(HONEST, "p", "no")]
    with Sandbox(workers=1) as sb:
        vs = sb.run(calls)
        assert vs[0].passed is True and vs[2].passed is False
        again = sb.run([CodeCall(HONEST, "p", "ok")])
    assert again[0].passed is True


def test_forged_progress_cannot_extend_the_deadline():
    """Nothing a call can reach (the shared progress record of the persistent child is gone) buys it time
    past the wall-clock backstop."""
    forge = fn(
        "import gc, mmap, time, struct\n"
        "maps = [o for o in gc.get_objects() if isinstance(o, mmap.mmap)]\n"
        "end = time.monotonic() + 30\n"
        "while time.monotonic() < end:\n"
        "    for m in maps:\n"
        "        struct.pack_into('=QQ', m, 0, 10**6, time.monotonic_ns() + 10**12)\n"
        "    time.sleep(0.01)\n"
        "return True"
    )
    with Sandbox(workers=1, limits=SandboxLimits(wall_timeout_s=0.5)) as sb:
        (v,) = sb.run([CodeCall(forge, "p", "x")])
    assert v.passed is None and error_class(v.error) == "timeout", v


def test_no_tampering_reaches_the_next_call_or_batch():
    """One worker, three-call chunks, two batches: patches, frame walks and result forging must not reach
    the neighbours, whose verdicts (False for 'no digits', True for 'a1') would change if they did."""
    attacks = [
        ("patch re", fn("import re\nre.search = lambda *a, **k: None\nreturn True")),
        ("walk frames", fn("import sys\nf = sys._getframe()\nwhile f.f_back:\n    f = f.f_back\nf.f_locals.clear()\n"
                           "return True")),
        ("forge results via gc", fn("import gc, mmap\nfor m in gc.get_objects():\n    if isinstance(m, mmap.mmap):\n"
                                    "        m[:] = b'\\x01' * len(m)\nreturn True")),
        ("patch builtins", fn("import builtins\nbuiltins.len = lambda x: 2\nreturn True")),
        ("honest", HONEST),
    ]
    calls, expect = [], []
    for i, (name, src) in enumerate(attacks * 2):
        for resp, ok in (("no digits", False), ("a1", True)):
            calls.append(CodeCall(USES_RE + f"# {i} {resp}\n", "p", resp))  # own source: own chunk slot
            expect.append(("honest", ok, None))
        calls.append(CodeCall(src + f"# {i}\n", "p", "ok"))
        expect.append((name, True, None))
    with Sandbox(workers=1, chunk_size=3) as sb:
        for _ in range(2):
            vs = sb.run(calls)
            got = [(name, v.passed, error_class(v.error)) for v, (name, _, _) in zip(vs, expect, strict=True)]
            assert got == expect
