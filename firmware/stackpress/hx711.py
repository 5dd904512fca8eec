"""HX711 24-bit load-cell ADCs (1 to 4 on one clock), driven bit by bit through injected pins.

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
    """One HX711, or several sharing PD_SCK (each with its own DOUT): clocked together,
    so every channel's conversion is shifted out in the same 25-27 pulses."""

    def __init__(self, sck, douts, gain=128, irq_off=None, irq_on=None):
        if not isinstance(douts, (list, tuple)):
            douts = (douts,)
        # Bound methods kept once: taking `pin.value` at each read would allocate.
        self._sck = sck.value
        self._douts = [d.value for d in douts]
        self.n = len(douts)
        self.values = [0] * self.n  # the last conversion of each channel, signed counts
        self._extra = GAIN_PULSES[gain]
        self._irq_off = irq_off
        self._irq_on = irq_on
        self.full = (1 << self.n) - 1
        self.expect = self.full  # the channels the last read got: the ones to wait for
        self._since = 0  # when a part of them was first seen ready (ms)
        self._waiting = False
        sck.value(0)

    def ready(self):
        """Bit i set: channel i has a conversion waiting (its DOUT is low)."""
        m = 0
        d = self._douts
        for i in range(self.n):
            if d[i]() == 0:
                m |= 1 << i
        return m

    def due(self, now_ms, ticks_diff, wait_ms):
        """The channels to read now, or 0. Chips on one clock each convert on their own
        oscillator, so they are read together once every channel the last read got is
        ready (a ready chip holds its word until the next conversion replaces it); a
        chip that stays silent for wait_ms (dead, unplugged) no longer holds up the
        others, and one that comes back is read with them again. Allocation-free."""
        m = self.ready()
        if not m:
            self._waiting = False
            return 0
        if m & self.expect == self.expect:
            return m
        if not self._waiting:
            self._waiting = True
            self._since = now_ms
            return 0
        return m if ticks_diff(now_ms, self._since) >= wait_ms else 0

    def read(self):
        """Shift out one conversion of every channel; call only when ready(). Channels
        that had none keep their last value. Returns the mask of channels read."""
        sck = self._sck
        d = self._douts
        n = self.n
        vals = self.values
        m = self.ready()
        state = self._irq_off() if self._irq_off else 0
        acc0 = acc1 = acc2 = acc3 = 0
        for _ in range(24):
            sck(1)
            sck(0)
            acc0 = (acc0 << 1) | d[0]()
            if n > 1:
                acc1 = (acc1 << 1) | d[1]()
                if n > 2:
                    acc2 = (acc2 << 1) | d[2]()
                    if n > 3:
                        acc3 = (acc3 << 1) | d[3]()
        for _ in range(self._extra):
            sck(1)
            sck(0)
        if self._irq_on:
            self._irq_on(state)
        if m & 1:
            vals[0] = signed24(acc0)
        if m & 2:
            vals[1] = signed24(acc1)
        if m & 4:
            vals[2] = signed24(acc2)
        if m & 8:
            vals[3] = signed24(acc3)
        self.expect = m
        self._waiting = False
        return m

    @staticmethod
    def saturated(v):
        return v >= FULL_SCALE or v <= MIN_SCALE
