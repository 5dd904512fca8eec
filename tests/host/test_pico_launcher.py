"""How `stackpress sim --board pico` finds what it needs, and says what is missing."""

import os
import subprocess
import sys
from pathlib import Path

from stackpress.virtual import pico

BIN = Path(sys.executable).parent


def test_the_board_facts_come_from_the_pico_board_module():
    c = pico.config()
    assert c["pins"]["hx_sck"] == 2 and c["pins"]["step"] == 10 and c["load_cells"] == 3, c
    assert c["ntc"] == {"r25_ohm": 10000, "beta_k": 3950, "pullup_ohm": 10000}, c
    assert c["fs_bytes"] == pico.FS_BLOCKS * 4096


def _sim(*args, **env):
    return subprocess.run(
        [str(BIN / "stackpress"), "sim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, **env),
    )


def test_an_image_without_the_pico_board_is_refused():
    r = _sim("--uf2", "x.uf2")
    assert r.returncode == 2 and "--uf2 and --bootrom are for --board pico" in r.stderr, r.stderr


def test_a_missing_image_or_bootrom_is_named(tmp_path):
    rom = tmp_path / "rom.bin"
    rom.write_bytes(bytes(16384))
    r = _sim("--board", "pico", STACKPRESS_RP2_UF2=str(tmp_path / "none.uf2"), STACKPRESS_RP2_BOOTROM=str(rom))
    assert r.returncode == 2, r.stderr
    # Without Node.js or rp2040js, that is what is missing; with them, the image.
    assert any(
        m in r.stderr
        for m in ("none.uf2 does not exist", "Node.js, which is not installed", "rp2040js is not installed")
    ), r.stderr
    r = _sim("--board", "pico", STACKPRESS_RP2_UF2=str(rom), STACKPRESS_RP2_BOOTROM=str(tmp_path / "x.uf2"))
    assert r.returncode == 2 and ("x.uf2 does not exist" in r.stderr or "not installed" in r.stderr), r.stderr


def test_the_chips_load_cells_must_be_the_models(tmp_path):
    fw = tmp_path / "boards"
    fw.mkdir()
    text = (pico.FIRMWARE / "boards" / "pico.py").read_text()
    (fw / "pico.py").write_text(text.replace("\nLOAD_CELLS = 3 ", "\nLOAD_CELLS = 1 "))
    pico.check_load_cells(pico.FIRMWARE, 3)
    pico.check_load_cells(tmp_path, 1)
    try:
        pico.check_load_cells(tmp_path, 3)
        said = None
    except pico.PicoUnavailable as e:
        said = str(e)
    assert said and "reads 1 load cell (LOAD_CELLS) and the fixture has 3" in said, said
    assert "--set fixture.load_cells.count=1" in said, said


def test_a_firmware_tree_without_main_is_refused(tmp_path):
    r = _sim("--firmware", str(tmp_path))
    assert r.returncode == 2 and "is not a firmware tree (it has no main.py)" in r.stderr, r.stderr
