"""Make the README's pictures from the virtual fixture: docs/monitor.svg (the monitor's
screen) and docs/report.png (`stackpress report` of a run with a profile and cycling).
Run: .venv/bin/python docs/pictures.py  (about a minute)."""

import collections
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from stackpress import monitor as mon
from stackpress.link import Link
from stackpress.report import report

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def main():
    sim = subprocess.Popen(
        [str(BIN / "stackpress"), "sim", "--speed", "max", "--seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    port = sim.stdout.readline().split(" ", 1)[1].strip()
    try:
        prof = HERE / "_profile.toml"
        prof.write_text(
            'name = "demo"\n[[step]]\nto_mpa = 50\nrate_mpa_s = 0.5\nhold_min = 40\n'
            "[[step]]\nto_mpa = 30\nrate_mpa_s = 0.05\nuntil_stopped = true\n"
        )
        subprocess.run(
            [str(BIN / "stackpress"), "--port", port, "profile", "run", str(prof)], check=True, capture_output=True
        )
        prof.unlink()
        log = HERE / "_run.csv"
        log.unlink(missing_ok=True)
        subprocess.run(
            [str(BIN / "stackpress"), "--port", port, "log", "--out", str(log), "--duration", "50"],
            check=True,
            capture_output=True,
        )
        report(log, HERE / "_report")
        (HERE / "_report" / "report.png").replace(HERE / "report.png")
        with Link(port) as link:
            info = dict(link.command("status"), port="/dev/ttyACM0")
            profile = link.command("profile")
            traces = mon.Traces()
            events = collections.deque(["#812 profile step 2 of 2", "#813 mode ramp", "#845 mode hold"], maxlen=4)
            last = {}
            t_next = 0.0
            for rec in link.records(6.0):
                if rec["t"] != "tel":
                    continue
                last = rec
                if time.monotonic() >= t_next:
                    t_next = time.monotonic() + 0.1
                    traces.add(rec)
        console = Console(record=True, width=80, height=24, file=open("/dev/null", "w"))
        console.print(mon._panel(info, last, traces, events, "a ack alarms · s new setpoint · q quit", profile))
        console.save_svg(str(HERE / "monitor.svg"), title="stackpress monitor")
        log.unlink()
        for p in (HERE / "_report").iterdir():
            p.unlink()
        (HERE / "_report").rmdir()
    finally:
        sim.terminate()
        sim.wait(timeout=20)


if __name__ == "__main__":
    main()
