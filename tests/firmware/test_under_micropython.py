"""Runs the firmware tests (tests/firmware/t_*.py) under .venv/bin/micropython, on the
firmware as the board gets it (modules compiled by mpy-cross).

Each MicroPython test function becomes one pytest case; a module runs once.
"""

import ast
import functools
import subprocess
from pathlib import Path

import pytest
from conftest import MICROPYTHON, firmware_dir

HERE = Path(__file__).parent
MODULES = sorted(p.stem for p in HERE.glob("t_*.py"))


def _names(mod):
    tree = ast.parse((HERE / (mod + ".py")).read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


@functools.lru_cache(maxsize=None)
def _run(mod):
    # 256k: the tests' own doubles (a 24 KB RAM disk, decoded frames, an old and a new App
    # across a reset) live in the same heap; the firmware's fit in a Pico's 192k is
    # test_fits_a_pico_heap's business.
    p = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=256k", str(HERE / "mpytest.py"), mod, str(firmware_dir()), str(HERE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return p.stdout + p.stderr


CASES = [(m, n) for m in MODULES for n in _names(m)]


@pytest.mark.parametrize("mod,name", CASES, ids=["%s::%s" % c for c in CASES])
def test_firmware(mod, name):
    out = _run(mod)
    assert ("PASS %s" % name) in out.splitlines(), out
