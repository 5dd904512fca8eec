"""A sudden swelling of the cell, seen through disc springs with friction: the springs slide
on at the hold's force and take up part of it, which the motor's travel alone misses (a 5 um
swelling showed as 2 um). The thickness adds back what they took up; a sudden shrinking, where
they stick, needs nothing (firmware/stackpress/dilatometer.py)."""

import json

import pytest
from conftest import ROOT
from simfixture import RunningSim, stackpress

AT_S = 500


def _status_at(port, uptime_s):
    while True:
        r = stackpress(port, "status", "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        if st["uptime_s"] >= uptime_s:
            return st


@pytest.mark.parametrize("swell_um,over_s", [(5.0, 1.0), (-5.0, 1.0), (5.0, 60.0)])
def test_thickness_follows_a_sudden_change_within_half_a_micrometre(tmp_path, swell_um, over_s):
    sc = json.loads((ROOT / "hardware" / "scenarios" / "standard.json").read_text())
    sc["fixture"] = str(ROOT / "hardware" / "fixture.json")
    sc["cycling"]["cycles"] = 0
    sc["events"] = [{"at_s": AT_S, "fault": "cell_expansion", "expansion_um": swell_um, "duration_s": over_s}]
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(sc))
    truth = tmp_path / "truth.csv"
    # 100x: the host reads the thickness before the event (the hold settles by ~150 s).
    sim = RunningSim("--speed", "100", "--scenario", str(path), "--truth", str(truth), "--truth-every", "10")
    try:
        assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "300").returncode == 0
        before = _status_at(sim.port, AT_S - 100)
        after = _status_at(sim.port, AT_S + 200)
    finally:
        sim.stop()
    assert before["uptime_s"] < AT_S, before["uptime_s"]
    rows = [line.split(",") for line in truth.read_text().splitlines()[1:]]

    def true_um(t_s):
        return float(min(rows, key=lambda x: abs(float(x[0]) - t_s))[4])

    reported = after["thickness_um"] - before["thickness_um"]
    true = true_um(after["uptime_s"]) - true_um(before["uptime_s"])
    print(
        "%+.0f um over %.0f s: reported %+.3f um, true %+.3f, springs' slip %.3f um"
        % (swell_um, over_s, reported, true, after["thickness_slip_um"])
    )
    assert abs(reported - true) <= 0.5, (reported, true, after["thickness_slip_um"])
