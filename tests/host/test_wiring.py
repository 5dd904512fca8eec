"""hardware/wiring.svg is drawn from the firmware's pin map and must match it."""

import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "hardware"))
import wiring  # noqa: E402


def test_the_committed_diagram_matches_the_pin_map():
    r = subprocess.run(
        [sys.executable, str(ROOT / "hardware" / "wiring.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_every_gpio_of_the_pin_map_is_drawn_at_its_pico_pin():
    pins = wiring.read_pins()
    svg = wiring.render(pins)
    for key, gpio in pins.items():
        assert ">%s<" % key in svg
        assert "GP%d (pin %d)" % (gpio, wiring.PICO_PINS["GP%d" % gpio]) in svg


def test_a_moved_pin_changes_the_drawing_and_an_undrawn_one_is_refused():
    pins = wiring.read_pins()
    moved = dict(pins, step=pins["step"] + 3)
    assert wiring.render(moved) != wiring.render(pins)
    with pytest.raises(SystemExit):
        wiring.render(dict(pins, tmc_uart=20))
