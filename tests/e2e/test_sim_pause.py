"""`sim --pause-at`: the virtual world holds still at a chosen time until a host writes, so a
test reads the fixture there whatever the machine's load (a full-speed sim otherwise runs
on while a slow host starts its next command: the reason a test read a status 100 s late)."""

import json
import queue
import re
import threading

from simfixture import RunningSim, stackpress


def _stderr_lines(sim):
    lines = queue.Queue()

    def read():
        try:
            for line in sim.proc.stderr:
                lines.put(line)
        except (ValueError, OSError):
            pass  # closed when the sim is stopped

    threading.Thread(target=read, daemon=True).start()
    return lines


def _await_pause(lines, bound_s=120):
    """Waits for the sim to say it paused (an event, not a sleep; the bound only ends a
    broken run); returns the virtual time it paused at, s."""
    seen = []
    while True:
        try:
            line = lines.get(timeout=bound_s)
        except queue.Empty:
            raise AssertionError("the sim did not pause: %r" % seen[-5:]) from None
        seen.append(line)
        m = re.search(r"paused at t=([0-9.]+) s", line)
        if m:
            return float(m.group(1))


def test_the_clock_waits_at_each_pause_for_the_next_host_command():
    sim = RunningSim("--speed", "max", "--pause-at", "0,100")
    lines = _stderr_lines(sim)
    try:
        assert _await_pause(lines) == 0.0
        first = json.loads(stackpress(sim.port, "status", "--json").stdout)
        # Held at power-on: the board boots only now, for this command.
        assert first["uptime_s"] < 60, first["uptime_s"]
        # Held at the first sample at or after 100 s: not one more.
        assert 100.0 <= _await_pause(lines) < 100.1
        second = json.loads(stackpress(sim.port, "status", "--json").stdout)
        assert 99 <= second["uptime_s"] < 160, second["uptime_s"]
    finally:
        sim.stop()


def test_pause_times_are_checked():
    r = stackpress("", "sim", "--pause-at", "10,-1")
    assert r.returncode == 2 and "--pause-at takes times of 0 s or more" in r.stderr, r.stderr
