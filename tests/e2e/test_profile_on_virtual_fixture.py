"""A pressure profile run by the fixture itself, through `stackpress profile`, across a reset."""

import json
import time

from simfixture import RunningSim, stackpress


def _profile(port):
    r = stackpress(port, "profile", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _until(port, ok, timeout_s=60):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        st = _profile(port)
        if ok(st):
            return st
        time.sleep(0.3)
    raise AssertionError("not reached: %s" % st)


def test_profile_runs_holds_survives_a_reset_and_stops(tmp_path):
    # Two schedules, so no check depends on how fast a loaded machine runs the sim: a
    # long first hold across the reset, then a short one to watch a step follow another.
    long, short = tmp_path / "long.toml", tmp_path / "short.toml"
    step2 = "[[step]]\nto_mpa = 20\nrate_mpa_s = 2\nuntil_stopped = true\n"
    long.write_text('name = "long"\n[[step]]\nto_mpa = 30\nrate_mpa_s = 5\nhold_h = 24\n' + step2)
    short.write_text('name = "short"\n[[step]]\nto_mpa = 25\nrate_mpa_s = 5\nhold_s = 60\n' + step2)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[step]]\nto_mpa = 30\nrate_mpa_s = 5\n")
    r = stackpress("/nonexistent", "profile", "check", str(bad))
    assert r.returncode == 2 and "step 1" in r.stderr and "hold" in r.stderr, r.stderr
    sim = RunningSim("--speed", "50", "--seed", "3")
    try:
        r = stackpress(sim.port, "profile", "run", str(long))
        assert r.returncode == 0 and "ramp to 30.000 MPa" in r.stdout, r.stdout + r.stderr
        _until(sim.port, lambda s: s["step"] == 1 and s["holding"])
        r = stackpress(sim.port, "hold", "10")
        assert r.returncode == 4 and "profile" in r.stderr, r.stderr  # the profile owns the setpoint
        # Over 60 s of holding, by the fixture's clock: its state saved at least once.
        before = _until(sim.port, lambda s: s["step"] == 1 and s["held_s"] >= 65)
        assert stackpress(sim.port, "reset").returncode == 0
        after = _until(sim.port, lambda s: s["step"] == 1 and s["holding"])
        assert after["held_s"] >= before["held_s"] - 61, (before, after)  # the hold time done is kept
        assert stackpress(sim.port, "profile", "stop").returncode == 0
        assert stackpress(sim.port, "profile", "run", str(short)).returncode == 0
        st = _until(sim.port, lambda s: s["step"] == 2 and s["holding"], timeout_s=120)
        assert st["remaining_s"] is None and st["setpoint_mpa"] == 20.0
        r = stackpress(sim.port, "profile", "status")
        assert "step 2 of 2: holding 20.000 MPa until stopped" in r.stdout, r.stdout
        r = stackpress(sim.port, "profile", "stop", "--json")
        st = json.loads(r.stdout)
        assert st["running"] is False and st["state"] == "hold" and st["setpoint_mpa"] == 20.0, st
        assert stackpress(sim.port, "hold", "25").returncode == 0
    finally:
        sim.stop()
