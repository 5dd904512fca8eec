"""Pressure controller: rate-limited ramps, hold, gap, release, in integers.

Floats are heap objects in MicroPython (on the RP2040 too), so the per-sample
update works in ADC net counts and microsteps only; `configure` does the float
work once, when a setting changes. References and the filter carry 4 fractional
bits (Q4) and the gain 16 (Q16), with every product bounded below 2**30 so that
nothing turns into a big int.

The law: move each sample by `loop_gain` of the steps the stiffness says the
error needs, plus the ramp's feed-forward. With one sample of sensing delay the
loop is critically damped at a gain of 0.25 and stable up to 1, so a fixture up to
~3x stiffer than configured still settles. Position integrates the moves, so the
loop has integral action (no steady error) without an integrator that can wind up.
"""

IDLE = 0
RAMP = 1
HOLD = 2
GAP = 3
RELEASE = 4
FAULT = 5
MODE_NAMES = ("idle", "ramp", "hold", "gap", "release", "fault")

_SMALL = (1 << 29) - 1


def _clamp(x, lim):
    if x > lim:
        return lim
    if x < -lim:
        return -lim
    return x


class Controller:
    def __init__(self):
        self.mode = IDLE
        self.target = 0  # setpoint, net counts
        self.ref_q4 = 0  # ramp reference, net counts << 4
        self.f_q4 = 0  # slow-filtered measurement for tare and display, net counts << 4
        self._frac = 0  # sub-step remainder, Q16
        self._backoff_left = 0
        self.backed_off = False  # a release has just finished backing off (the app takes it)

    def configure(self, c, counts_per_n, sample_rate_sps, ramp_mpa_s=None):
        """From the settings `c` (config.py's names and units) in this fixture's counts:
        `counts_per_n` load cell 0's span, `sample_rate_sps` the samples per second;
        `ramp_mpa_s` a profile step's rate, both ways, instead of the configured ones.
        Floats allowed here: the per-sample work is in net counts per sample."""
        counts_per_step = c["stiffness_n_per_um"] * c["um_per_step"] * counts_per_n
        per_sample = c["cell_area_mm2"] * counts_per_n / sample_rate_sps
        up_cps = (ramp_mpa_s or c["ramp_rate_mpa_s"]) * per_sample
        down_cps = (ramp_mpa_s or c["release_rate_mpa_s"]) * per_sample
        max_steps = c["max_step_rate_hz"] / sample_rate_sps
        contact_counts = c["contact_force_n"] * counts_per_n
        loop_gain = c["loop_gain"]
        backoff_steps = c["release_backoff_um"] / c["um_per_step"]
        self.counts_per_n = counts_per_n
        self.gain_q16 = max(1, int(loop_gain * 65536 / counts_per_step))
        self.e_lim = max(1, _SMALL // self.gain_q16)
        self.up_q4 = max(1, int(up_cps * 16))
        self.down_q4 = max(1, int(down_cps * 16))
        # Ramp feed-forward: the steps per sample a ramp needs, in Q16.
        self.ff_up_q16 = min(_SMALL, int(up_cps * 65536 / counts_per_step))
        self.ff_down_q16 = min(_SMALL, int(down_cps * 65536 / counts_per_step))
        self.max_steps_per_sample = max(1, int(max_steps))
        self.contact = int(contact_counts)
        # Until contact, move at most what the contact force's worth of steps is: the
        # first touch then overshoots the contact force by no more than itself.
        self.approach_steps = max(1, min(self.max_steps_per_sample, int(contact_counts / counts_per_step)))
        self.backoff_steps = int(backoff_steps)
        # Over-pressure back-off: all of the excess in one move (Q16 steps per count).
        self.inv_cps_q16 = max(1, int(65536 / counts_per_step))
        self.x_lim = max(1, _SMALL // self.inv_cps_q16)
        # The reference never leads the measurement by more than a few samples of
        # ramp, so a slow approach cannot wind up into an overshoot.
        self.lead_q4 = 8 * self.up_q4 + (self.contact << 4)
        self.band_q4 = max(self.up_q4, int(counts_per_n * 0.5) << 4)

    # --- mode changes (command time) ---
    def hold(self, target, net):
        self.target = target
        self.ref_q4 = net << 4
        self.f_q4 = net << 4
        self._frac = 0
        self.mode = RAMP

    def release(self, net):
        self.target = 0
        self.ref_q4 = net << 4
        self.f_q4 = net << 4
        self._frac = 0
        self._backoff_left = self.backoff_steps
        self.mode = RELEASE

    def set_mode(self, mode):
        self.mode = mode
        self._frac = 0

    def backoff(self, net, to_net):
        """Steps (<= 0) that take the force from net down to to_net by the configured
        stiffness, plus one, limited to what the motor does in a sample. Allocation-free."""
        x = net - to_net
        if x <= 0:
            return 0
        if x > self.x_lim:
            x = self.x_lim
        steps = ((x * self.inv_cps_q16) >> 16) + 1
        return -(steps if steps < self.max_steps_per_sample else self.max_steps_per_sample)

    # --- the control iteration: allocation-free ---
    def update(self, net):
        """Take one net-count sample; return signed microsteps to move now."""
        # The loop itself sees the raw sample: a filter here adds lag that turns a
        # stiffer-than-configured fixture into a limit cycle; the position integrator
        # already averages the ADC noise.
        self.f_q4 += ((net << 4) - self.f_q4) >> 3
        fq = net << 4
        m = self.mode
        if m == RAMP or m == HOLD:
            return self._track(fq, self.target << 4)
        if m == RELEASE:
            if net < self.contact:
                b = self._backoff_left
                if b <= 0:
                    self.mode = IDLE
                    self.backed_off = True
                    return 0
                b = b if b < self.max_steps_per_sample else self.max_steps_per_sample
                self._backoff_left -= b
                return -b
            return self._track(fq, 0)
        return 0

    def _track(self, fq, tq):
        r = self.ref_q4
        ff = 0
        if r < tq:
            r += self.up_q4
            ff = self.ff_up_q16
            if r >= tq:
                r = tq
                ff = 0
            if r > fq + self.lead_q4:
                r = fq + self.lead_q4
        elif r > tq:
            r -= self.down_q4
            ff = -self.ff_down_q16
            if r <= tq:
                r = tq
                ff = 0
        self.ref_q4 = r
        # Feed-forward only while the measurement is behind the ramp and more than a few
        # ramp steps from the target: on a fixture stiffer than configured it would run
        # ahead, and the last steps are left to the loop, so the approach has no overshoot.
        if ff > 0 and (fq > r or tq - fq < (self.up_q4 << 2)):
            ff = 0
        elif ff < 0 and (fq < r or fq - tq < (self.down_q4 << 2)):
            ff = 0
        if self.mode == RAMP and r == tq:
            d = fq - tq
            if -self.band_q4 < d < self.band_q4:
                self.mode = HOLD
        if (fq >> 4) < self.contact and tq > (self.contact << 4):
            return self.approach_steps  # no contact yet: approach
        e = _clamp((r - fq) >> 4, self.e_lim)
        acc = e * self.gain_q16 + ff + self._frac
        steps = acc >> 16
        self._frac = acc - (steps << 16)
        if steps > self.max_steps_per_sample or steps < -self.max_steps_per_sample:
            steps = _clamp(steps, self.max_steps_per_sample)
            self._frac = 0
        return steps
