import micropython
from boards.virtual import DoutPin, HX711Chip, SckPin, ticks_diff

from stackpress.hx711 import HX711


def _pair(gain=128):
    chip = HX711Chip()
    return chip, HX711(SckPin(chip), DoutPin(chip), gain=gain)


def _bank(n):
    chips = [HX711Chip() for _ in range(n)]
    return chips, HX711(SckPin(chips), [DoutPin(c) for c in chips])


def test_reads_signed_24_bit_values():
    chip, hx = _pair()
    for v in (0, 1, -1, 1392284, -42950, 0x7FFFFF, -0x800000):
        assert not hx.ready() or chip.pending
        chip.load(v)
        assert hx.ready() == 1
        assert hx.read() == 1
        assert hx.values[0] == v, v
        assert not hx.ready()  # the 25th pulse sets DOUT high until the next conversion


def test_gain_selects_extra_pulses():
    for gain, pulses in ((128, 1), (32, 2), (64, 3)):
        chip, hx = _pair(gain)
        chip.load(5)
        hx.read()
        assert chip.extra_pulses == pulses, (gain, chip.extra_pulses)


def test_saturation_is_detected():
    assert HX711.saturated(0x7FFFFF) and HX711.saturated(-0x800000)
    assert not HX711.saturated(0x7FFFFE)


def test_read_allocates_nothing():
    chips, hx = _bank(4)
    for i, c in enumerate(chips):
        c.load(-12345 * (i + 1))
    micropython.heap_lock()
    try:
        m = hx.read()
    finally:
        micropython.heap_unlock()
    assert m == 15 and hx.values == [-12345, -24690, -37035, -49380], hx.values


def test_chips_on_one_clock_are_read_in_the_same_pulses():
    chips, hx = _bank(3)
    for v, c in zip((100, -200, 0x7FFFFF), chips):
        c.load(v)
    assert hx.ready() == 7
    assert hx.read() == 7
    assert hx.values == [100, -200, 0x7FFFFF]
    assert [c.extra_pulses for c in chips] == [1, 1, 1]  # each got 25 pulses: gain 128 for all
    assert hx.ready() == 0


def test_a_chip_with_no_conversion_keeps_its_last_value_and_is_not_in_the_mask():
    chips, hx = _bank(3)
    for c in chips:
        c.load(7)
    hx.read()
    chips[0].load(1)
    chips[2].load(3)
    assert hx.read() == 5
    assert hx.values == [1, 7, 3]


def test_due_waits_for_every_chip_then_stops_waiting_for_a_silent_one():
    chips, hx = _bank(3)
    t = (1 << 30) - 50  # across the ticks wrap
    chips[0].load(1)
    chips[1].load(2)
    assert hx.due(t, ticks_diff, 150) == 0  # chip 2 converts on its own oscillator: wait for it
    chips[2].load(3)
    assert hx.due(t + 40, ticks_diff, 150) == 7
    hx.read()
    # chip 2 goes silent: the others are held up for 150 ms, then read without it
    chips[0].load(4)
    chips[1].load(5)
    assert hx.due(t + 100, ticks_diff, 150) == 0
    assert hx.due(t + 200, ticks_diff, 150) == 0
    assert hx.due(t + 250, ticks_diff, 150) == 3
    assert hx.read() == 3 and hx.values == [4, 5, 3]
    chips[0].load(6)
    chips[1].load(7)
    assert hx.due(t + 350, ticks_diff, 150) == 3  # no longer waited for
    hx.read()
    for c in chips:  # it comes back: read with the others again, and waited for again
        c.load(9)
    assert hx.due(t + 450, ticks_diff, 150) == 7
    hx.read()
    chips[0].load(1)
    assert hx.due(t + 550, ticks_diff, 150) == 0


def test_due_allocates_nothing():
    chips, hx = _bank(3)
    chips[0].load(1)
    micropython.heap_lock()
    try:
        a = hx.due(0, ticks_diff, 150)
        b = hx.due(200, ticks_diff, 150)
    finally:
        micropython.heap_unlock()
    assert (a, b) == (0, 1)
