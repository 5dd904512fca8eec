"""The emulated RP2040's fixes (host/stackpress/virtual/pico/chip.mjs) that need no
MicroPython image, run under Node.js; the rest are in tests/e2e/test_emulated_pico.py."""

import json
import subprocess
from pathlib import Path

import pytest

from stackpress.virtual import pico

HERE = Path(__file__).resolve().parent

try:
    pico.require_emulator()
except pico.PicoUnavailable as e:
    pytestmark = pytest.mark.skip(reason="emulated Pico: %s" % e)


def _run(script):
    r = subprocess.run([pico.node_bin(), str(HERE / script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_pio_runs_on_the_emulated_clock_at_its_divider():
    got = _run("pio_clock.mjs")
    # set pins 1, set pins 0 at 1 MHz: a pulse every 2 us, 1500 in 3 ms (the first waits
    # for the `set pindirs`). rp2040js alone: 500, its first burst of 1000 steps, then none.
    assert 1498 <= got["pulses_in_3_ms"] <= 1500, got


def test_no_pio_edge_is_lost_when_the_cores_time_jumps():
    got = _run("pio_edges.mjs")
    # A pin toggled every cycle at 1 MHz while the core's busy-wait is skipped 5 us at a
    # time: 1500 rises in 3 ms. Reported once per batch of cycles (rp2040js): 292.
    assert got["skipped_ns"] > 2_000_000 and 1498 <= got["rises_in_3_ms"] <= 1500, got


def test_flash_erase_and_program_reach_the_flash_and_its_file_and_the_watchdog_resets():
    got = _run("flash_and_watchdog.mjs")
    # without chip.mjs: nothing reaches the file (zeros), the flash keeps its bytes, no reset
    assert got["programmed"] and got["erased_rest"] and got["in_flash"], got
    assert got["reset_before_1ms"] is None and got["reset_after_1ms"] == 1, got  # REASON: timer


def test_usb_input_waits_for_the_host_and_loses_nothing_and_idle_time_is_skipped_exactly():
    got = _run("usb_and_idle.mjs")
    # The firmware's read waits for data: rp2040js answers at once with an empty packet,
    # a storm of interrupts that slowed MicroPython about 3x.
    assert got["answered_before_data"] == 0 and got["empty_packets"] == 0, got
    # 2000 bytes at once: rp2040js's 512-byte FIFO dropped the rest.
    assert got["bytes_received"] == 2000 and got["in_order"] and got["largest_packet"] == 64, got
    # A waiting core: to the alarm, exactly, and the run ends where asked, not past it.
    assert got["waiting"] and got["alarm_fired_after_ns"] == 1_000_000, got
    assert got["ran_ns"] == 10_000_123 and got["instructions_while_waiting"] == 0, got
    # A core spinning on the timer skips ahead 5 us a turn: 400 instructions a millisecond
    # instead of about 42,000.
    assert got["spin_ran_ns"] == 1_000_000 and got["spin_instructions"] < 1000, got
