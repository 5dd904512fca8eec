"""Where a sample's wall time goes in the virtual fixture at full speed with three load cells
(issue 22): `make bench` runs this first and puts its figures in its JSON (`per_sample_us`).

Two measurements:
- in place: `stackpress sim --speed max` for DURATION_S with STACKPRESS_BOARD_STATS (the
  board says how long it worked on each sample and how long it waited for the model's
  reply) and STACKPRESS_SIM_STATS (the sim says how long the model and the whole serving
  of a request took); its port drained as a host would;
- apart: bench/board_probe.py under MicroPython splits the firmware's work into the HX711
  pin work and the control iteration (the rest of the pass: housekeeping, records, serial).

    python bench/sample_profile.py [--duration 20]     # one JSON line
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from mpy_probe import probe

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DURATION_S = 20.0


def in_place(duration_s: float) -> dict:
    env = dict(os.environ, STACKPRESS_BOARD_STATS="20000", STACKPRESS_SIM_STATS="1")
    proc = subprocess.Popen(
        [str(BIN / "stackpress"), "sim", "--speed", "max", "--duration", str(duration_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    port = proc.stdout.readline().split(" ", 1)[1].strip()
    fd = os.open(port, os.O_RDONLY | os.O_NOCTTY)

    def drain() -> None:  # a host reading every record, as a logger does
        try:
            while os.read(fd, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    _, err = proc.communicate(timeout=duration_s + 120)
    os.close(fd)
    board = [
        tuple(map(float, m))
        for m in re.findall(r"board stats: \d+ samples, working ([\d.]+) us, waiting ([\d.]+) us", err)
    ]
    sim = re.search(r"sim stats: (\d+) samples, model ([\d.]+) us, serving ([\d.]+) us", err)
    stopped = re.search(r"stopped: (\d+) samples, ([\d.]+) s virtual in ([\d.]+) s wall", err)
    if not board or not sim or not stopped:
        raise RuntimeError("no stats from the sim:\n" + err[-2000:])
    samples, virtual_s, wall_s = int(stopped.group(1)), float(stopped.group(2)), float(stopped.group(3))
    rest = board[1:] or board  # the first block includes the boot
    return {
        "board_working_us": sum(b[0] for b in rest) / len(rest),
        "board_waiting_us": sum(b[1] for b in rest) / len(rest),
        "model_us": float(sim.group(2)),
        "serving_us": float(sim.group(3)),
        "wall_us": 1e6 * wall_s / samples,
        "speed_vs_realtime": virtual_s / wall_s,
        "samples": samples,
    }


def profile(duration_s: float = DURATION_S) -> dict:
    apart = probe("board_probe.py")
    live = in_place(duration_s)
    pins, control = apart["pins_us"], apart["control_us"]
    working, waiting = live["board_working_us"], live["board_waiting_us"]
    # In place the board's work is pins + control + the rest of its pass; apart they are
    # timed alone: their share of the work in place is taken as apart.
    parts = {
        "firmware_hx711_pins_us": pins,
        "firmware_control_us": control,
        "firmware_rest_of_pass_us": max(0.0, working - pins - control),
        "model_us": live["model_us"],
        "sim_serving_other_us": live["serving_us"] - live["model_us"],
        "link_and_wakeups_us": max(0.0, waiting - live["serving_us"]),
    }
    return {
        "load_cells": apart["load_cells"],
        "per_sample_us": {k: round(v, 1) for k, v in parts.items()},
        "per_sample_wall_us": round(live["wall_us"], 1),
        "unaccounted_us": round(live["wall_us"] - sum(parts.values()), 1),
        "speed_vs_realtime": round(live["speed_vs_realtime"], 1),
        "samples": live["samples"],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=DURATION_S, help="seconds of the sim at full speed")
    a = ap.parse_args()
    print(json.dumps(profile(a.duration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
