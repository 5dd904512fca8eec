"""MCP4725 12-bit DAC on I2C: the analog pressure output (cyclerlink.py). Its output is
code / 4096 of its supply, which is the reference: the reference build feeds it from a
3.300 V precision reference (hardware/README.md).

A write is the chip's fast-mode command: two bytes, the power-down bits (00: on) and the
code's top 4 bits, then its low 8; about 70 us at 400 kHz. Allocation-free while the chip
answers (the bytes go from one buffer; writeto returns a small int).
"""

ADDRESS = 0x60  # A0 to GND


class MCP4725:
    bits = 12

    def __init__(self, i2c, address=ADDRESS):
        self._i2c = i2c
        self._address = address
        self._buf = bytearray(2)

    def write(self, code):
        """Output `code` (0-4095). True when the chip took both bytes."""
        b = self._buf
        b[0] = (code >> 8) & 0x0F
        b[1] = code & 0xFF
        try:
            return self._i2c.writeto(self._address, b) == 2
        except OSError:  # no answer (unplugged, bus held): the caller says so, and retries
            return False

    def power_down(self):
        """Output off, pulled to 0 V through 1 kOhm (power-down bits 01): for the safe mode."""
        b = self._buf
        b[0] = 0x10
        b[1] = 0
        try:
            self._i2c.writeto(self._address, b)
        except OSError:
            pass
