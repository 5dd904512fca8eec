"""Where the files the host ships with are: the firmware, and the fixture's parameters and
scenarios. In a source tree they are the repository's own folders beside host/ (a change
there is what the next `sim` or `flash` uses); a package installed with pip or pipx
carries copies inside itself, which host/setup.py puts there when it builds."""

from __future__ import annotations

from pathlib import Path

_TREE = Path(__file__).resolve().parents[2]
_INSIDE = Path(__file__).resolve().parent / "bundled_files"


def _where(name: str, marker: str) -> Path:
    tree = _TREE / name
    return tree if (tree / marker).is_file() else _INSIDE / name


FIRMWARE = _where("firmware", "stackpress/version.json")
HARDWARE = _where("hardware", "fixture.json")
