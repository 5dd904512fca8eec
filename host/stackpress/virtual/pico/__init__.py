"""The emulated Pico: the virtual fixture's board as an RP2040 (the npm package rp2040js)
running an official MicroPython image, with the firmware on its flash as `stackpress flash`
puts it there. board.mjs wires the chip to the model; chip.mjs makes the emulator behave
as the chip does where MicroPython needs it. This module finds what it needs (node, the npm
package, the image, the bootrom) and says how to get what is missing.

Nothing of MicroPython or the bootrom is part of stackpress: the user gives both files.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ...firmware import FIRMWARE

HERE = Path(__file__).resolve().parent
BOARD_JS = HERE / "board.mjs"
FS_OFFSET = 0xA0000  # MicroPython's RPI_PICO: the filesystem is the last 1408 KB of 2 MB
FS_BLOCKS = 352  # of 4096 bytes
FS_PROG_SIZE = 256  # as ports/rp2/modules/_boot.py mounts it
WATCHDOG_EXIT = 75  # board.mjs ends with these when the chip's watchdog timed out,
FORCED_RESET_EXIT = 76  # or was forced (machine.reset)
TESTED_UF2 = "MicroPython v1.28.0 for RPI_PICO (https://micropython.org/download/RPI_PICO/)"


class PicoUnavailable(Exception):
    """What the emulated Pico lacks, and how to get it."""


def board_constants(board: Path = FIRMWARE / "boards" / "pico.py") -> dict[str, Any]:
    """PINS, LOAD_CELLS and the NTC's values from the Pico's board module, read with ast
    (they live there once; nothing of the module runs on CPython)."""
    want = {"PINS", "LOAD_CELLS", "NTC_R25_OHM", "NTC_BETA_K", "NTC_PULLUP_OHM"}
    found: dict[str, Any] = {}
    for node in ast.parse(board.read_text()).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and t.id in want:
                    found[t.id] = ast.literal_eval(node.value)
    missing = want - set(found)
    if missing:
        raise PicoUnavailable("%s does not define %s" % (board, ", ".join(sorted(missing))))
    return found


def config(firmware: Path = FIRMWARE) -> dict[str, Any]:
    """What board.mjs is told (STACKPRESS_PICO)."""
    c = board_constants(Path(firmware) / "boards" / "pico.py")
    return {
        "pins": c["PINS"],
        "load_cells": c["LOAD_CELLS"],
        "ntc": {"r25_ohm": c["NTC_R25_OHM"], "beta_k": c["NTC_BETA_K"], "pullup_ohm": c["NTC_PULLUP_OHM"]},
        "fs_offset": FS_OFFSET,
        "fs_bytes": FS_BLOCKS * 4096,
    }


def check_load_cells(firmware: Path, count: int) -> None:
    """The chip's firmware reads as many load cells as the model has (boards/pico.py's
    LOAD_CELLS is the build's, fixture.json's load_cells.count the model's)."""
    built = board_constants(Path(firmware) / "boards" / "pico.py")["LOAD_CELLS"]
    if built != count:
        raise PicoUnavailable(
            "the firmware's boards/pico.py reads %d load cell%s (LOAD_CELLS) and the fixture has %d:"
            " make them agree (--set fixture.load_cells.count=%d, or LOAD_CELLS in a --firmware tree)"
            % (built, "" if built == 1 else "s", count, built)
        )


def node_bin() -> str:
    found = shutil.which("node") or shutil.which("nodejs")
    if not found:
        raise PicoUnavailable(
            "the emulated Pico runs on Node.js, which is not installed: 'apt-get install nodejs npm' "
            "(Debian, Ubuntu) or https://nodejs.org, then 'make setup'"
        )
    return found


def require_emulator() -> None:
    """Node.js and the npm package are there; raises PicoUnavailable saying how to get them."""
    node_bin()
    if not (HERE / "node_modules" / "rp2040js").is_dir():
        raise PicoUnavailable(
            "the npm package rp2040js is not installed: 'make setup' installs it (or 'npm ci' in %s)" % HERE
        )


def check(uf2: str | None, bootrom: str | None) -> tuple[str, str]:
    """The image and bootrom paths (arguments, else STACKPRESS_RP2_UF2 and
    STACKPRESS_RP2_BOOTROM), checked; raises PicoUnavailable saying what is missing."""
    require_emulator()
    uf2 = uf2 or os.environ.get("STACKPRESS_RP2_UF2")
    bootrom = bootrom or os.environ.get("STACKPRESS_RP2_BOOTROM")
    if not uf2:
        raise PicoUnavailable(
            "no MicroPython image: give --uf2 FILE or set STACKPRESS_RP2_UF2 (tested with %s)" % TESTED_UF2
        )
    if not bootrom:
        raise PicoUnavailable(
            "no RP2040 bootrom: give --bootrom FILE or set STACKPRESS_RP2_BOOTROM (the 16 KB binary "
            "from https://github.com/raspberrypi/pico-bootrom-rp2040, release b2)"
        )
    for what, path in (("image", uf2), ("bootrom", bootrom)):
        if not Path(path).is_file():
            raise PicoUnavailable("the %s %s does not exist" % (what, path))
    if Path(bootrom).stat().st_size != 16384:
        raise PicoUnavailable("%s is not an RP2040 bootrom (16384 bytes)" % bootrom)
    return str(uf2), str(bootrom)


def command(uf2: str, bootrom: str, fs_image: str, firmware: Path = FIRMWARE) -> tuple[list[str], dict[str, str]]:
    """The board process's command line and the environment it adds."""
    argv = [node_bin(), str(BOARD_JS), "--uf2", uf2, "--bootrom", bootrom, "--fs", fs_image]
    return argv, {"STACKPRESS_PICO": json.dumps(config(firmware))}
