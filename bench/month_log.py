"""A month of 1 s records written the way `stackpress log` writes them (logfile.CsvLog), for
measuring `stackpress report` and `stackpress.read_log` at the scale of a real test.

Three load cells; 40 MPa, then 25 MPa from day 10 and 60 MPa from day 20 (each change a
ramp of a minute); the cell breathes +-1.5 um every 10 h; the room swings 1 K a day; one
reboot on day 15 (its sequence restarts); an alarm on day 5 and its ack, audit and note lines.
The values are deterministic (a seeded generator), so two runs write the same file.

    python bench/month_log.py OUT.csv [--days 30]
"""

import argparse
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "host"))

from stackpress.logfile import CsvLog  # noqa: E402

START_UNIX_MS = 1_790_000_000_000  # 2026-09-21 UTC
AREA_MM2 = 78.54
RECORD_PERIOD_S = 1
CHANNEL_SHARES = (0.34, 0.33, 0.33)


def record_fields(load_cells: int) -> list[str]:
    """The firmware's own field list (firmware/stackpress/history.py), asked of the firmware
    under MicroPython, as the fixture's `schema` command would give it."""
    code = "import sys; sys.path.insert(0, %r); from stackpress.history import fields; print(' '.join(fields(%d)))"
    out = subprocess.run(
        [str(BIN / "micropython"), "-c", code % (str(ROOT / "firmware"), load_cells)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.split()


def setpoint_at(t_s: float) -> float:
    day = t_s / 86400
    return 40.0 if day < 10 else 25.0 if day < 20 else 60.0


def write(path: str, days: float = 30.0) -> int:
    rnd = random.Random(20261201)
    meta = {
        "stackpress log": "bench month",
        "fixture_id": "bench-month",
        "board": "pico",
        "firmware_version": "0.8.0",
        "cell_area_mm2": AREA_MM2,
        "cell": "Li | LPSCl | NMC811, bench data",
        "settings": {"hold_alarm_band_mpa": 0.5, "hold_alarm_after_s": 10},
        "record_fields": record_fields(len(CHANNEL_SHARES)),
    }
    log = CsvLog(path, meta)
    n = int(days * 86400 / RECORD_PERIOD_S)
    boot, seq, boot_t0_s = 1, 0, 0.0
    boot_id = "a1b2c3d4"
    sp_prev = setpoint_at(0)
    ramp_until = -1.0
    for k in range(n):
        t_s = k * RECORD_PERIOD_S
        if k == n // 2:  # a reboot: sequence and device clock restart
            boot, seq, boot_t0_s, boot_id = 2, 0, t_s, "e5f6a7b8"
            seq += 1
            log.row(
                {"t": "evt", "kind": "boot", "boot": boot, "seq": seq, "device_ms": 0, "reset_cause": "power_on"},
                boot_id,
                START_UNIX_MS + t_s * 1000,
                "live",
            )
        sp = setpoint_at(t_s)
        if sp != sp_prev:
            ramp_from, ramp_until, sp_prev = sp_prev, t_s + 60, sp
            log.note(
                "audit %s: %s"
                % (
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START_UNIX_MS / 1000 + t_s)),
                    json.dumps(
                        {"user": "alice", "program": "stackpress hold", "cmd": "hold", "args": {"mpa": sp}, "ok": True}
                    ),
                )
            )
        if t_s < ramp_until:
            state = "ramp"
            p = sp + (ramp_from - sp) * (ramp_until - t_s) / 60
        else:
            state = "hold"
            p = sp + rnd.gauss(0, 0.002)
        seq += 1
        force_n = p * AREA_MM2
        alarms = "overforce" if 5 * 86400 <= t_s < 5 * 86400 + 600 else ""
        rec = {
            "t": "tel",
            "boot": boot,
            "seq": seq,
            "device_ms": int((t_s - boot_t0_s) * 1000),
            "state": state,
            "n_samples": 10,
            "pressure_mpa": round(p, 5),
            "setpoint_mpa": sp,
            "ref_mpa": sp,
            "p_min_mpa": round(p - abs(rnd.gauss(0, 0.002)), 5),
            "p_max_mpa": round(p + abs(rnd.gauss(0, 0.002)), 5),
            "force_n": round(force_n, 2),
            "position_um": round(5000 + 12 * p, 2),
            "thickness_um": round(1.5 * math.sin(2 * math.pi * t_s / 36000) + rnd.gauss(0, 0.02), 3),
            "temperature_c": round(25 + 0.5 * math.sin(2 * math.pi * t_s / 86400), 2),
            "raw_counts": int(34800 * force_n),
            "alarms": alarms.split("|") if alarms else [],
            "uniformity_pct": round(1.0 + rnd.gauss(0, 0.05), 3),
            "centre_x_mm": round(0.05 + rnd.gauss(0, 0.005), 4),
            "centre_y_mm": round(-0.02 + rnd.gauss(0, 0.005), 4),
        }
        for i, share in enumerate(CHANNEL_SHARES):
            rec["force_ch%d_n" % i] = round(force_n * share, 2)
        log.row(rec, boot_id, START_UNIX_MS + t_s * 1000, "live")
        if t_s == 5 * 86400:
            seq += 1
            alarm = {"t": "evt", "kind": "alarm", "boot": boot, "seq": seq, "device_ms": rec["device_ms"]}
            log.row(
                dict(alarm, alarms=["overforce"]),
                boot_id,
                START_UNIX_MS + t_s * 1000,
                "live",
            )
        if t_s == 5 * 86400 + 600:
            log.note('note 2026-09-26T00:10:00Z: {"user": "alice", "text": "overforce: checked the cell, acked"}')
    log.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--days", type=float, default=30.0)
    a = ap.parse_args()
    t = time.monotonic()
    n = write(a.out, a.days)
    print("wrote %d records to %s in %.0f s" % (n, a.out, time.monotonic() - t), file=sys.stderr)


if __name__ == "__main__":
    main()
