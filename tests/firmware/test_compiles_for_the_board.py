"""Every file copied onto the board compiles with mpy-cross (the board's own compiler,
with the RP2040's architecture for any native code), so a syntax MicroPython lacks or
a module too big to compile shows up here, not at power-on."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

MPY_CROSS = str(Path(sys.executable).parent / "mpy-cross")
FILES = sorted(p.relative_to(ROOT / "firmware") for p in (ROOT / "firmware").rglob("*.py"))


@pytest.mark.parametrize("rel", FILES, ids=str)
def test_compiles_with_mpy_cross(rel, tmp_path):
    out = tmp_path / "out.mpy"
    p = subprocess.run(
        [MPY_CROSS, "-march=armv6m", "-o", str(out), str(ROOT / "firmware" / rel)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 0
