import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MICROPYTHON = str(Path(sys.executable).parent / "micropython")
os.environ.pop("STACKPRESS_PORT", None)
# Virtual fixtures started by tests register here, not where 'log --all' on this machine looks.
os.environ["STACKPRESS_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="stackpress-test-run-")


def compiled_firmware(into):
    """The firmware as the board gets it (modules as .mpy, main.py as source) under `into`,
    written once per directory; returns it."""
    into = Path(into)
    if not (into / "main.py").exists():
        from stackpress.virtual import image
        for name, data in image.firmware_files(ROOT / "firmware").items():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            (into / name).write_bytes(data)
    return into


_FIRMWARE = []


def firmware_dir():
    """One compiled copy of the firmware for the whole test run (see compiled_firmware)."""
    if not _FIRMWARE:
        _FIRMWARE.append(compiled_firmware(tempfile.mkdtemp(prefix="stackpress-fw-")))
    return _FIRMWARE[0]
