"""The firmware on the MicroPython a Pico runs: `stackpress sim --board pico`, an emulated
RP2040 (rp2040js) running the official RPI_PICO image the user gives (STACKPRESS_RP2_UF2,
with the RP2040 bootrom in STACKPRESS_RP2_BOOTROM), the firmware on its littlefs flash.
Skipped, with one line saying what is missing, where those are not given. The emulated
chip runs at about half real time, so these tests take minutes."""

import json
import os
import time

import pytest
from simfixture import RunningSim, pauses, scenario_file, stackpress, status_at

from stackpress.virtual import pico

try:
    pico.check(None, None)
except pico.PicoUnavailable as e:
    pytestmark = pytest.mark.skip(reason="emulated Pico: %s" % e)


def _status(port):
    r = stackpress(port, "status", "--json", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_pico_holds_40_mpa_keeps_its_flash_and_resets_without_a_watchdog_alarm(tmp_path):
    sim = RunningSim("--board", "pico", "--speed", "max", "--truth", str(tmp_path / "truth.csv"), *pauses())
    try:
        port = sim.port
        # Written to the littlefs on the emulated flash (rp2040js ignores flash writes of
        # its own: chip.mjs does them), read back after the chip is reset.
        r = stackpress(port, "config", "max_nonuniformity_pct", "31", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        r = stackpress(port, "hold", "40", "--wait", "--timeout", "900", timeout=3600)
        assert r.returncode == 0, r.stdout + r.stderr
        st = _status(port)
        print(
            "held: %.4f MPa at %.1f s, %s; heap %d B used, %d B free; id %s"
            % (
                st["pressure_mpa"],
                st["uptime_s"],
                st["alarms"],
                st["heap_alloc_bytes"],
                st["heap_free_bytes"],
                st["fixture_id"],
            )
        )
        assert st["runtime"].startswith("micropython") and st["board"] == "pico", st
        assert st["fixture_id"] != "0" * 16, st  # the flash's unique id (chip.mjs answers 0x4B)
        assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4, st
        r = stackpress(port, "reset", timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        # On the RP2040 machine.reset() goes through the watchdog: the firmware tells a
        # deliberate reset by its state file, and resumes the hold.
        st = status_at(port, 20)
        print(
            "after reset: %s, alarms %s, %s %.4f MPa at %.1f s"
            % (st["reset_cause"], st["alarms"], st["state"], st["pressure_mpa"], st["uptime_s"])
        )
        assert st["reset_cause"] != "watchdog" and "watchdog_reset" not in st["alarms"], st
        assert st["uptime_s"] < 80 and st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4, st
        r = stackpress(port, "config", "--json", timeout=300)
        assert json.loads(r.stdout)["max_nonuniformity_pct"]["value"] == 31, r.stdout
    finally:
        sim.stop()


def test_pico_ramps_and_holds_through_the_ticks_ms_wrap(tmp_path):
    """ticks_ms wraps at 2**30 ms (12.4 days) on the RP2040: the chip's timer starts 60 s
    before it, so the wrap comes during the ramp."""
    wrap_s = 2**30 / 1000
    env = dict(os.environ, STACKPRESS_PICO_CLOCK_START_S="%.3f" % (wrap_s - 60))
    sim = RunningSim("--board", "pico", "--speed", "max", *pauses(), env=env)
    try:
        r = stackpress(sim.port, "hold", "40", "--wait", "--timeout", "900", timeout=3600)
        assert r.returncode == 0, r.stdout + r.stderr
        st = status_at(sim.port, 150)
        print(
            "through the wrap: %s %.4f MPa at %.1f s, %s"
            % (st["state"], st["pressure_mpa"], st["uptime_s"], st["alarms"])
        )
        assert st["uptime_s"] < 220, st  # uptime counts on through the wrap: no jump
        assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4 and st["alarms"] == [], st
    finally:
        sim.stop()


def test_pico_resumes_its_hold_after_a_power_cut_and_a_hang(tmp_path):
    """A power cut at 120 s and a hung board at 200 s (its process stopped: the sim's
    watchdog, told the chip's timeout, resets it): the hold resumes after each, and the
    hang is reported as a watchdog reset."""
    events = [{"at_s": 120, "board": "power_cut", "off_s": 1.0}, {"at_s": 200, "board": "hang"}]
    status_file = tmp_path / "sim.json"
    sim = RunningSim(
        "--board",
        "pico",
        "--speed",
        "max",
        "--scenario",
        str(scenario_file(tmp_path, events, cycles=0)),
        "--status",
        str(status_file),
        *pauses(300),
    )
    try:
        r = stackpress(sim.port, "hold", "40", "--wait", "--timeout", "900", timeout=3600)
        assert r.returncode == 0, r.stdout + r.stderr
        end = time.monotonic() + 3600  # a bound for a broken run; the wait is on the model's clock
        while time.monotonic() < end:
            doc = json.loads(status_file.read_text()) if status_file.exists() else {"t_s": 0}
            if doc["t_s"] >= 300:
                break
            time.sleep(0.5)
        st = _status(sim.port)
        print(
            "after a power cut and a hang: %s; %s %.4f MPa, %s, %s"
            % (doc["resets"], st["state"], st["pressure_mpa"], st["reset_cause"], st["alarms"])
        )
        assert doc["resets"]["power_cut"] == 1 and doc["resets"]["watchdog"] == 1, doc
        assert st["reset_cause"] == "watchdog" and "watchdog_reset" in st["alarms"], st
        assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4, st
    finally:
        sim.stop()
