"""Physical model of the fixture, stepped in virtual time, one ADC period at a time.

Chain, from the motor out: microsteps (with microstep angle error) -> 50:1 worm ->
Tr10x2 screw (with backlash) -> disc-spring stack (stiffness falling over its stroke,
Almen-Laszlo, with Coulomb friction between the discs: the stack sticks on reversal and
slides along a loading or an unloading curve) in series with the rigid path and the
cell stack -> the base plate on N load cells (1 to 4, evenly spaced on a circle around the
axis; an off-centre or tilted stack loads them unevenly), each with its own sensitivity,
zero balance, creep and temperature coefficients, read by its own HX711 (noise, the
average over the conversion window, 24-bit clipping); faults can hit one channel or all.

The cell breathes with its state of charge while it cycles, grows a little every cycle,
creeps under load (Kelvin-Voigt); frame, plungers and insulators expand with the
fixture's temperature, which follows the room with a thermal time constant. The true
state is kept beside what the sensors report, so a benchmark can tell measured error
from true error.
"""

from __future__ import annotations

import math
import random
from typing import Any

from . import params
from .cycler import VirtualCycler

# Faults a scenario event can inject: {"at_s": t, "fault": name, "duration_s": d, ...};
# the load-cell ones take "channel": i to hit one load cell (all of them without it).
FAULTS = (
    "adc_disconnected",
    "adc_stuck",
    "adc_saturated",
    "noise_burst",
    "adc_drift",
    "cell_expansion",
    "motor_blocked",
    "estop",
    "end_stop",
)
CHANNEL_FAULTS = ("adc_disconnected", "adc_stuck", "adc_saturated", "noise_burst", "adc_drift")


def load_shares(n: int, offset_x_mm: float, offset_y_mm: float, radius_mm: float) -> list[float]:
    """Each load cell's part of the load (they sum to 1) under a rigid base plate: load cell
    i at angle 2*pi*i/n on a circle of radius_mm, the load's centre at the offset. Three
    cells are statically determinate; four are taken as equally stiff (the least-squares
    split); two lie on the x axis and see only the x offset."""
    if n == 1:
        return [1.0]
    k = 1.0 if n == 2 else 2.0
    shares = []
    for i in range(n):
        a = 2 * math.pi * i / n
        y = 0.0 if n == 2 else offset_y_mm * math.sin(a)
        shares.append((1 + k * (offset_x_mm * math.cos(a) + y) / radius_mm) / n)
    return shares


class FixtureModel:
    def __init__(
        self, fixture: dict[str, Any] | None = None, scenario: dict[str, Any] | None = None, seed: int = 0
    ) -> None:
        if fixture is None or scenario is None:
            fx_default, sc_default = params.resolve()
            fixture = fixture if fixture is not None else fx_default
            scenario = scenario if scenario is not None else sc_default
        self.fx, self.sc = fixture, scenario
        self.rng = random.Random(seed)
        adc, lc, dr, sp, fr = (
            fixture["adc"],
            fixture["load_cell"],
            fixture["drive"],
            fixture["springs"],
            fixture["frame"],
        )
        cell, cyc = scenario["cell"], scenario["cycling"]
        rate = adc["rate_sps"]
        if rate not in (10, 80):
            raise ValueError("an HX711 runs at 10 or 80 samples/s, not %r" % rate)
        self.rate_sps = rate
        self.period_us = 1000000 // rate
        dt_s = self.period_us / 1e6
        # drive
        self.um_per_step = dr["screw_lead_mm"] * 1000 / (dr["full_steps_per_rev"] * dr["microsteps"] * dr["worm_ratio"])
        self.backlash_um = dr["backlash_um"]
        self.microstep_err_um = dr["microstep_error_um"]
        self.steps_per_electrical_cycle = 4 * dr["microsteps"]
        self.max_step_rate_hz = dr["max_step_rate_hz"]
        # springs
        self.springs = bool(sp["present"])
        ratio = sp["in_parallel"] / sp["in_series"]
        self.k0 = sp["disc_k_start_n_per_um"] * ratio
        self.k1 = sp["disc_k_end_n_per_um"] * ratio
        self.stroke_um = sp["disc_stroke_um"] * sp["in_series"]
        self.friction = sp["friction_fraction"]
        self.stick = sp["stick_stiffness_factor"]
        # rigid path and cell
        self.k_cell = cell["stack_k_n_per_um"]
        self.k_rc = 1 / (1 / fr["rigid_k_n_per_um"] + 1 / self.k_cell)
        self.gap_um = fr["initial_gap_um"]
        self.area_mm2 = math.pi * cell["diameter_mm"] ** 2 / 4
        # thermal: the column inside the frame grows against the frame (um per K of compression)
        self.fixture_um_per_k = 1e-3 * (
            fr["plungers_length_mm"] * fr["plungers_cte_ppm_per_k"]
            + fr["insulator_length_mm"] * fr["insulator_cte_ppm_per_k"]
            - fr["frame_length_mm"] * fr["frame_cte_ppm_per_k"]
        )
        self.cell_um_per_k = 1e-3 * cell["thickness_mm"] * cell["cte_ppm_per_k"]
        self.thermal_alpha = 1 - math.exp(-dt_s / fr["thermal_tau_s"])
        self.thermistor_noise_k = fr["thermistor_noise_k_rms"]
        self.temp0_c = scenario["ambient"]["temperature_c"]
        self.events = sorted(scenario.get("events") or [], key=lambda e: e["at_s"])
        # load cells and ADCs
        lcs = fixture["load_cells"]
        n = int(lcs["count"])
        if not 1 <= n <= 4:
            raise ValueError("load_cells.count is 1 to 4, not %r" % n)
        self.n_cells = n
        self.radius_mm = lcs["radius_mm"]
        load = scenario.get("load") or {}
        self.offset_mm = (load.get("offset_x_mm", 0.0), load.get("offset_y_mm", 0.0))
        self.shares = load_shares(n, self.offset_mm[0], self.offset_mm[1], self.radius_mm)
        full_scale_v = 0.5 * adc["avdd_v"] / adc["gain"]
        self.counts_per_v = 2**23 / full_scale_v
        self.capacity_n = lc["capacity_n"]
        # Each load cell's own rated output and zero balance (its certificate), relative
        # to the datasheet's typical ones.
        self.v_per_n = [
            lc["sensitivity_mv_per_v"] * (1 + lcs["sensitivity_deviation"][i]) * 1e-3 * adc["avdd_v"] / lc["capacity_n"]
            for i in range(n)
        ]
        self.zero_v = [
            (lc["zero_balance_mv_per_v"] + lcs["zero_balance_deviation_mv_per_v"][i]) * 1e-3 * adc["avdd_v"]
            for i in range(n)
        ]
        self.noise_v = adc["noise_nv_rms_10sps" if rate == 10 else "noise_nv_rms_80sps"] * 1e-9
        tau_c = lc["creep_tau_s"]
        self.lc_creep_gain = lc["creep_fs_per_30min"] / (1 - math.exp(-1800 / tau_c))
        self.lc_creep_alpha = 1 - math.exp(-dt_s / tau_c)
        self.zero_tc_n_per_k = lc["zero_tc_fs_per_k"] * lc["capacity_n"]
        self.span_tc_per_k = lc["span_tc_per_k"]
        self.cal_temp_c = lc["calibration_temperature_c"]
        # cell
        self.breath_um = cell["breathing_um_per_mah_cm2"] * cell["areal_capacity_mah_cm2"]
        self.grow_um = cell["irreversible_um_per_cycle"]
        self.creep_um_per_mpa = cell["creep_um_per_mpa"]
        self.creep_alpha = 1 - math.exp(-dt_s / cell["creep_tau_s"])
        self.rest_s = cyc["rest_before_s"]
        self.half_cycle_s = 3600.0 / cyc["c_rate"]
        self.cycles = cyc["cycles"]
        # the cycler runs the program: the cell breathes with the time it has run
        self.cycler = VirtualCycler(scenario, fixture, self.area_mm2, seed)
        # state
        self.t_us = 0
        self.motor_steps = 0
        self.drive_um = 0.0
        self.load_um = 0.0
        self.d_spring_um = 0.0
        self.friction_n = 0.0
        self.force_n = 0.0
        self.cell_creep_um = 0.0
        self.lc_creep_n = [0.0] * n
        self.drift_n = [0.0] * n  # adc_drift faults: a channel's reading walking away
        self.ambient_c = self.temp0_c
        self.temp_c = self.temp0_c
        self._next_event = 0
        self.faults: dict[str, tuple[float, dict[str, Any]]] = {}  # active faults: name -> (end time s, event)
        self.expansions: list[tuple[float, float, float]] = []  # (start s, duration s, um): sudden cell swelling, kept
        self.board_events: list[dict[str, Any]] = []  # due events for the board (power cuts, hangs, unplugs): the sim's
        self.last_counts = [0] * n
        self.sensed = [self.sensed_force_n(i) for i in range(n)]
        self.sensed_n = sum(self.sensed)

    # --- calibration a lab would have on file for each load cell ---
    def counts_per_n(self, i: int = 0) -> float:
        return self.v_per_n[i] * self.counts_per_v

    def zero_counts(self, i: int = 0) -> int:
        return int(round(self.zero_v[i] * self.counts_per_v))

    def load_n(self) -> list[float]:
        """The true force on each load cell, N."""
        return [self.force_n * s for s in self.shares]

    def uniformity_pct(self) -> float:
        """Largest deviation of a load cell's true load from the cells' mean, % of it."""
        mean = 1.0 / self.n_cells
        return 100 * max(abs(s - mean) for s in self.shares) / mean

    # --- the cell ---
    def cell_growth_um(self, t_s: float) -> float:
        """Free thickness change (um) from breathing and irreversible growth when the
        cycler's program has run for t_s."""
        t = t_s - self.rest_s
        if t <= 0:
            return 0.0
        half = self.half_cycle_s
        n_done, r = divmod(t, 2 * half)
        if n_done >= self.cycles:
            n_done, r = self.cycles, 0.0
        soc = r / half if r < half else 2 - r / half
        return self.breath_um * soc + self.grow_um * (n_done + min(r / half, 1.0))

    def expansion_um(self, t_s: float) -> float:
        """Sudden swelling from fault events (a gassing or shorting cell), each a fast ramp."""
        return sum(um * min(1.0, max(0.0, (t_s - t0) / max(d, 1e-9))) for t0, d, um in self.expansions)

    def cell_thickness_um(self) -> float:
        """True change of the cell's thickness under load since assembly: what dilatometry measures."""
        return (
            self.cell_growth_um(self.cycler.program_s)
            + self.expansion_um(self.t_us / 1e6)
            - self.cell_creep_um
            - self.force_n / self.k_cell
            + self.cell_um_per_k * (self.temp_c - self.temp0_c)
        )

    # --- mechanics ---
    def _elastic(self, d: float) -> tuple[float, float]:
        k0, k1, s = self.k0, self.k1, self.stroke_um
        return k0 * d - (k0 - k1) * d * d / (2 * s), k0 - (k0 - k1) * d / s

    def _spring(self, d: float, k_stick: float) -> tuple[float, ...]:
        """Spring-stack force and its slope at deflection d, from the committed friction state."""
        fe, ke = self._elastic(d)
        band = self.friction * fe
        f = self.friction_n + k_stick * (d - self.d_spring_um)
        if f > band:
            return fe + band, ke * (1 + self.friction), band
        if f < -band:
            return fe - band, ke * (1 - self.friction), -band
        return fe + f, ke + k_stick, f

    def _chain_force(self, c: float) -> float:
        """Force (N) for a total compression c (um) of springs + rigid path + cell."""
        if c <= 0:
            self.d_spring_um = 0.0
            self.friction_n = 0.0
            return 0.0
        if not self.springs:
            return self.k_rc * c
        k_rc = self.k_rc
        k_stick = self.stick * self._elastic(self.d_spring_um)[1]
        lo, hi = 0.0, c
        d = min(max(self.d_spring_um, lo), hi)
        for _ in range(60):  # safeguarded Newton: g(d) rises monotonically on [0, c]
            fs, dfs, fric = self._spring(d, k_stick)
            g = fs - k_rc * (c - d)
            if g > 0:
                hi = d
            else:
                lo = d
            if abs(g) < 1e-7:
                break
            dn = d - g / (dfs + k_rc)
            if not lo < dn < hi:
                dn = 0.5 * (lo + hi)
            if abs(dn - d) < 1e-12:
                d = dn
                break
            d = dn
        fs, _, fric = self._spring(d, k_stick)
        self.d_spring_um = d
        self.friction_n = fric
        return fs

    def _apply_steps(self, steps: int) -> None:
        self.motor_steps += steps
        phase = 2 * math.pi * (self.motor_steps % self.steps_per_electrical_cycle) / self.steps_per_electrical_cycle
        self.drive_um = self.motor_steps * self.um_per_step + self.microstep_err_um * math.sin(phase)
        # The plunger sits in the play [drive - backlash, drive]; the lower bound is the
        # flank that pushes it forward. Under load the springs press it onto that flank,
        # so it follows the drive both ways; unloaded it floats anywhere in the play.
        if self.force_n > 0:
            self.load_um = self.drive_um - self.backlash_um
        else:
            self.load_um = min(max(self.load_um, self.drive_um - self.backlash_um), self.drive_um)

    def compression_um(self) -> float:
        t_s = self.t_us / 1e6
        return (
            self.load_um
            - self.gap_um
            + self.cell_growth_um(self.cycler.program_s)
            + self.expansion_um(t_s)
            - self.cell_creep_um
            + (self.fixture_um_per_k + self.cell_um_per_k) * (self.temp_c - self.temp0_c)
        )

    def sensed_force_n(self, i: int = 0) -> float:
        """What load cell i reports before noise: creep and temperature errors included."""
        dt = self.temp_c - self.cal_temp_c
        return (
            (self.force_n * self.shares[i] + self.lc_creep_n[i]) * (1 + self.span_tc_per_k * dt)
            + self.zero_tc_n_per_k * dt
            + self.drift_n[i]
        )

    def _environment(self) -> None:
        t_s = self.t_us / 1e6
        while self._next_event < len(self.events) and self.events[self._next_event]["at_s"] <= t_s:
            ev = self.events[self._next_event]
            self._next_event += 1
            if "ambient_temperature_c" in ev:
                self.ambient_c = ev["ambient_temperature_c"]
            if "fault" in ev:
                name = ev["fault"]
                if name not in FAULTS:
                    raise ValueError("unknown fault %r; known: %s" % (name, ", ".join(FAULTS)))
                if name == "cell_expansion":
                    self.expansions.append((t_s, ev.get("duration_s", 1.0), ev["expansion_um"]))
                else:
                    ch = ev.get("channel")
                    if ch is not None and (name not in CHANNEL_FAULTS or not 0 <= ch < self.n_cells):
                        raise ValueError(
                            "fault %r can't be put on channel %r (%d load cells)" % (name, ch, self.n_cells)
                        )
                    self.faults[name if ch is None else "%s@%d" % (name, ch)] = (
                        t_s + ev.get("duration_s", float("inf")),
                        ev,
                    )
            if "load_offset_mm" in ev:  # the stack shifts or tilts: the load's centre moves
                x, y = ev["load_offset_mm"]
                self.offset_mm = (x, y)
                self.shares = load_shares(self.n_cells, x, y, self.radius_mm)
            if "board" in ev:
                self.board_events.append(ev)
        for name in [n for n, (end, _) in self.faults.items() if t_s >= end]:
            del self.faults[name]
        self.temp_c += (self.ambient_c - self.temp_c) * self.thermal_alpha
        p = self.force_n / self.area_mm2
        self.cell_creep_um += (self.creep_um_per_mpa * p - self.cell_creep_um) * self.creep_alpha
        dt_s = self.period_us / 1e6
        for i in range(self.n_cells):
            f = self.force_n * self.shares[i]
            self.lc_creep_n[i] += (self.lc_creep_gain * f - self.lc_creep_n[i]) * self.lc_creep_alpha
            drift = self._fault("adc_drift", i)
            if drift is not None:
                self.drift_n[i] += drift.get("drift_n_per_s", 1.0) * dt_s

    def _fault(self, name: str, i: int) -> dict[str, Any] | None:
        """The event of fault `name` active on channel i (or on all), or None."""
        fl = self.faults
        hit = fl.get(name) or fl.get("%s@%d" % (name, i))
        return hit[1] if hit else None

    def inputs(self) -> int:
        """The board's switch inputs: bit 0 e-stop circuit open, bit 1 end-stop circuit open
        (an `estop` or `end_stop` event, for its duration)."""
        return (1 if "estop" in self.faults else 0) | (2 if "end_stop" in self.faults else 0)

    def outputs(self, dac_code: int, fault_line_ok: bool) -> None:
        """The board's outputs to the cycler: the analog output's DAC code (-1: never
        written) and the fault line (True: energised, ok)."""
        self.cycler.outputs(dac_code, fault_line_ok)

    def advance(self, steps: int, driver_on: bool = True) -> list[int | None]:
        """Advance one ADC period with `steps` microsteps emitted; return each load cell's
        conversion (None for one that gives none: disconnected)."""
        s0 = self.sensed
        self.t_us += self.period_us
        self.cycler.advance(self.period_us / 1e6)
        self._environment()
        fl = self.faults
        if "motor_blocked" in fl or not driver_on:
            steps = 0  # a seized screw, or a driver without enable: the pulses go nowhere
        self._apply_steps(steps)
        self.force_n = self._chain_force(self.compression_um())
        self.sensed = [self.sensed_force_n(i) for i in range(self.n_cells)]
        self.sensed_n = sum(self.sensed)
        return [self._convert(i, 0.5 * (s0[i] + self.sensed[i])) for i in range(self.n_cells)]

    def _convert(self, i: int, f: float) -> int | None:
        """Load cell i's HX711 conversion of the sensed force f (N): it integrates over its
        window, so f is the average of the period's ends."""
        v = self.zero_v[i] + f * self.v_per_n[i] + self.rng.gauss(0.0, self.noise_v)
        fl = self.faults
        if fl:
            ev = self._fault("noise_burst", i)
            if ev is not None:  # a wire touching, EMI from a motor cable: hundreds of N
                v += self.rng.gauss(0.0, ev.get("noise_n", 300.0)) * self.v_per_n[i]
            if self._fault("adc_saturated", i) is not None:
                v = 1.0
        counts = max(-0x800000, min(0x7FFFFF, int(round(v * self.counts_per_v))))
        if fl:
            if self._fault("adc_stuck", i) is not None:
                counts = self.last_counts[i]
            if self._fault("adc_disconnected", i) is not None:
                return None
        self.last_counts[i] = counts
        return counts

    def thermistor_mc(self) -> int:
        """The frame thermistor's reading, in milli-degC."""
        return int(round(1000 * (self.temp_c + self.rng.gauss(0.0, self.thermistor_noise_k))))

    def truth(self) -> dict[str, Any]:
        return {
            "t_s": self.t_us / 1e6,
            "force_n": self.force_n,
            "pressure_mpa": self.force_n / self.area_mm2,
            "sensed_force_n": self.sensed_n,
            "cell_thickness_um": self.cell_thickness_um(),
            "temperature_c": self.temp_c,
            "drive_um": self.drive_um,
            "motor_steps": self.motor_steps,
        }
