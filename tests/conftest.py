import functools
import os
import subprocess
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
        from stackpress import firmware

        for name, data in firmware.firmware_files(ROOT / "firmware").items():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            (into / name).write_bytes(data)
    return into


_FIRMWARE = []


def firmware_dir():
    """One compiled copy of the firmware for the whole test run (see compiled_firmware)."""
    if not _FIRMWARE:
        _FIRMWARE.append(compiled_firmware(tempfile.mkdtemp(prefix="stackpress-fw-")))
    return _FIRMWARE[0]


@functools.lru_cache(maxsize=None)
def record_fields(load_cells=1):
    """The telemetry record's fields as this firmware announces them (its `schema`), asked
    of the firmware itself under MicroPython: tests never write the schema out again."""
    code = "import sys; sys.path.insert(0, %r); from stackpress.history import fields; print(' '.join(fields(%d)))" % (
        str(firmware_dir()),
        load_cells,
    )
    p = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return tuple(p.stdout.split())


def log_meta(n_load_cells=1, **meta):
    """A new log's metadata as the logger writes it: `meta` and the record fields of a
    fixture with this many load cells."""
    return dict(meta, record_fields=list(record_fields(n_load_cells)))


def read_rows(paths):
    """(metadata, rows as dicts with None where empty, events, notes) of a log, through
    stackpress.read_log: for tests that look at records one by one."""
    import math

    from stackpress import read_log

    df = read_log(paths)
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]
    return df.attrs["meta"], rows, df.attrs["events"], df.attrs["notes"]


def telemetry(boot, seq, **fields):
    """A telemetry record as the fixture sends it: holding 40 MPa, pressure 40 + seq/1000."""
    rec = {
        "t": "tel",
        "boot": boot,
        "seq": seq,
        "device_ms": seq * 1000,
        "state": "hold",
        "pressure_mpa": 40.0 + seq / 1000,
        "setpoint_mpa": 40.0,
        "p_min_mpa": 39.9,
        "p_max_mpa": 40.1,
        "n_samples": 10,
        "force_n": 3141.6,
        "alarms": [],
    }
    rec.update(fields)
    return rec
