"""The virtual fixture's battery cycler: it runs the scenario's cycling program on the cell,
reads the fixture's analog pressure output on an auxiliary input and its fault line on the
external input, and writes its own export file on its own clock, as a cycler would.

Program (the scenario's `cycling`): a rest, then charge and discharge at a C-rate for a
number of cycles. The cell's state of charge follows the time the program has run, so a
pause holds it (and the cell's breathing) where it was.

Fault line: the cycler's external input is wired to it. With `pause_on_fault`, the program
pauses (current 0) once the line has said fault for `fault_debounce_s`, and goes on when it
has said ok again for `resume_after_s` (the fixture's line stays at fault until its alarm
is acknowledged: a person has looked).

Analog output: the DAC's code, through the DAC's own errors (offset, gain, an INL bow; a
12-bit MCP4725 that was never written holds 0 V), read by the cycler's auxiliary input (a
bipolar ADC with its noise). Its export: stackpress's simple CSV layout (cycler.py reads it)
with `aux1_v` and `ext_ok`, a row every `record_every_s` and one at each change of step or
pause.
"""

from __future__ import annotations

import datetime
import random
from typing import Any, TextIO

# Where a scenario or fixture file says nothing (tests build their own): the standard ones.
CYCLER_DEFAULTS = {
    "record_every_s": 10.0,
    "clock_start_utc": "2026-01-05T09:00:00Z",
    "clock_drift_ppm": 20.0,
    "pause_on_fault": True,
    "fault_debounce_s": 0.2,
    "resume_after_s": 10.0,
    "aux_range_v": 10.0,
    "aux_bits": 16,
    "aux_noise_v_rms": 1e-4,
    "ocv_empty_v": 3.6,
    "ocv_full_v": 4.2,
    "resistance_ohm": 100.0,
}
DAC_DEFAULTS = {
    "bits": 12,
    "full_scale_v": 3.3,
    "offset_v": 0.002,
    "gain_error": -0.001,
    "inl_lsb": 2.0,
}
REST, CHARGE, DISCHARGE, DONE = 1, 2, 3, 4
COLUMNS = "datetime,time_s,voltage_v,current_a,cycle,step,aux1_v,ext_ok,paused\n"


class VirtualCycler:
    def __init__(self, scenario: dict[str, Any], fixture: dict[str, Any], area_mm2: float, seed: int = 0) -> None:
        c = dict(CYCLER_DEFAULTS, **(scenario.get("cycler") or {}))
        d = dict(DAC_DEFAULTS, **(fixture.get("analog_out") or {}))
        cyc, cell = scenario["cycling"], scenario["cell"]
        self.rest_s = cyc["rest_before_s"]
        self.half_s = 3600.0 / cyc["c_rate"]
        self.cycles = cyc["cycles"]
        capacity_mah = cell["areal_capacity_mah_cm2"] * area_mm2 / 100
        self.current_a = cyc["c_rate"] * capacity_mah * 1e-3
        self.cfg = c
        self.dac = d
        self.rng = random.Random(seed + 7)
        self.program_s = 0.0  # how long the program has run (pauses excluded)
        self.t_s = 0.0
        self.paused = False
        self.pauses = 0
        self._line_since_s = 0.0  # when the fault line last changed
        self.line_ok = False  # a board that has not started drives nothing: fault
        self.dac_code = -1
        self._next_record_s = 0.0
        self._last_key: tuple[int, bool] | None = None
        self.out: TextIO | None = None
        self.clock0 = datetime.datetime.fromisoformat(c["clock_start_utc"].replace("Z", "+00:00"))

    # --- the program ---
    def state(self) -> tuple[int, int, float]:
        """(step, cycle, state of charge 0..1) where the program is."""
        t = self.program_s - self.rest_s
        if t < 0:
            return REST, 0, 0.0
        n, r = divmod(t, 2 * self.half_s)
        if n >= self.cycles:
            return DONE, int(self.cycles) - 1, 0.0
        if r < self.half_s:
            return CHARGE, int(n), r / self.half_s
        return DISCHARGE, int(n), 2 - r / self.half_s

    def current(self) -> float:
        step = self.state()[0]
        if self.paused or step in (REST, DONE):
            return 0.0
        return self.current_a if step == CHARGE else -self.current_a

    def voltage(self) -> float:
        c = self.cfg
        soc = self.state()[2]
        return c["ocv_empty_v"] + (c["ocv_full_v"] - c["ocv_empty_v"]) * soc + self.current() * c["resistance_ohm"]

    # --- the fixture's outputs, as its inputs see them ---
    def outputs(self, dac_code: int, line_ok: bool) -> None:
        if line_ok != self.line_ok:
            self.line_ok = line_ok
            self._line_since_s = self.t_s
        self.dac_code = dac_code

    def dac_volts(self) -> float:
        """The DAC's output: its code through its offset, gain error and an INL bow (0 V
        before the board first writes it: the MCP4725's power-on value)."""
        d = self.dac
        code = self.dac_code
        if code < 0:
            return 0.0
        n = 1 << d["bits"]
        lsb = d["full_scale_v"] / n
        x = code / n
        return d["offset_v"] + code * lsb * (1 + d["gain_error"]) + d["inl_lsb"] * lsb * 4 * x * (1 - x)

    def aux_volts(self) -> float:
        """What the auxiliary input records: the DAC's output with the input's noise, to its
        resolution."""
        c = self.cfg
        lsb = 2 * c["aux_range_v"] / (1 << c["aux_bits"])
        v = self.dac_volts() + self.rng.gauss(0.0, c["aux_noise_v_rms"])
        return round(max(-c["aux_range_v"], min(c["aux_range_v"], v)) / lsb) * lsb

    # --- time ---
    def advance(self, dt_s: float) -> None:
        self.t_s += dt_s
        c = self.cfg
        if c["pause_on_fault"]:
            held = self.t_s - self._line_since_s
            if not self.paused and not self.line_ok and held >= c["fault_debounce_s"]:
                self.paused = True
                self.pauses += 1
            elif self.paused and self.line_ok and held >= c["resume_after_s"]:
                self.paused = False
        if not self.paused:
            self.program_s += dt_s
        if self.out is not None:
            step = self.state()[0]
            key = (step, self.paused)
            if self.t_s >= self._next_record_s or key != self._last_key:
                self._record(step)
                self._last_key = key
                while self._next_record_s <= self.t_s:
                    self._next_record_s += c["record_every_s"]

    def _record(self, step: int) -> None:
        assert self.out is not None
        when = self.clock0 + datetime.timedelta(seconds=self.t_s * (1 + self.cfg["clock_drift_ppm"] * 1e-6))
        self.out.write(
            "%s,%.3f,%.5f,%.4e,%d,%d,%.5f,%d,%d\n"
            % (
                when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                self.t_s,
                self.voltage(),
                self.current(),
                self.state()[1],
                step,
                self.aux_volts(),
                1 if self.line_ok else 0,
                1 if self.paused else 0,
            )
        )

    def record_to(self, out: TextIO) -> None:
        """Write the cycler's export to `out` from now on (the header first)."""
        self.out = out
        out.write(COLUMNS)
