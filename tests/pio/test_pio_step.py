"""The Pico's step-pulse PIO program, run in rp2040-pio-emulator.

The program is the one in firmware/boards/pico.py, assembled from its own source (and
checked against adafruit_pioasm). What a TMC2209 and the firmware rely on: exactly n
pulses per move, a pulse high for y + 3 and a period of 2y + 7 PIO cycles (never faster
than asked), the STEP line low between moves, the first edge a few cycles after the
start (DIR, set by the CPU before, has its set-up time), and one word back per move.
"""

from collections import deque

import adafruit_pioasm
import pytest
from pioemu import State, emulate
from rp2asm import load_pico_board

PICO = load_pico_board()
PROGRAM = PICO._step_program
STEP_PIN = 10
PIO_HZ = PICO.PIO_FREQ  # 1 MHz: one cycle is 1 us


def run(opcodes, n, y, max_cycles):
    """Emulate one move; return rising-edge clocks, falling-edge clocks, words pushed, end clock."""
    state = State(transmit_fifo=deque([n - 1, y]))
    rises, falls = [], []
    last = 0
    gen = emulate(
        opcodes,
        stop_when=lambda op, s: len(s.receive_fifo) > 0 or s.clock > max_cycles,
        initial_state=state,
        set_base=STEP_PIN,
        set_count=1,
        wrap_target=0,
        wrap_top=len(opcodes) - 1,
    )
    end = None
    for _before, after in gen:
        level = (after.pin_values >> STEP_PIN) & 1
        if level != last:
            (rises if level else falls).append(after.clock)
            last = level
        end = after
    return rises, falls, list(end.receive_fifo), end.clock, last


def timing_errors(opcodes, n, rate_hz):
    """Everything wrong with one move at rate_hz: an empty list means it is right."""
    y = PICO.step_delay(rate_hz)
    rises, falls, pushed, end, level = run(opcodes, n, y, max_cycles=4 * n * (2 * y + 7) + 100)
    errs = []
    if len(rises) != n or len(falls) != n:
        errs.append("%d rising and %d falling edges for %d pulses" % (len(rises), len(falls), n))
    if level:
        errs.append("STEP left high after the move")
    if len(pushed) != 1:
        errs.append("%d words pushed, not 1" % len(pushed))
    highs = [f - r for r, f in zip(rises, falls)]
    periods = [b - a for a, b in zip(rises, rises[1:])]
    if any(h != y + 3 for h in highs):
        errs.append("high for %s cycles, not %d" % (sorted(set(highs)), y + 3))
    if any(p != 2 * y + 7 for p in periods):
        errs.append("periods %s cycles, not %d" % (sorted(set(periods)), 2 * y + 7))
    if periods and PIO_HZ / min(periods) > rate_hz:
        errs.append("faster than asked: %.0f Hz > %d Hz" % (PIO_HZ / min(periods), rate_hz))
    if rises and rises[0] < 1:
        errs.append("first edge at cycle %d: no set-up time after DIR" % rises[0])
    return errs


def test_the_program_assembles_as_an_independent_assembler_does():
    assert PROGRAM.opcodes() == list(adafruit_pioasm.assemble(PROGRAM.text()))


@pytest.mark.parametrize("n, rate_hz", [(1, 20000), (2, 20000), (7, 5000), (160, 20000), (4, 1000)])
def test_moves_have_exact_pulse_counts_and_timing(n, rate_hz):
    assert timing_errors(PROGRAM.opcodes(), n, rate_hz) == []


@pytest.mark.parametrize("rate_hz", [20000, 10000, 3333, 400, 10])
def test_rate_is_within_a_cycle_and_never_faster(rate_hz):
    y = PICO.step_delay(rate_hz)
    period_s = (2 * y + 7) / PIO_HZ
    assert 1 / period_s <= rate_hz
    assert period_s - 1 / rate_hz < 2 / PIO_HZ  # within two cycles (2 us)


def test_pulse_widths_suit_a_tmc2209_at_the_fastest_rate():
    y = PICO.step_delay(20000)
    assert (y + 3) / PIO_HZ >= 100e-9 and (y + 4) / PIO_HZ >= 100e-9  # TMC2209: >= 100 ns high and low


def _mutant(drop):
    """The program with one instruction removed (jump targets shifted), as a broken edit would."""
    ops = PROGRAM.opcodes()
    out = []
    for i, op in enumerate(ops):
        if i == drop:
            continue
        if op >> 13 == 0 and (op & 31) > drop:  # a jmp past the removed one
            op -= 1
        out.append(op)
    return out


@pytest.mark.parametrize("drop, what", [(7, "y reload before the low phase"), (10, "the push at the end")])
def test_a_broken_timing_is_caught(drop, what):
    # The checks above must fail for a broken program, or they prove nothing.
    assert timing_errors(_mutant(drop), 5, 20000), what
