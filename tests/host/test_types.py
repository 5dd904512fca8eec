"""The host's public functions carry type hints, and mypy (settings in host/pyproject.toml)
finds them consistent with the code."""

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "host" / "stackpress"
# The virtual board's ROM runs on MicroPython, in the board process: not host code.
NOT_HOST = {PACKAGE / "virtual" / "rom.py"}


def _unannotated(path):
    """'file:line name' of each public function or method lacking a parameter or return
    annotation (self and cls aside; __init__ needs its parameters only)."""
    missing = []

    def visit(body, public_scope):
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, public_scope and not node.name.startswith("_"))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = node.name
                if not public_scope or (name.startswith("_") and name != "__init__"):
                    continue
                a = node.args
                params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p]
                bare = [p.arg for p in params if p.annotation is None and p.arg not in ("self", "cls")]
                if bare or (node.returns is None and name != "__init__"):
                    missing.append(
                        "%s:%d %s(%s)%s"
                        % (
                            path.relative_to(ROOT),
                            node.lineno,
                            name,
                            ", ".join(bare),
                            "" if node.returns or name == "__init__" else " -> ?",
                        )
                    )

    visit(ast.parse(path.read_text()).body, True)
    return missing


def test_every_public_function_of_the_host_is_annotated():
    missing = [m for p in sorted(PACKAGE.rglob("*.py")) if p not in NOT_HOST for m in _unannotated(p)]
    assert missing == [], "%d public functions without type hints:\n" % len(missing) + "\n".join(missing)


def test_mypy_finds_the_host_consistent(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "host" / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-p",
            "stackpress",
        ],
        cwd=ROOT / "host",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr
