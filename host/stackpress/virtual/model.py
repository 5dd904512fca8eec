"""Physical model of the fixture, stepped in virtual time.

Chain, from the motor out: microsteps -> 50:1 worm -> Tr10x2 screw (with backlash)
-> disc-spring stack (stiffness falling over its stroke, Almen-Laszlo) in series
with the rigid path and the cell stack -> a load cell read by an HX711 (noise,
zero balance, 24-bit clipping). The cell breathes with its state of charge while it
cycles and grows a little every cycle. The true state is kept beside what the
sensor reports, so a benchmark can tell measured error from true error.
"""
import math
import random

from . import params


class FixtureModel:
    def __init__(self, fixture=None, scenario=None, seed=0):
        fx = fixture if fixture is not None else params.load(params.DEFAULT_FIXTURE)
        sc = scenario if scenario is not None else params.load(params.DEFAULT_SCENARIO)
        self.fx, self.sc = fx, sc
        self.rng = random.Random(seed)
        adc, lc, dr, sp, fr, cell = fx["adc"], fx["load_cell"], fx["drive"], fx["springs"], fx["frame"], fx["cell"]
        self.period_us = int(round(1e6 / adc["rate_sps"]))
        self.um_per_step = dr["screw_lead_mm"] * 1000 / (dr["full_steps_per_rev"] * dr["microsteps"] * dr["worm_ratio"])
        self.backlash_um = dr["backlash_um"]
        self.max_step_rate_hz = dr["max_step_rate_hz"]
        ratio = sp["in_parallel"] / sp["in_series"]
        self.k0 = sp["disc_k_start_n_per_um"] * ratio
        self.k1 = sp["disc_k_end_n_per_um"] * ratio
        self.stroke_um = sp["disc_stroke_um"] * sp["in_series"]
        self.k_rc = 1 / (1 / fr["rigid_k_n_per_um"] + 1 / cell["stack_k_n_per_um"])
        self.gap_um = fr["initial_gap_um"]
        self.area_mm2 = math.pi * cell["diameter_mm"] ** 2 / 4
        full_scale_v = 0.5 * adc["avdd_v"] / adc["gain"]
        self.counts_per_v = 2 ** 23 / full_scale_v
        self.v_per_n = lc["sensitivity_mv_per_v"] * 1e-3 * adc["avdd_v"] / lc["capacity_n"]
        self.zero_v = lc["zero_balance_mv_per_v"] * 1e-3 * adc["avdd_v"]
        self.noise_v = adc["noise_nv_rms"] * 1e-9
        # state
        self.t_us = 0
        self.motor_steps = 0
        self.drive_um = 0.0
        self.load_um = 0.0
        self.d_spring_um = 0.0
        self.force_n = 0.0

    # --- calibration a lab would have on file for this load cell ---
    def counts_per_n(self):
        return self.v_per_n * self.counts_per_v

    def zero_counts(self):
        return int(round(self.zero_v * self.counts_per_v))

    # --- the cell ---
    def cell_growth_um(self, t_s):
        """Thickness change of the cell (um) at time t_s from breathing and growth."""
        sc = self.sc
        t = t_s - sc["rest_before_s"]
        if t <= 0:
            return 0.0
        half_s = 3600.0 / sc["c_rate"]
        n_done, r = divmod(t, 2 * half_s)
        if n_done >= sc["cycles"]:
            n_done, r = sc["cycles"], 0.0
        soc = r / half_s if r < half_s else 2 - r / half_s
        swing = sc["breathing_um_per_mah_cm2"] * sc["areal_capacity_mah_cm2"]
        grow = sc["irreversible_um_per_cycle"]
        return swing * soc + grow * (n_done + min(r / half_s, 1.0))

    # --- mechanics ---
    def _spring_force(self, d):
        k0, k1, s = self.k0, self.k1, self.stroke_um
        return k0 * d - (k0 - k1) * d * d / (2 * s)

    def _chain_force(self, c):
        """Force (N) for a total compression c (um) of springs + rigid path + cell."""
        if c <= 0:
            self.d_spring_um = 0.0
            return 0.0
        d = min(self.d_spring_um or c * 0.9, c)
        for _ in range(20):
            k = self.k0 - (self.k0 - self.k1) * d / self.stroke_um
            g = d + self._spring_force(d) / self.k_rc - c
            d_new = d - g / (1 + k / self.k_rc)
            if abs(d_new - d) < 1e-9:
                break
            d = max(0.0, d_new)
        self.d_spring_um = d
        return self._spring_force(d)

    def _apply_steps(self, steps):
        self.motor_steps += steps
        self.drive_um = self.motor_steps * self.um_per_step
        # The plunger sits in the play [drive - backlash, drive]; the lower bound is the
        # flank that pushes it forward. Under load the springs press it onto that flank,
        # so it follows the drive both ways; unloaded it floats anywhere in the play.
        if self.force_n > 0:
            self.load_um = self.drive_um - self.backlash_um
        else:
            self.load_um = min(max(self.load_um, self.drive_um - self.backlash_um), self.drive_um)

    def compression_um(self):
        return self.load_um - self.gap_um + self.cell_growth_um(self.t_us / 1e6)

    def advance(self, steps):
        """Advance one ADC period with `steps` microsteps emitted; return the conversion."""
        f0 = self.force_n
        self.t_us += self.period_us
        self._apply_steps(steps)
        self.force_n = self._chain_force(self.compression_um())
        # The HX711 integrates over its conversion window: average of the period's ends.
        f = 0.5 * (f0 + self.force_n)
        v = self.zero_v + f * self.v_per_n + self.rng.gauss(0.0, self.noise_v)
        counts = int(round(v * self.counts_per_v))
        return max(-0x800000, min(0x7FFFFF, counts))

    def truth(self):
        return {
            "t_s": self.t_us / 1e6,
            "force_n": self.force_n,
            "pressure_mpa": self.force_n / self.area_mm2,
            "cell_growth_um": self.cell_growth_um(self.t_us / 1e6),
            "drive_um": self.drive_um,
            "motor_steps": self.motor_steps,
        }
