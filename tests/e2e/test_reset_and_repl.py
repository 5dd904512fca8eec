"""Handing the REPL to mpremote, resetting, and stopping the fixture cleanly."""

import json
import signal
import subprocess
import time

import pytest
from simfixture import BIN, RunningSim, alive, stackpress


def _status(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_repl_for_mpremote_then_reset_resumes_hold(tmp_path):
    sim = RunningSim("--speed", "50", "--seed", "2", "--truth", str(tmp_path / "truth.csv"))
    try:
        assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "60").returncode == 0
        r = stackpress(sim.port, "repl")
        assert r.returncode == 0 and "mpremote connect" in r.stdout
        ls = subprocess.run(
            [str(BIN / "mpremote"), "connect", sim.port, "resume", "fs", "ls"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ls.returncode == 0 and "main.py" in ls.stdout and "state.json" in ls.stdout, ls.stdout + ls.stderr
        assert stackpress(sim.port, "status").returncode == 3  # at the REPL: says so, exit 3
        t_reset = time.monotonic()
        r = stackpress(sim.port, "reset")
        assert r.returncode == 0, r.stderr
        time.sleep(1.0)
        st = _status(sim.port)
        assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4, st
        assert st["uptime_s"] < (time.monotonic() - t_reset + 5) * 50  # it did reboot
    finally:
        sim.stop()
    rows = (tmp_path / "truth.csv").read_text().splitlines()[1:]
    peak = max(float(r.split(",")[2]) for r in rows)
    assert peak <= 40 * 1.01, peak  # true pressure never went past 1 % of setpoint, reset included


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sim_stops_on_signal_and_leaves_no_process(sig):
    sim = RunningSim("--speed", "20")
    deadline = time.monotonic() + 10
    while not sim.board_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = sim.board_pids()
    assert pids, "board process not found"
    rc, err = sim.stop(sig)
    assert rc == 0, err
    assert "stopped:" in err
    time.sleep(0.2)
    assert not any(alive(p) for p in pids)
