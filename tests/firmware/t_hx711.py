import micropython

from boards.virtual import HX711Chip, SckPin, DoutPin
from stackpress.hx711 import HX711


def _pair(gain=128):
    chip = HX711Chip()
    return chip, HX711(SckPin(chip), DoutPin(chip), gain=gain)


def test_reads_signed_24_bit_values():
    chip, hx = _pair()
    for v in (0, 1, -1, 1392284, -42950, 0x7FFFFF, -0x800000):
        assert not hx.ready() or chip.pending
        chip.load(v)
        assert hx.ready()
        assert hx.read() == v, v
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
    chip, hx = _pair()
    chip.load(-12345)
    micropython.heap_lock()
    try:
        v = hx.read()
    finally:
        micropython.heap_unlock()
    assert v == -12345
