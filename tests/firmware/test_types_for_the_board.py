"""The firmware that runs on a Pico (main.py, boards/pico.py, stackpress/) type-checked with
mypy against MicroPython's own rp2 stubs, so a call the Pico's `machine`, `rp2` or `time`
does not have fails here, not on the bench. (boards/virtual.py runs on the unix port.)"""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SITE = next(Path(sys.executable).parent.parent.glob("lib/python*/site-packages"))


def test_pico_firmware_type_checks_against_the_rp2_stubs(tmp_path):
    # The stubs package installs its .pyi files at the top of site-packages; give mypy
    # only those (and the stubs' own typeshed for the standard library).
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    record = next(SITE.glob("micropython_rp2_rpi_pico_stubs-*.dist-info")) / "RECORD"
    tops = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    for top in sorted(t for t in tops if t.endswith(".pyi") or (SITE / t / "__init__.pyi").exists()):
        (stubs / top).symlink_to(SITE / top)
    (stubs / "_mpy_shed").symlink_to(SITE / "_mpy_shed")
    fw = ROOT / "firmware"
    files = ["main.py", "boards/pico.py"] + sorted(str(p.relative_to(fw)) for p in (fw / "stackpress").glob("*.py"))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "tests" / "types" / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--custom-typeshed-dir",
            str(SITE),
            *files,
        ],
        cwd=fw,
        capture_output=True,
        text=True,
        timeout=300,
        env={"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stdout + p.stderr
