"""A sudden swelling of the cell, seen through disc springs with friction: the springs slide
on at the hold's force and take up part of it, which the motor's travel alone misses (a 5 um
swelling showed as 2 um). The thickness adds back what they took up; a sudden shrinking, where
they stick, needs nothing (firmware/stackpress/dilatometer.py)."""

import pytest
from simfixture import RunningSim, hold_and_read, pauses, scenario_file, truth_at

AT_S = 500


@pytest.mark.parametrize("swell_um,over_s", [(5.0, 1.0), (-5.0, 1.0), (5.0, 60.0)])
def test_thickness_follows_a_sudden_change_within_half_a_micrometre(tmp_path, swell_um, over_s):
    events = [{"at_s": AT_S, "fault": "cell_expansion", "expansion_um": swell_um, "duration_s": over_s}]
    path = scenario_file(tmp_path, events, cycles=0)
    truth = tmp_path / "truth.csv"
    # The hold settles by ~150 s; the thickness is read 100 s before the event and 200 s after.
    sim = RunningSim(
        "--speed",
        "max",
        "--scenario",
        str(path),
        "--truth",
        str(truth),
        "--truth-every",
        "10",
        *pauses(AT_S - 100, AT_S + 200),
    )
    before, after = hold_and_read(sim, 40, AT_S - 100, AT_S + 200)

    def true_um(t_s):
        return truth_at(truth, t_s, "cell_thickness_um")

    reported = after["thickness_um"] - before["thickness_um"]
    true = true_um(after["uptime_s"]) - true_um(before["uptime_s"])
    print(
        "%+.0f um over %.0f s: reported %+.3f um, true %+.3f, springs' slip %.3f um"
        % (swell_um, over_s, reported, true, after["thickness_slip_um"])
    )
    assert abs(reported - true) <= 0.5, (reported, true, after["thickness_slip_um"])
