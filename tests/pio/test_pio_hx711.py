"""The Pico's HX711 PIO program, run in rp2040-pio-emulator against a pin-level HX711.

The program is the one in firmware/boards/pico.py, assembled from its own source (and
checked against adafruit_pioasm). The chip model below holds it to the HX711 datasheet
(Avia Semiconductor, Fig. 2 and its timing table): DOUT low = a conversion is ready;
PD_SCK high 0.2-50 us (over 60 us powers the chip down) and low >= 0.2 us; the first
rising edge >= 0.1 us after DOUT falls; data valid 0.1 us after each rising edge; 25,
26 or 27 pulses per conversion (gain 128 ch A, 32 ch B, 64 ch A for the next one).
"""

from collections import deque

import adafruit_pioasm
import pytest
from pioemu import State, emulate
from rp2asm import load_pico_board

PICO = load_pico_board()
PROGRAM = PICO._hx711_program
SCK = 2  # side-set base: PD_SCK (as in the pin map)
DOUT = 0  # in_base: the emulator reads pins from GPIO 0, so DOUT is mapped there
PULSES_FOR_GAIN = {128: 25, 32: 26, 64: 27}


class Chip:
    """HX711 at the pins: presents `words` one conversion each `period_us` apart and
    records every way the clocking breaks the datasheet."""

    def __init__(self, words, period_us, cycle_us):
        self.words = list(words)
        self.period_us = period_us
        self.cycle_us = cycle_us
        self.dout = 1
        self.sck = 0
        self.word = None  # conversion being shifted out
        self.pulses = 0  # PD_SCK pulses in this conversion period
        self.next_ready = period_us
        self.ready_at = None
        self.rise_at = None
        self.fall_at = 0.0
        self.pulse_counts = []  # pulses seen per conversion read
        self.errors = []

    def _err(self, msg):
        if len(self.errors) < 20:
            self.errors.append(msg)

    def __call__(self, state: State) -> int:
        t = state.clock * self.cycle_us
        sck = (state.pin_values >> SCK) & 1
        if sck and not self.sck:  # rising edge
            self.rise_at = t
            if t - self.fall_at < 0.2:
                self._err("PD_SCK low %.2f us < 0.2 us" % (t - self.fall_at))
            if self.word is None:
                self._err("PD_SCK pulse at %.1f us with no conversion ready" % t)
            else:
                if self.pulses == 0 and t - self.ready_at < 0.1:
                    self._err("first rise %.2f us after DOUT fell (< 0.1 us)" % (t - self.ready_at))
                self.pulses += 1
                # data valid 0.1 us after the edge: the next instruction sees it
                self.dout = (self.word >> (24 - self.pulses)) & 1 if self.pulses <= 24 else 1
        elif not sck and self.sck:  # falling edge
            self.fall_at = t
            high = t - self.rise_at
            if high > 60:
                self._err("PD_SCK high %.1f us: the chip powered down" % high)
            elif not 0.2 <= high <= 50:
                self._err("PD_SCK high %.2f us outside 0.2-50 us" % high)
        elif sck and t - self.rise_at > 60:
            self._err("PD_SCK held high past 60 us at %.1f us: the chip powered down" % t)
        self.sck = sck
        if not sck and t >= self.next_ready:  # the next conversion is due
            if self.word is not None:
                self.pulse_counts.append(self.pulses)  # read or not, this period is over
            if self.words:
                self.word = self.words.pop(0) & 0xFFFFFF
                self.ready_at = t
                self.pulses = 0
                self.dout = 0
            else:
                self.word = None
                self.dout = 1
            self.next_ready += self.period_us
        return self.dout << DOUT


def run(opcodes, words, gain=128, period_us=1000.0, pio_hz=PICO.PIO_FREQ, reader=True):
    """Emulate; return the chip and the signed values the firmware would read."""
    chip = Chip(words, period_us, 1e6 / pio_hz)
    state = State(transmit_fifo=deque([PICO.GAIN_PULSES[gain] - 1]), pin_directions=1 << SCK)
    end_clock = (len(words) + 2) * period_us * pio_hz / 1e6
    got = []
    gen = emulate(
        opcodes,
        stop_when=lambda op, s: s.clock > end_clock,
        initial_state=state,
        input_source=chip,
        side_set_base=SCK,
        side_set_count=1,
        shift_isr_right=False,
        wrap_target=0,
        wrap_top=len(opcodes) - 1,
    )
    for _before, after in gen:
        if reader and after.receive_fifo:  # the control loop takes each conversion
            got.append(PICO.signed24(after.receive_fifo.popleft()))
    return chip, got


WORDS = [0x123456, 0x7FFFFF, 0x800000, 0x000001, 0xFFFFFF, 0x5A5A5A, 0x0F0F0F]


def test_the_program_assembles_as_an_independent_assembler_does():
    assert PROGRAM.opcodes() == list(adafruit_pioasm.assemble(PROGRAM.text()))


@pytest.mark.parametrize("gain", [128, 64, 32])
def test_every_conversion_is_read_right_within_the_datasheet_timing(gain):
    chip, got = run(PROGRAM.opcodes(), WORDS, gain=gain)
    assert chip.errors == []
    assert got == [w - (1 << 24) if w & 0x800000 else w for w in WORDS]
    assert chip.pulse_counts == [PULSES_FOR_GAIN[gain]] * len(WORDS)


def test_at_80_sps_too():
    chip, got = run(PROGRAM.opcodes(), WORDS, period_us=12500.0)
    assert chip.errors == [] and len(got) == len(WORDS)


def test_a_slow_reader_gets_every_conversion_in_order():
    # Up to four conversions wait in the RX FIFO; the program stalls the fifth, never drops.
    chip, _ = run(PROGRAM.opcodes(), WORDS[:4], reader=False)
    assert chip.errors == [] and chip.pulse_counts == [25] * 4


def _mutant(drop):
    ops = PROGRAM.opcodes()
    out = []
    for i, op in enumerate(ops):
        if i == drop:
            continue
        if op >> 13 == 0 and (op & 31) > drop:
            op -= 1
        out.append(op)
    return out


def _broken(opcodes, **kw):
    chip, got = run(opcodes, WORDS, **kw)
    return (
        chip.errors
        or got != [w - (1 << 24) if w & 0x800000 else w for w in WORDS]
        or chip.pulse_counts != [25] * len(WORDS)
    )


@pytest.mark.parametrize(
    "drop, what",
    [
        (4, "the settle cycle before DOUT is read: reads the previous bit"),
        (3, "the wait for DOUT low: clocks a conversion that is not ready"),
        (7, "the reload of the gain count: wrong pulse count"),
    ],
)
def test_a_broken_program_is_caught(drop, what):
    assert _broken(_mutant(drop)), what


@pytest.mark.parametrize("pio_hz", [30_000, 10_000])
def test_a_clock_too_slow_for_the_datasheet_is_caught(pio_hz):
    # 2 cycles high: 67 us at 30 kHz powers the chip down
    assert _broken(PROGRAM.opcodes(), pio_hz=pio_hz, period_us=50000.0)
