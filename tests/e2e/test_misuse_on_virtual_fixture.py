"""What a careless user or a misbehaving device does to a running virtual fixture, through
the CLI as a person types it: a tare under load, a flood on the serial line, a reset, a
broken firmware to flash, a logger whose disk fills up, a profile of 24 steps."""

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import threading
import time

import pytest
import serial
from conftest import ROOT
from simfixture import BIN, RunningSim, read_replies, stackpress

from stackpress.protocol import frame


def _status(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _true_mpa(truth):
    with open(truth) as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["true_pressure_mpa"])


def test_tare_under_load_is_refused_and_the_hold_stays_true(tmp_path):
    truth = tmp_path / "truth.csv"
    sim = RunningSim("--speed", "max", "--seed", "11", "--truth", str(truth), "--truth-every", "1")
    try:
        assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "120").returncode == 0
        assert stackpress(sim.port, "idle").returncode == 0
        r = stackpress(sim.port, "tare")  # 3141 N on the cell
        assert r.returncode == 4 and "release" in r.stderr, r.stderr
        assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "120").returncode == 0
        st = _status(sim.port)
        assert st["state"] == "hold"
        assert abs(_true_mpa(truth) - 40.0) < 0.4, _true_mpa(truth)  # not the 79.8 MPa a tare under load gave
    finally:
        sim.stop()


def test_a_flood_on_the_serial_line_loses_no_command():
    sim = RunningSim("--speed", "max", "--seed", "12")
    n = 2000
    got = []
    try:
        with serial.Serial(sim.port, 115200, timeout=0.2) as s:
            t = threading.Thread(target=read_replies, args=(s, n, 120, lambda r: (r.get("id") or 0) >= 1000, got))
            t.start()
            data = b"".join(frame({"id": 1000 + i, "cmd": "hello"}) for i in range(n))
            s.write(data)  # ~100 KB at once: a real USB line blocks the writer, it never drops
            t.join(150)
    finally:
        sim.stop()
    assert sorted(r["id"] for r in got) == list(range(1000, 1000 + n)), (len(got), len(data))


def test_reset_is_a_clean_restart_not_a_watchdog_or_a_crash():
    sim = RunningSim("--speed", "50", "--seed", "13")
    try:
        before = _status(sim.port)
        r = stackpress(sim.port, "reset")
        assert r.returncode == 0, r.stderr
        st = _status(sim.port)
        assert st["boot"] == before["boot"] + 1 and st["boot_id"] != before["boot_id"]
        assert st["reset_cause"] == "soft" and "watchdog_reset" not in st["alarms"], st
    finally:
        sim.stop()


