"""The firmware as this host ships it: where its files are, what a board gets of them
(modules compiled by mpy-cross to .mpy, main.py and data files as they are), and the
versions it declares. The flasher and the virtual fixture both take it from here.

The host never imports firmware modules: it reads the firmware's own version file
(firmware/stackpress/version.json), the one place the versions are written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import bundled

FIRMWARE = bundled.FIRMWARE
# Files the firmware reads at run time: copied as they are.
DATA_SUFFIXES = (".txt", ".json")

MPY_CROSS = Path(sys.executable).parent / "mpy-cross"
# No line-number tables: about 2 KB of a Pico's heap. A traceback then names the module
# and function but not the line; the firmware reports a crash as the exception's repr.
MPY_OPTIONS = ("-X", "no-source-lines")
_CACHE = Path(tempfile.gettempdir()) / ("stackpress-mpy-%d" % os.getuid())


def compiled(name: str, source: bytes) -> bytes:
    """The .mpy of one module (mpy-cross, cached by the source's and the compiler's hash)."""
    key = hashlib.sha256(source + str((MPY_CROSS.stat().st_mtime_ns, MPY_OPTIONS)).encode() + name.encode()).hexdigest()
    cached = _CACHE / (key + ".mpy")
    if not cached.exists():
        _CACHE.mkdir(exist_ok=True)
        src = _CACHE / ("%s.%d.py" % (key, os.getpid()))
        src.write_bytes(source)
        tmp = _CACHE / ("%s.%d.tmp" % (key, os.getpid()))
        p = subprocess.run(
            [str(MPY_CROSS), *MPY_OPTIONS, "-s", name, "-o", str(tmp), str(src)], capture_output=True, text=True
        )
        src.unlink()
        if p.returncode:
            raise RuntimeError("mpy-cross %s: %s" % (name, p.stderr.strip()))
        os.replace(tmp, cached)  # concurrent sims may compile the same module
    return cached.read_bytes()


def firmware_files(firmware: Path | str = FIRMWARE) -> dict[str, bytes]:
    """{path on the board: bytes}: every module as .mpy, main.py as source, and the data
    files the firmware reads at run time (DATA_SUFFIXES) as they are."""
    files = {}
    for p in sorted(Path(firmware).rglob("*")):
        rel = str(p.relative_to(firmware))
        if rel == "main.py" or p.suffix in DATA_SUFFIXES:
            files[rel] = p.read_bytes()
        elif p.suffix == ".py":
            files[rel[:-3] + ".mpy"] = compiled(rel, p.read_bytes())
    return files


def versions(firmware: Path | str = FIRMWARE) -> tuple[str, int]:
    """(firmware version, protocol version) of the firmware files in `firmware`."""
    v = json.loads((Path(firmware) / "stackpress" / "version.json").read_text())
    return v["firmware_version"], v["protocol_version"]


@functools.lru_cache(maxsize=None)
def protocol_version() -> int:
    """The protocol this host speaks: the one its firmware speaks."""
    return versions()[1]
