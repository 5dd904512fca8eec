"""The virtual fixture's physics, checked against the sourced numbers in hardware/."""

import statistics

import pytest

from stackpress.virtual import params
from stackpress.virtual.model import FixtureModel


def _model(*sets, seed=1):
    fx, sc = params.resolve(sets=list(sets))
    return FixtureModel(fx, sc, seed=seed)


def _to_force(m, target_n, max_steps=250):
    while m.force_n < target_n:
        m.advance(min(max_steps, max(1, int((target_n - m.force_n) / 0.04))))
    return m


def _k(m, steps):
    f0, x0 = m.force_n, m.drive_um
    m.advance(steps)
    return (m.force_n - f0) / (m.drive_um - x0)


def test_hx711_scale_and_zero_follow_the_datasheets():
    m = _model()
    lcs = m.fx["load_cells"]
    assert m.n_cells == 3  # the reference build
    for i in range(m.n_cells):
        # 1 uV/N into +-19.53 mV over 2**23, times this cell's deviation from its datasheet
        assert abs(m.counts_per_n(i) - 429.5 * (1 + lcs["sensitivity_deviation"][i])) < 0.1
        # zero balance 0.02 mV/V at 5 V, plus this cell's deviation
        assert abs(m.zero_counts(i) - 42950 * (1 + lcs["zero_balance_deviation_mv_per_v"][i] / 0.02)) < 2
    assert abs(m.um_per_step - 0.0125) < 1e-12  # 2 mm / (200 * 16 * 50)


def test_springs_slide_along_the_loading_curve_and_stick_on_reversal():
    m = _to_force(_model(), 3141.6)
    k_load = _k(m, 640)  # on along the loading curve: the stack slides
    assert 3.3 < k_load < 3.8, k_load  # ~3.5 N/um (x1.04 friction) with the rigid path in series
    k_rev = _k(m, -64)  # reversal: friction holds the discs until it reverses
    assert 14 < k_rev < 18, k_rev
    m.advance(-4000)  # far enough back to slide down the unloading curve
    k_unload = _k(m, -640)
    assert 3.0 < k_unload < 3.5, k_unload


def test_friction_loop_width_is_the_configured_fraction():
    m = _to_force(_model("fixture.drive.microstep_error_um=0"), 3000)
    m.advance(0)
    f_up = m.force_n  # on the loading curve at this drive position
    for _ in range(4):
        m.advance(2000)  # on up, then back down to the same position: the
    for _ in range(4):  # unloading curve, below by twice the friction band
        m.advance(-2000)
    f_down = m.force_n
    width = (f_up - f_down) / f_up
    h = m.friction
    assert 0.8 * 2 * h / (1 + h) < width < 1.05 * 2 * h / (1 + h), width


def test_rigid_path_alone_is_the_tie_rods_in_series_with_the_cell():
    m = _to_force(_model("fixture.springs.present=false"), 3141.6, max_steps=20)
    k = _k(m, 64)
    assert abs(k - 1 / (1 / 71 + 1 / 1500)) < 0.5, k


def test_breathing_amplitude_and_growth_per_cycle():
    m = _model()
    rest = m.rest_s
    assert m.cell_growth_um(rest) == 0
    full = m.cell_growth_um(rest + 3600)  # end of a 1C charge
    assert abs(full - (4.85 * 2 + 0.2)) < 1e-6
    after_cycle = m.cell_growth_um(rest + 7200)
    assert abs(after_cycle - 0.2) < 1e-6
    assert m.cell_growth_um(rest + 5 * 7200 + 5000) == pytest.approx(5 * 0.2)  # 5 cycles, then rest


@pytest.mark.parametrize("rate, noise_n", [(10, 0.050), (80, 0.090)])
def test_adc_noise_is_the_datasheet_figure_at_each_rate(rate, noise_n):
    m = _to_force(_model("fixture.adc.rate_sps=%d" % rate, "scenario.cycling.rest_before_s=1e9", seed=3), 2000)
    counts = [m.advance(0)[0] for _ in range(3000)]
    diffs = [b - a for a, b in zip(counts, counts[1:])]
    sd_n = statistics.pstdev(diffs) / 2**0.5 / m.counts_per_n()
    assert 0.85 * noise_n < sd_n < 1.15 * noise_n, sd_n


def test_an_hx711_has_two_rates():
    with pytest.raises(ValueError):
        _model("fixture.adc.rate_sps=40")


def test_constant_gap_relaxes_as_koerver_measured():
    # Koerver 2018: a constant-gap cell relaxed from 65.5 to 61.9 MPa over a 16 h rest.
    m = _model("fixture.springs.present=false", "scenario.cycling.rest_before_s=1e9")
    while m.force_n / m.area_mm2 < 65.5:
        m.advance(1)
    for _ in range(16 * 3600 * m.rate_sps):
        m.advance(0)
    assert 61.6 < m.force_n / m.area_mm2 < 62.2, m.force_n / m.area_mm2