@pytest.mark.parametrize("speed", ["nan", "inf", "-1", "1e-9", "0"])
def test_a_speed_that_is_not_a_speed_is_a_usage_error(speed):
    r = subprocess.run([str(BIN / "stackpress"), "sim", "--speed", speed], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "speed" in r.stderr, r.stderr


def _firmware(tmp_path, name, change):
    fw = tmp_path / name
    shutil.copytree(ROOT / "firmware", fw)
    change(fw)
    return fw


def test_a_firmware_that_does_not_compile_is_refused_before_the_fixture_is_touched(tmp_path):
    fw = _firmware(
        tmp_path, "broken", lambda fw: (fw / "main.py").write_text((fw / "main.py").read_text() + "\ndef (:\n")
    )
    big = _firmware(
        tmp_path,
        "big",
        lambda fw: (fw / "stackpress" / "blob.py").write_text(
            "B = (%s)\n" % ",\n".join("b'%s'" % ("x" * 1000) for _ in range(1100))
        ),
    )
    sim = RunningSim("--speed", "50", "--seed", "14")
    try:
        assert stackpress(sim.port, "hold", "30", "--wait", "--timeout", "120").returncode == 0
        before = _status(sim.port)
        r = stackpress(sim.port, "flash", "--firmware", str(fw), timeout=300)
        assert r.returncode == 5 and "main.py" in r.stderr and "nothing was changed" in r.stderr, r.stderr
        r = stackpress(sim.port, "flash", "--firmware", str(big), timeout=300)
        assert r.returncode == 5 and "free" in r.stderr and "hold" in r.stderr, r.stderr
        st = _status(sim.port)
        assert st["boot"] == before["boot"] and st["state"] == "hold" and st["setpoint_mpa"] == 30.0
    finally:
        sim.stop()


def test_a_firmware_that_can_not_start_is_rolled_back(tmp_path):
    def breaks_at_boot(fw):
        v = fw / "stackpress" / "version.json"
        d = json.loads(v.read_text())
        v.write_text(json.dumps(dict(d, firmware_version="9.9.9-broken+" + d["firmware_version"])))
        (fw / "stackpress" / "store.py").write_text("raise ImportError('a module that can not load')\n")

    fw = _firmware(tmp_path, "nostart", breaks_at_boot)
    sim = RunningSim("--speed", "50", "--seed", "15")
    try:
        assert stackpress(sim.port, "hold", "30", "--wait", "--timeout", "120").returncode == 0
        old = _status(sim.port)["firmware_version"]
        r = stackpress(sim.port, "flash", "--firmware", str(fw), timeout=300)
        assert r.returncode == 5 and "did not start" in r.stderr and "runs firmware %s again" % old in r.stderr, (
            r.stderr
        )
        st = _status(sim.port)
        assert st["firmware_version"] == old and st["setpoint_mpa"] == 30.0 and st["state"] in ("ramp", "hold")
    finally:
        sim.stop()


def test_log_all_takes_a_fixture_back_once_its_disk_has_room_again(tmp_path):
    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path / "runtime"))
    sim = RunningSim("--speed", "20", "--seed", "16", env=env)
    out = tmp_path / "logs"

    def small_disk():  # writes past 40 KB fail (EFBIG), as on a full disk, instead of killing the logger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40000, resource.RLIM_INFINITY))

    try:
        lg = subprocess.Popen(
            [str(BIN / "stackpress"), "log", "--all", "--out", str(out) + "/", "--duration", "30", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=small_disk,
        )
        end = time.monotonic() + 60
        while time.monotonic() < end and not any(out.glob("*.csv")) or next(out.glob("*.csv")).stat().st_size < 40000:
            time.sleep(0.2)
        time.sleep(1)  # the logger has met the full disk
        resource.prlimit(lg.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        stdout, stderr = lg.communicate(timeout=90)
    finally:
        sim.stop()
    assert "logging fixture" in stderr and "again" in stderr, stderr
    f = next(out.glob("*.csv"))
    assert f.stat().st_size > 60000, f.stat().st_size
    keys = [
        tuple(map(int, line.split(",")[:2]))
        for line in f.read_text().splitlines()
        if line and not line.startswith("#") and not line.startswith("boot,")
    ]
    assert len(keys) == len(set(keys)) and keys == sorted(keys)


def test_a_profile_of_24_steps_with_realistic_numbers_runs(tmp_path):
    from stackpress.profile import load

    steps = (
        "".join(
            "[[step]]\nto_mpa = %.3f\nrate_mpa_s = 0.0125\nhold_h = 2.5\n\n" % (25.125 + i * 1.375) for i in range(23)
        )
        + "[[step]]\nto_mpa = 25.125\nrate_mpa_s = 0.05\nuntil_stopped = true\n"
    )
    f = tmp_path / "long.toml"
    f.write_text('name = "24 steps"\n\n' + steps)
    assert len(frame({"id": 12345, "cmd": "profile_set", "steps": load(str(f))[1]})) > 512  # the old limit
    too_long = tmp_path / "too_long.toml"  # every number to 15 digits: 1060 bytes
    too_long.write_text(
        'name = "too long"\n\n'
        + "".join(
            "[[step]]\nto_mpa = %.12f\nrate_mpa_s = 0.012345678901234\nhold_s = 8999\n\n" % (25.123456789012 + i)
            for i in range(24)
        )
    )
    sim = RunningSim("--speed", "max", "--seed", "17")
    try:
        r = stackpress(sim.port, "profile", "run", str(f), "--json")
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)["steps"]) == 24
        assert stackpress(sim.port, "profile", "stop").returncode == 0
        r = stackpress(sim.port, "profile", "run", str(too_long))
        assert r.returncode == 2 and "bytes as one command" in r.stderr, r.stderr
    finally:
        sim.stop()
