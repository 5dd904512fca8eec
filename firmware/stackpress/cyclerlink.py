"""What a battery cycler's inputs see of the fixture: the pressure as a voltage on an
auxiliary analog input, and a fault line on its external stop or pause input.

Analog output: volts = analog_out_offset_v + pressure / analog_out_mpa_per_v, as the DAC
code that gives them by its measured ends (analog_out_zero_v at code 0,
analog_out_full_scale_v at 2**bits), clamped to the DAC's range. Computed from the control
iteration's integer force at every sample, in integers set up by apply(): allocation-free.
A code is written only when it changes. The offset keeps 0 MPa above 0 V, so an output that
is off (0 V) never reads as a believable pressure.

Fault line: energised (the cycler's input reads "ok") only while this loop runs and nothing
is wrong: not in fault, no latched hold_deviation or estimate_uncertain, the DAC answering.
A fixture that is dead (no power, a reset, a hang the watchdog ends, the safe mode, the
REPL) leaves it de-energised, which the cycler reads as a fault: it fails safe.
"""

from stackpress.safety import ESTIMATE_UNCERTAIN, HOLD_DEVIATION

# Alarms that do not stop the fixture but mean its pressure can't be vouched for.
FAULT_ALARMS = HOLD_DEVIATION | ESTIMATE_UNCERTAIN
Q = 16  # fixed-point fraction bits of the code


class CyclerLink:
    def __init__(self, board):
        self.dac = getattr(board, "dac", None)  # write(code) -> True if it answered; .bits
        self._line = getattr(board, "fault_line", None)  # fault_line(ok)
        self.top = (1 << self.dac.bits) - 1 if self.dac else 0
        self.code = -1  # the last code written
        self.dac_ok = self.dac is not None
        self.errors = 0
        self.line_ok = -1  # the line as last set: 1 energised (ok), 0 fault
        self.test_code = -1  # a test voltage's code while one is held (`analog_test`)
        self.test_until_s = 0
        self._c0 = self._g = self._sh = self._lo = self._hi = 0
        self.volts_per_code = 0.0
        self.zero_v = 0.0

    def apply(self, cfg, mpa_per_count):
        """Set up the integer scaling for settings `cfg` and the force's scale (allocates)."""
        if not self.dac:
            return
        fs, z = cfg["analog_out_full_scale_v"], cfg["analog_out_zero_v"]
        self.zero_v = z
        self.volts_per_code = (fs - z) / (self.top + 1)
        codes_per_count = mpa_per_count / cfg["analog_out_mpa_per_v"] / self.volts_per_code
        c0 = (cfg["analog_out_offset_v"] - z) / self.volts_per_code
        # code = (c0 + (count >> sh) * g) >> Q, with count clamped so that the code stays within
        # the DAC's range: every product fits a small int (31 bits on the RP2040).
        sh = 0  # the count's bits dropped: the gain keeps 15 or more (0.003 % of a code)
        while codes_per_count * (1 << (Q + sh)) < 32768 and sh < 24:
            sh += 1
        self._sh = sh
        self._g = int(codes_per_count * (1 << (Q + sh)) + 0.5)
        self._c0 = int((c0 + 0.5) * (1 << Q) + 0.5)  # + half a code: the shift rounds to the nearest
        self._lo = int(-c0 / codes_per_count) - (2 << sh)
        self._hi = int((self.top - c0) / codes_per_count) + (2 << sh)

    def code_of(self, net):
        """The DAC code for the force `net` (counts). Allocation-free."""
        if net < self._lo:
            net = self._lo
        elif net > self._hi:
            net = self._hi
        c = (self._c0 + (net >> self._sh) * self._g) >> Q
        return 0 if c < 0 else self.top if c > self.top else c

    def update(self, net, healthy):
        """At every sample: the output for force `net` (counts), and the fault line (ok when
        `healthy` and the DAC answers). Allocation-free while the DAC answers."""
        dac = self.dac
        if dac and self.dac_ok:
            c = self.test_code if self.test_code >= 0 else self.code_of(net)
            if c != self.code:
                if dac.write(c):
                    self.code = c
                else:
                    self.dac_ok = False
                    self.errors += 1
        self.set_line(1 if healthy and (self.dac_ok or not dac) else 0)

    def set_line(self, ok):
        if ok != self.line_ok and self._line:
            self._line(ok)
            self.line_ok = ok

    def retry(self):
        """Once a second while the DAC does not answer: try it again (allocates)."""
        if self.dac and not self.dac_ok:
            self.code = -1
            self.dac_ok = True
            if not self.dac.write(0):
                self.dac_ok = False
                self.errors += 1

    def off(self):
        """The fixture stops controlling (REPL, crash, safe mode): the line says fault and the
        output goes to 0 V, which no offset makes a pressure."""
        self.set_line(0)
        if self.dac:
            self.dac.write(0)
            self.code = 0

    def volts(self):
        """What the output is at now, by the DAC's measured ends (None: no DAC, or not yet)."""
        return None if self.code < 0 or not self.dac else round(self.zero_v + self.code * self.volts_per_code, 4)

    def code_for_volts(self, v):
        c = int((v - self.zero_v) / self.volts_per_code + 0.5)
        return 0 if c < 0 else self.top if c > self.top else c

    def describe(self):
        """Its part of `status`."""
        return {
            "analog_out_v": self.volts(),
            "analog_out_ok": self.dac_ok if self.dac else None,
            "analog_out_errors": self.errors,
            "analog_out_test": self.test_code >= 0,
            "fault_line": None if not self._line else "ok" if self.line_ok == 1 else "fault",
        }
