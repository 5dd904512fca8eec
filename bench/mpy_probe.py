"""Run one of the probes under MicroPython (bench/alloc_probe.py: heap; bench/board_probe.py:
time) on the firmware as flashed (.mpy, as the virtual fixture's image has it), and return
the JSON line it prints last."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def probe(script: str) -> dict:
    from stackpress import firmware

    fw = Path(tempfile.mkdtemp(prefix="stackpress-fw-"))
    try:
        for name, data in firmware.firmware_files().items():
            (fw / name).parent.mkdir(parents=True, exist_ok=True)
            (fw / name).write_bytes(data)
        # 256k, as the firmware tests: the probes' own buffers (recorded conversions, the test
        # double's RAM disk) share the heap; the firmware's fit in 192k is make test's.
        p = subprocess.run(
            [
                str(BIN / "micropython"),
                "-X",
                "heapsize=256k",
                str(ROOT / "bench" / script),
                str(fw),
                str(ROOT / "tests" / "firmware"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        shutil.rmtree(fw, ignore_errors=True)
    if p.returncode:
        raise RuntimeError("%s failed: %s%s" % (script, p.stdout, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])
