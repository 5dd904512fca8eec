"""The virtual board's watchdog fires on a hung board at any speed, and never because the
machine is slow: at `--speed 50` (make demo's) the hang limit is 0.16 s of wall time, which
a busy machine exceeds without anything being hung."""

import json
import os
import signal
import time

from simfixture import RunningSim, scenario_file


def _status(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _wait(path, until, what, limit_s=300):
    end = time.monotonic() + limit_s  # a bound for a broken run, not a measurement
    while time.monotonic() < end:
        st = _status(path)
        if st and until(st):
            return st
        time.sleep(0.05)
    raise AssertionError("%s: not within %d s; last status %s" % (what, limit_s, _status(path)))


def test_a_sim_that_gets_no_cpu_for_a_second_does_not_reset_a_healthy_board(tmp_path):
    status = tmp_path / "status.json"
    sim = RunningSim("--speed", "50", "--status", str(status))
    try:
        st = _wait(status, lambda s: s["t_s"] > 20, "20 s of device time")
        # The machine is busy: the sim gets no CPU for a second (the board waits on it).
        os.kill(sim.proc.pid, signal.SIGSTOP)
        time.sleep(1.0)  # the stall itself (a stimulus, at least this long on any machine)
        os.kill(sim.proc.pid, signal.SIGCONT)
        t0 = st["t_s"]
        st = _wait(status, lambda s: s["t_s"] > t0 + 30, "30 s more of device time")
        assert st["resets"]["watchdog"] == 0 and st["boots"] == 1, st
    finally:
        sim.stop()


def test_a_hung_board_is_reset_at_speed_50(tmp_path):
    path = scenario_file(tmp_path, [{"at_s": 30, "board": "hang"}])
    status = tmp_path / "status.json"
    sim = RunningSim("--speed", "50", "--scenario", str(path), "--status", str(status))
    try:
        st = _wait(status, lambda s: s["boots"] >= 2, "a reboot after the hang at 30 s")
        assert st["resets"]["watchdog"] == 1, st
        # The reset came when the watchdog's 8 s ran out in device time, not before.
        assert st["t_s"] >= 30 + 8, st
    finally:
        sim.stop()