def test_temperature_step_moves_the_frame_and_the_load_cell_zero():
    m = _model(
        "fixture.springs.present=false", "scenario.cycling.rest_before_s=1e9", "scenario.cell.creep_um_per_mpa=0"
    )
    _to_force(m, 2000, max_steps=20)
    f0 = m.force_n
    m.ambient_c = m.temp0_c + 10  # a 10 degC step, then hours for the frame to follow
    for _ in range(4 * 3600 * m.rate_sps):
        m.advance(0)
    assert abs(m.temp_c - (m.temp0_c + 10)) < 0.01
    growth_um = 10 * (m.fixture_um_per_k + m.cell_um_per_k)
    assert m.force_n - f0 == pytest.approx(growth_um * m.k_rc, rel=0.02)
    # Each load cell reads high by its zero tempco (0.5 N/K on 10 kN); the total by span tempco and creep.
    err = m.sensed_n - m.force_n
    expect = 10 * 0.5 * m.n_cells + m.force_n * (10 * 0.00005 + m.lc_creep_gain * (1 - 0))
    assert err == pytest.approx(expect, rel=0.05)


def test_load_cell_creeps_with_load():
    m = _model(
        "fixture.springs.present=false", "scenario.cycling.rest_before_s=1e9", "scenario.cell.creep_um_per_mpa=0"
    )
    _to_force(m, 5000, max_steps=20)
    for _ in range(1800 * m.rate_sps):
        m.advance(0)
    creep = m.sensed_n - m.force_n
    assert creep == pytest.approx(0.0005 * m.force_n, rel=0.1)  # 0.05 % of load after 30 min


def test_backlash_is_lost_motion_only_when_unloaded():
    m = _model("fixture.drive.microstep_error_um=0")
    m.advance(4000)  # 50 um forward: the first 30 um only take up the play
    assert abs(m.load_um - 20.0) < 1e-9
    m.advance(-1000)  # reversing in free air: the plunger stays put
    assert abs(m.load_um - 20.0) < 1e-9
    m.advance(1080)  # forward again: lost motion until the flank is met, then it moves
    assert abs(m.load_um - 21.0) < 1e-9
    _to_force(m, 1000)
    f = m.force_n
    m.advance(-80)  # under load the plunger follows the drive back at once
    assert m.force_n < f - 2


def test_microstep_error_cancels_over_an_electrical_cycle():
    m = _model()
    m.advance(16)
    assert abs(m.drive_um - 16 * m.um_per_step) > 0.05  # a quarter cycle: off by ~0.1 um
    m.advance(48)
    assert abs(m.drive_um - 64 * m.um_per_step) < 1e-9


def test_same_seed_same_world():
    a, b = _model(seed=7), _model(seed=7)
    assert [a.advance(100) for _ in range(50)] == [b.advance(100) for _ in range(50)]


def test_an_off_centre_load_is_shared_by_the_load_cells_as_a_rigid_plate_shares_it():
    for n in (3, 4):
        m = _model("fixture.load_cells.count=%d" % n, "scenario.load.offset_x_mm=2.0", "scenario.load.offset_y_mm=-1.0")
        _to_force(m, 3000)
        loads = m.load_n()
        r = m.radius_mm
        assert sum(loads) == pytest.approx(m.force_n)
        # the moments about the axis: the load's centre is where the scenario put it
        import math

        x = sum(f * r * math.cos(2 * math.pi * i / n) for i, f in enumerate(loads)) / m.force_n
        y = sum(f * r * math.sin(2 * math.pi * i / n) for i, f in enumerate(loads)) / m.force_n
        assert (x, y) == (pytest.approx(2.0), pytest.approx(-1.0))
        mean = m.force_n / n
        assert m.uniformity_pct() == pytest.approx(100 * max(abs(f - mean) for f in loads) / mean)


def test_a_fault_on_one_channel_leaves_the_others_alone():
    m = _model("scenario.cycling.rest_before_s=1e9")
    m.events = [
        {"at_s": 1.0, "fault": "adc_disconnected", "channel": 1},
        {"at_s": 1.0, "fault": "adc_drift", "channel": 2, "drift_n_per_s": 10.0},
    ]
    _to_force(m, 2000)
    before = m.advance(0)
    for _ in range(20):
        after = m.advance(0)
    assert after[1] is None and before[1] is None
    assert abs(after[0] - before[0]) < 200  # noise only (0.05 N rms is ~21 counts)
    assert (after[2] - before[2]) / m.counts_per_n(2) == pytest.approx(10.0 * 2.0, abs=1.0)  # 10 N/s for 2 s
    with pytest.raises(ValueError):
        bad = _model()
        bad.events = [{"at_s": 0.0, "fault": "motor_blocked", "channel": 0}]
        bad.advance(0)
