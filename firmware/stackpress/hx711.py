"""HX711 24-bit load-cell ADC, driven bit by bit through two injected pins.

This driver clocks the chip through two pins it is given: the virtual fixture's
pin-level model of the chip, or GPIO on a board with no PIO to spare. The Pico reads
it with PIO (boards/pico.py: the same rules, in hardware). Datasheet rules kept here:
DOUT low means a conversion is ready; 24 clock pulses shift it out MSB first; 1, 2
or 3 extra pulses select the next gain (128 ch A, 32 ch B, 64 ch A); PD_SCK high for
more than 60 us powers the chip down, so interrupts are masked while clocking.
Reading allocates nothing: it may run inside the control iteration.
"""

GAIN_PULSES = {128: 1, 64: 3, 32: 2}
FULL_SCALE = 0x7FFFFF
MIN_SCALE = -0x800000


def signed24(v):
    """The chip's 24-bit two's complement word as signed counts."""
    return v - 0x1000000 if v & 0x800000 else v


class HX711:
    def __init__(self, sck, dout, gain=128, irq_off=None, irq_on=None):
        # Bound methods kept once: taking `pin.value` at each read would allocate.
        self._sck = sck.value
        self._dout = dout.value
        self._extra = GAIN_PULSES[gain]
        self._irq_off = irq_off
        self._irq_on = irq_on
        sck.value(0)

    def ready(self):
        return self._dout() == 0

    def read(self):
        """Shift out one conversion; call only when ready(). Returns signed counts."""
        sck = self._sck
        dout = self._dout
        state = self._irq_off() if self._irq_off else 0
        v = 0
        for _ in range(24):
            sck(1)
            sck(0)
            v = (v << 1) | dout()
        for _ in range(self._extra):
            sck(1)
            sck(0)
        if self._irq_on:
            self._irq_on(state)
        return signed24(v)

    @staticmethod
    def saturated(v):
        return v >= FULL_SCALE or v <= MIN_SCALE
