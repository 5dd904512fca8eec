"""Building the virtual board's flash: a littlefs2 image laid out as on a Pico.

The firmware goes in as a Pico gets it: modules compiled by mpy-cross to .mpy (no
compiler run, and no compiler's heap, at boot), main.py as source.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from littlefs import LittleFS

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware"
BLOCK_SIZE = 4096
BLOCK_COUNT = 256  # 1 MiB: the Pico's filesystem is 1.4 MB


def _mkdirs(fs, path):
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        try:
            fs.mkdir(d)
        except FileExistsError:
            pass


MPY_CROSS = Path(sys.executable).parent / "mpy-cross"
_CACHE = Path(tempfile.gettempdir()) / ("stackpress-mpy-%d" % os.getuid())


def compiled(name, source):
    """The .mpy of one module (mpy-cross, cached by the source's and the compiler's hash)."""
    key = hashlib.sha256(source + str(MPY_CROSS.stat().st_mtime_ns).encode() + name.encode()).hexdigest()
    cached = _CACHE / (key + ".mpy")
    if not cached.exists():
        _CACHE.mkdir(exist_ok=True)
        src = _CACHE / ("%s.%d.py" % (key, os.getpid()))
        src.write_bytes(source)
        tmp = _CACHE / ("%s.%d.tmp" % (key, os.getpid()))
        p = subprocess.run([str(MPY_CROSS), "-s", name, "-o", str(tmp), str(src)], capture_output=True, text=True)
        src.unlink()
        if p.returncode:
            raise RuntimeError("mpy-cross %s: %s" % (name, p.stderr.strip()))
        os.replace(tmp, cached)  # concurrent sims may compile the same module
    return cached.read_bytes()


def firmware_files(firmware=FIRMWARE):
    """{path on the board: bytes}: every module as .mpy, main.py as source, and the data
    files the firmware reads at run time (.txt) as they are."""
    files = {}
    for p in sorted(Path(firmware).rglob("*")):
        rel = str(p.relative_to(firmware))
        if rel == "main.py" or p.suffix == ".txt":
            files[rel] = p.read_bytes()
        elif p.suffix == ".py":
            files[rel[:-3] + ".mpy"] = compiled(rel, p.read_bytes())
    return files


def build(out, firmware=FIRMWARE, extra=None):
    """Write an image holding the firmware (see firmware_files), plus `extra` {path: text}."""
    fs = LittleFS(block_size=BLOCK_SIZE, block_count=BLOCK_COUNT, read_size=32, prog_size=32,
                  lookahead_size=32)
    files = firmware_files(firmware)
    for name, text in (extra or {}).items():
        files[name] = text.encode() if isinstance(text, str) else text
    for name, data in files.items():
        _mkdirs(fs, name)
        with fs.open(name, "wb") as f:
            f.write(data)
    Path(out).write_bytes(fs.context.buffer)
    return sorted(files)


def listdir(image, path="/"):
    fs = LittleFS(block_size=BLOCK_SIZE, block_count=BLOCK_COUNT, read_size=32, prog_size=32,
                  lookahead_size=32, mount=False)
    fs.context.buffer = bytearray(Path(image).read_bytes())
    fs.mount()
    return fs.listdir(path)
