"""The virtual fixture's physics, checked against the numbers in hardware/fixture.json."""
import statistics

from stackpress.virtual.model import FixtureModel


def _to_force(m, target_n, max_steps=250):
    while m.force_n < target_n:
        m.advance(min(max_steps, max(1, int((target_n - m.force_n) / 0.04))))
    return m


def test_hx711_scale_and_zero_follow_the_datasheets():
    m = FixtureModel(seed=1)
    assert abs(m.counts_per_n() - 429.5) < 0.1  # 1 uV/N into +-19.53 mV over 2**23
    assert abs(m.zero_counts() - 42950) < 2     # zero balance 0.02 mV/V at 5 V
    assert abs(m.um_per_step - 0.0125) < 1e-12  # 2 mm / (200 * 16 * 50)


def test_stiffness_at_40_mpa_is_the_spring_stack_in_series_with_the_frame():
    m = _to_force(FixtureModel(seed=1), 3141.6)
    f0, x0 = m.force_n, m.drive_um
    m.advance(800)
    k = (m.force_n - f0) / (m.drive_um - x0)
    assert 3.2 < k < 3.6, k  # ~3.5 N/um springs with the 71 N/um rigid path in series


def test_breathing_amplitude_and_growth_per_cycle():
    m = FixtureModel(seed=1)
    rest = m.sc["rest_before_s"]
    assert m.cell_growth_um(rest) == 0
    full = m.cell_growth_um(rest + 3600)  # end of a 1C charge
    assert abs(full - (4.85 * 2 + 0.2)) < 1e-6
    after_cycle = m.cell_growth_um(rest + 7200)
    assert abs(after_cycle - 0.2) < 1e-6


def test_adc_noise_is_the_datasheet_figure():
    m = _to_force(FixtureModel(seed=3), 2000)
    counts = [m.advance(0) for _ in range(2000)]
    sd_n = statistics.pstdev(counts) / m.counts_per_n()
    assert 0.075 < sd_n < 0.105, sd_n  # 90 nV rms at 1 uV/N


def test_backlash_is_lost_motion_only_when_unloaded():
    m = FixtureModel(seed=1)
    m.advance(4000)  # 50 um forward: the first 30 um only take up the play
    assert abs(m.load_um - 20.0) < 1e-9
    m.advance(-1000)  # reversing in free air: the plunger stays put
    assert abs(m.load_um - 20.0) < 1e-9
    m.advance(1080)   # forward again: lost motion until the flank is met, then it moves
    assert abs(m.load_um - 21.0) < 1e-9
    _to_force(m, 1000)
    f = m.force_n
    m.advance(-80)  # under load the plunger follows the drive back at once
    assert m.force_n < f - 2


def test_same_seed_same_world():
    a, b = FixtureModel(seed=7), FixtureModel(seed=7)
    assert [a.advance(100) for _ in range(50)] == [b.advance(100) for _ in range(50)]
