"""`stackpress demo`: the virtual fixture ramps to 40 MPa and holds it, watched live."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

from .connect import open_link
from .monitor import monitor


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through `finally`, which stops the sim


def demo(speed: float, mpa: float, duration_s: float | None = None) -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    args = [sys.executable, "-m", "stackpress.cli", "sim", "--speed", "max" if speed is None else str(speed)]
    sim = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert sim.stdout is not None  # a pipe, asked for
    try:
        first = sim.stdout.readline().strip()
        if not first.startswith("port: "):
            print("stackpress: the virtual fixture did not start (%r)" % first, file=sys.stderr)
            return 3
        port = first[len("port: ") :]
        print(
            "virtual fixture on %s at %sx real time; holding %.1f MPa while the cell cycles (Ctrl-C stops; "
            "other stackpress commands reach it meanwhile: stackpress --port %s status)"
            % (port, speed or "max", mpa, port),
            file=sys.stderr,
        )
        with open_link(port) as link:
            link.hello()
            link.command("hold", mpa=mpa)
            monitor(link, duration_s)
    except KeyboardInterrupt:
        pass
    finally:
        if sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    return 0
