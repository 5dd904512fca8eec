"""`stackpress flash` on a fixture holding pressure: only what changed, verified, resumed."""

import json
import shutil
import subprocess

from conftest import ROOT
from simfixture import BIN, RunningSim, stackpress


def _flash(port, firmware):
    r = stackpress(port, "flash", "--firmware", str(firmware), "--json", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_flashing_a_holding_fixture_changes_only_what_differs_and_keeps_the_pressure(tmp_path):
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw)
    v = fw / "stackpress" / "version.json"
    d = json.loads(v.read_text())
    v.write_text(json.dumps(dict(d, firmware_version="9.9.9-test+" + d["firmware_version"])))
    truth = tmp_path / "truth.csv"
    sim = RunningSim("--speed", "50", "--seed", "4", "--truth", str(truth), "--truth-every", "1")
    try:
        assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "120").returncode == 0
        # a file an older firmware left in the firmware's folder: it must go
        assert stackpress(sim.port, "repl").returncode == 0
        p = subprocess.run(
            [
                str(BIN / "mpremote"),
                "connect",
                sim.port,
                "resume",
                "exec",
                "f = open('stackpress/stale.py', 'w'); f.write('x = 1'); f.close()",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        r = _flash(sim.port, fw)
        assert r["firmware_version"].startswith("9.9.9-test+") and r["changed"] == ["stackpress/version.json"], r
        assert r["removed"] == ["stackpress/stale.py"], r
        assert r["state"] in ("hold", "ramp") and r["setpoint_mpa"] == 40.0, r
        again = _flash(sim.port, fw)
        assert again["changed"] == [] and again["removed"] == [], again  # nothing differs: nothing copied
        st = json.loads(stackpress(sim.port, "status", "--json").stdout)
        assert st["firmware_version"] == r["firmware_version"] and st["setpoint_mpa"] == 40.0
        # The flash's reset is a deliberate one, though the board reports it as the RP2040 does.
        assert st["reset_cause"] == "soft" and "watchdog_reset" not in st["alarms"], st
    finally:
        sim.stop()
    rows = [line.split(",") for line in truth.read_text().splitlines()[1:]]
    held = [float(x[2]) for x in rows if float(x[0]) > 120]  # after the first hold settled
    assert held and max(held) <= 40 * 1.01 and min(held) >= 40 * 0.99, (min(held), max(held))


def test_flash_refuses_a_locked_fixture(tmp_path):
    sim = RunningSim("--speed", "max", "--seed", "5")
    try:
        assert stackpress(sim.port, "lock").returncode == 0
        r = stackpress(sim.port, "flash")
        assert r.returncode == 4 and "locked" in r.stderr, r.stderr
    finally:
        sim.stop()
