"""The firmware on the MicroPython a Pico runs: `stackpress sim --board pico`, an emulated
RP2040 (rp2040js) running the official RPI_PICO image the user gives (STACKPRESS_RP2_UF2,
with the RP2040 bootrom in STACKPRESS_RP2_BOOTROM), the firmware on its littlefs flash.
Skipped, with one line saying what is missing, where those are not given. The emulated
chip runs at about half real time, so these tests take minutes."""

import ast
import json
import os
import shutil
import subprocess
import time

import pytest
from conftest import ROOT
from simfixture import BIN, RunningSim, pauses, scenario_file, stackpress, status_at, truth_at

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


def test_stackpress_flash_onto_the_chip_changes_what_differs_and_the_hold_resumes(tmp_path):
    """`stackpress flash` as on a bench: mpremote over the chip's USB CDC, the files onto
    its littlefs, a machine.reset() through the RP2040's watchdog."""
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw)
    v = fw / "stackpress" / "version.json"
    d = json.loads(v.read_text())
    v.write_text(json.dumps(dict(d, firmware_version="9.9.9-test+" + d["firmware_version"])))
    sim = RunningSim("--board", "pico", "--speed", "max", *pauses())
    try:
        r = stackpress(sim.port, "hold", "40", "--wait", "--timeout", "900", timeout=3600)
        assert r.returncode == 0, r.stdout + r.stderr
        r = stackpress(sim.port, "flash", "--firmware", str(fw), "--json", timeout=1800)
        assert r.returncode == 0, r.stdout + r.stderr
        done = json.loads(r.stdout)
        print("flashed: %s" % done)
        assert done["changed"] == ["stackpress/version.json"] and done["removed"] == [], done
        assert done["firmware_version"].startswith("9.9.9-test+"), done
        assert done["state"] in ("hold", "ramp") and done["setpoint_mpa"] == 40.0, done
        st = status_at(sim.port, 60)  # the new boot's clock: resumed and settled
        print("after the flash: %(reset_cause)s, %(alarms)s, %(state)s %(pressure_mpa).4f MPa" % st)
        assert st["firmware_version"] == done["firmware_version"], st
        assert st["reset_cause"] == "soft" and "watchdog_reset" not in st["alarms"], st
        assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4, st
    finally:
        sim.stop()


def test_one_load_cell_read_by_the_pio_program_gives_the_models_force(tmp_path):
    """A build with one load cell reads its HX711 with the PIO program (boards/pico.py):
    PD_SCK from side-set at 1 MHz, DOUT sampled by `in`, against the board's pin-level
    HX711 with the datasheet's timing (a pulse held high over 60 us powers the chip down)."""
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw)
    board = fw / "boards" / "pico.py"
    text = board.read_text()
    assert "\nLOAD_CELLS = 3 " in text
    board.write_text(text.replace("\nLOAD_CELLS = 3 ", "\nLOAD_CELLS = 1 "))
    truth = tmp_path / "truth.csv"
    sim = RunningSim(
        "--board",
        "pico",
        "--speed",
        "max",
        "--firmware",
        str(fw),
        "--set",
        "fixture.load_cells.count=1",
        "--truth",
        str(truth),
        "--truth-every",
        "1",
        *pauses(),
    )
    try:
        r = stackpress(sim.port, "hold", "40", "--wait", "--timeout", "900", timeout=3600)
        assert r.returncode == 0, r.stdout + r.stderr
        st = _status(sim.port)
    finally:
        sim.stop()
    sensed = truth_at(truth, st["uptime_s"], "sensed_force_n")
    print(
        "one load cell through PIO: %s %.4f MPa, %.2f N read, the model's %.2f N; %s"
        % (st["state"], st["pressure_mpa"], st["force_n"], sensed, st["alarms"])
    )
    assert st["load_cells"] == 1 and "channels" not in st, st
    assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4 and st["alarms"] == [], st
    # The last conversion vs the model's at that time: within a sample's change (100 ms).
    assert abs(st["force_n"] - sensed) < 5.0, (st["force_n"], sensed)


def _firmware_tests():
    found = {}
    for p in sorted((ROOT / "tests" / "firmware").glob("t_*.py")):
        tree = ast.parse(p.read_text())
        found[p.stem] = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return found


def test_every_firmware_test_passes_on_the_chip(tmp_path):
    """The firmware's own tests (tests/firmware/t_*.py, which make test runs on the unix
    port) on the Pico's MicroPython: float32 in the controller, the dilatometer and the
    load-cell arithmetic, 31-bit small ints, the rp2 port's heap, the firmware as flashed.
    One module per boot, as the unix port runs one per process: run one after another in
    one heap, their doubles' leftovers fragment it (after twelve modules t_safety's board
    double found no 4 KB block to copy what the firmware wrote). At --speed 1: mount's
    chip-side waits for the host are on the chip's clock, which an idle chip at full speed
    runs ahead of the host's."""
    want = _firmware_tests()
    sim = RunningSim("--board", "pico", "--speed", "1", *pauses())
    out = []
    try:
        for mod in want:
            assert stackpress(sim.port, "reset", timeout=300).returncode == 0
            assert stackpress(sim.port, "repl", timeout=300).returncode == 0
            p = subprocess.run(
                [str(BIN / "mpremote"), "connect", sim.port, "resume", "mount", str(ROOT / "tests" / "firmware")]
                + ["exec", "import chiptest; chiptest.run(%r)" % mod],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            out += p.stdout.splitlines()
    finally:
        sim.stop()
    print("\n".join(x for x in out if x.startswith(("FAIL", "heap free"))))
    passed = {x[5:] for x in out if x.startswith("PASS ")}
    missing = ["%s %s" % (m, t) for m, tests in want.items() for t in tests if "%s %s" % (m, t) not in passed]
    n = sum(len(t) for t in want.values())
    assert n > 90 and not missing, "not passed on the chip: %s\n%s" % (missing, "\n".join(out[-60:]))
