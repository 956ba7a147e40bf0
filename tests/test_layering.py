"""The import layering the README and DESIGN promise: ``checkers`` <- ``verifier`` <- ``verinstruct`` <-
``rl`` / ``benchmarks``, and ``rl`` and ``benchmarks`` never import each other (issue 16, item 6).

Checked two ways: statically, every ``import`` statement in every module of a package (function-level and
``TYPE_CHECKING`` imports included: a lazy import is still a dependency), so a new violation is named by
file and line; and at run time, importing each lower package's modules in a fresh interpreter loads none of
the packages above it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("checkers", "verifier", "verinstruct", "rl", "benchmarks")
#: what each package must never import
FORBIDDEN = {
    "checkers": {"verifier", "verinstruct", "rl", "benchmarks"},
    "verifier": {"verinstruct", "rl", "benchmarks"},
    "verinstruct": {"rl", "benchmarks"},
    "rl": {"benchmarks"},
    "benchmarks": {"rl"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value.split(".")[0]))
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_static_imports_follow_the_layering(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in files for line, mod in _imports(p)
           if mod in FORBIDDEN[package]]
    assert not bad, "layering violated (checkers <- verifier <- verinstruct <- rl/benchmarks):\n" + "\n".join(bad)


def test_the_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The scanner itself: module-level, function-level, from-imports and importlib calls are all found."""
    p = tmp_path / "m.py"
    p.write_text("import os\nimport rl.reward as r\ndef f():\n    from benchmarks.base import X\n"
                 "    importlib.import_module('verifier.judge')\nfrom . import sibling\n", encoding="utf-8")
    assert _imports(p) == [(1, "os"), (2, "rl"), (4, "benchmarks"), (5, "verifier")]


@pytest.mark.parametrize("package", ("checkers", "verifier", "verinstruct"))
def test_importing_a_lower_package_loads_nothing_above_it(package: str) -> None:
    """Every module of ``package`` imported in one fresh interpreter; then no forbidden package is loaded."""
    mods = sorted({".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                   for p in (ROOT / package).rglob("*.py")})
    code = ("import importlib, json, sys\n"
            f"for m in {mods!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except ImportError:\n        pass  # an optional extra (vllm, ...) not installed here\n"
            "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & FORBIDDEN[package], f"importing {package} loaded {sorted(loaded & FORBIDDEN[package])}"
