"""Building the virtual board's flash: a littlefs2 image laid out as on a Pico.

The firmware goes in as a Pico gets it (firmware.py: modules as .mpy, so no compiler
run, and no compiler's heap, at boot; main.py as source).
"""

from __future__ import annotations

from pathlib import Path

from littlefs import LittleFS

from ..firmware import FIRMWARE, firmware_files

BLOCK_SIZE = 4096
BLOCK_COUNT = 256  # 1 MiB: the Pico's filesystem is 1.4 MB


def _mkdirs(fs: LittleFS, path: str) -> None:
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        try:
            fs.mkdir(d)
        except FileExistsError:
            pass


def build(
    out: str | Path,
    firmware: str | Path = FIRMWARE,
    extra: dict[str, str | bytes] | None = None,
    block_count: int = BLOCK_COUNT,
    prog_size: int = 32,
) -> list[str]:
    """Write an image holding the firmware (see firmware_files), plus `extra` {path: text}.
    The geometry is the virtual board's unless given (the emulated Pico's: pico.FS_BLOCKS
    blocks, programmed 256 bytes at a time as MicroPython's rp2 port mounts it)."""
    fs = LittleFS(block_size=BLOCK_SIZE, block_count=block_count, read_size=32, prog_size=prog_size, lookahead_size=32)
    files = firmware_files(firmware)
    for name, text in (extra or {}).items():
        files[name] = text.encode() if isinstance(text, str) else text
    for name, data in files.items():
        _mkdirs(fs, name)
        with fs.open(name, "wb") as f:
            f.write(data)
    Path(out).write_bytes(fs.context.buffer)
    return sorted(files)


def listdir(image: str | Path, path: str = "/") -> list[str]:
    fs = LittleFS(
        block_size=BLOCK_SIZE, block_count=BLOCK_COUNT, read_size=32, prog_size=32, lookahead_size=32, mount=False
    )
    fs.context.buffer = bytearray(Path(image).read_bytes())
    fs.mount()
    return fs.listdir(path)
