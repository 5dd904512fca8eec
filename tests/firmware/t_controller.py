import micropython

from stackpress.config import defaults
from stackpress.controller import HOLD, IDLE, RAMP, RELEASE, Controller

SPAN = 429.5  # counts per N
AREA = 78.54  # mm2
SPS = 80


def settings(counts_per_step=17.8, gain=0.25, rate_mpa_s=1.0, max_steps=250, sps=SPS):
    """The settings that give these counts per step, gain, ramp (and half the rate down),
    steps per sample, 20 N contact and 4000 steps of back-off, in SPAN counts/N."""
    c = defaults()
    c.update(
        cell_area_mm2=AREA,
        um_per_step=0.0125,
        stiffness_n_per_um=counts_per_step / (0.0125 * SPAN),
        loop_gain=gain,
        ramp_rate_mpa_s=rate_mpa_s,
        release_rate_mpa_s=rate_mpa_s / 2,
        max_step_rate_hz=max_steps * sps,
        contact_force_n=20.0,
        release_backoff_um=4000 * 0.0125,
    )
    return c


def _ctrl(counts_per_step=17.8, gain=0.25, rate_mpa_s=1.0):
    c = Controller()
    c.configure(settings(counts_per_step, gain, rate_mpa_s), SPAN, SPS)
    return c


def _run(c, true_cps, target_mpa, n, delay=1, start_steps=0, gap_steps=3000):
    """Integer plant: net counts = stiffness * (steps - gap); the sample lags `delay`."""
    steps = start_steps
    hist = [0] * (delay + 1)
    peak = 0
    for _ in range(n):
        net = int(max(0, steps - gap_steps) * true_cps)
        hist.append(net)
        seen = hist.pop(0)
        peak = max(peak, net)
        steps += c.update(seen)
    return net, peak, steps


def test_ramps_then_holds_without_overshoot():
    c = _ctrl()
    target = int(40 * AREA * SPAN)
    c.hold(target, 0)
    assert c.mode == RAMP
    net, peak, _ = _run(c, 17.8, 40, 5000)
    assert c.mode == HOLD
    assert abs(net - target) <= 0.001 * target, (net, target)
    assert peak <= 1.01 * target, (peak, target)


def test_wrong_stiffness_estimate_still_converges_without_overshoot():
    for true_cps in (8.9, 35.6):  # the fixture is 2x softer, or 2x stiffer, than configured
        c = _ctrl()
        target = int(25 * AREA * SPAN)
        c.hold(target, 0)
        net, peak, _ = _run(c, true_cps, 25, 8000)
        assert abs(net - target) <= 0.002 * target, (true_cps, net, target)
        assert peak <= 1.01 * target, (true_cps, peak, target)


def test_release_steps_down_and_backs_off():
    c = _ctrl()
    target = int(40 * AREA * SPAN)
    c.hold(target, 0)
    net, _, steps = _run(c, 17.8, 40, 5000)
    c.release(net)
    assert c.mode == RELEASE
    net2, peak, steps2 = _run(c, 17.8, 0, 12000, start_steps=steps)
    assert c.mode == IDLE
    assert net2 == 0 and peak <= net * 1.001
    assert steps2 < 3000 - 3000  # backed off past contact by release_backoff


def test_update_allocates_nothing_and_stays_in_small_ints():
    c = _ctrl(counts_per_step=0.05, gain=0.9)  # extreme: very fine steps, high gain
    c.hold(int(60 * AREA * SPAN), 0)
    micropython.heap_lock()
    try:
        for net in (0, 10, 1000000, 3000000, -3000000, 7000000):
            s = c.update(net)
    finally:
        micropython.heap_unlock()
    assert c.gain_q16 * c.e_lim < (1 << 30)
    assert -250 <= s <= 250


def test_tunes_cautious_clamp_onto_a_stiffer_fixture_does_not_overshoot():
    # `tune` clamps a new fixture with gain 0.05 and ramp 0.25 MPa/s before it knows the
    # stiffness; configured 16 N/um, a rigid clamp is 4.2x stiffer, so the ramp's
    # feed-forward is too large: it is used only while the measurement is behind the ramp.
    cps_cfg = 16 * 0.0125 * SPAN
    for true_cps in (2 * cps_cfg, 4.2 * cps_cfg):
        for delay in (0, 1):  # one or two samples old
            c = Controller()
            c.configure(settings(cps_cfg, 0.05, 0.25, 2000, 10), SPAN, 10)  # 0.25 MPa/s at 10 samples/s
            target = int(40 * AREA * SPAN)
            c.hold(target, 0)
            net, peak, _ = _run(c, true_cps, 40, 6000, delay=delay)
            assert abs(net - target) <= 0.002 * target, (true_cps, net, target)
            assert peak <= 1.01 * target, (true_cps, delay, peak / target)


def test_approach_before_contact_moves_at_most_a_contact_force_per_sample():
    c = _ctrl()
    c.hold(int(40 * AREA * SPAN), 0)
    s = c.update(0)
    assert 0 < s * 17.8 <= 20 * SPAN, s  # contact force 20 N at 17.8 counts per step
