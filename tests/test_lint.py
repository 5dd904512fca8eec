"""ruff, configured in ruff.toml: the code lints clean and is formatted (`make format` fixes
the format and what the linter can fix by itself)."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

RUFF = str(Path(sys.executable).parent / "ruff")


def test_ruff_finds_nothing():
    p = subprocess.run([RUFF, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_code_is_formatted():
    p = subprocess.run(
        [RUFF, "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stdout + p.stderr
