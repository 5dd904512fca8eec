"""The firmware fits a Pico's heap: loaded as .mpy, built in main.py's order, run for a simulated
10 minutes of holding, with telemetry and commands going, under `micropython -X
heapsize=192k` (the Pico's MicroPython v1.28 has 240 KB: hardware/README.md). The unix port is 64-bit, so
every object that holds pointers is up to twice its size on the Pico: these figures
are an upper bound. The figures are in the message, and in hardware/README.md."""

import json
import re
import subprocess

from conftest import MICROPYTHON, ROOT

from stackpress import firmware

HERE = ROOT / "tests" / "firmware"


def test_the_firmware_runs_in_a_192k_heap_with_room_to_spare(tmp_path):
    # As flashed (and as the virtual fixture's image holds it): modules as .mpy.
    fw = tmp_path / "fw"
    for name, data in firmware.firmware_files().items():
        (fw / name).parent.mkdir(parents=True, exist_ok=True)
        (fw / name).write_bytes(data)
    (tmp_path / "flash").mkdir()
    (tmp_path / "tf").symlink_to(HERE)
    # Short relative paths, as on a Pico ("stackpress/app.mpy"): every module keeps its path
    # as a string in the heap, and a test's long temporary paths cost 2 KB that no board has.
    p = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=192k", "tf/heap_probe.py", "fw", "tf", "flash"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    fig = json.loads(p.stdout.splitlines()[0])
    block = int(re.search(r"max free sz: (\d+)", p.stdout).group(1)) * 16  # 16-byte GC blocks
    needs = fig["status_answered_with_free"]
    figures = "used %.1f KB, free %.1f KB, largest free block %d B (heap 192 KB); status answered with %s B free" % (
        fig["alloc"] / 1024,
        fig["free"] / 1024,
        block,
        needs,
    )
    print(figures)
    assert fig["holding"] and fig["memory_errors"] == 0, figures
    # 40 KB until the cycler's analog output and fault line took 5.4 KB of it (hardware/README.md)
    assert fig["free"] >= 32 * 1024, figures
    # Replies and records are written in pieces and commands parsed where they arrived:
    # the largest block anything needs is a file's (592 B on the unix port: t_memory.py).
    assert block >= 768, figures
    # A status reply never needs more heap than the loop leaves free: a quarter of it at most.
    assert needs is not None and needs <= fig["free"] // 4, figures
