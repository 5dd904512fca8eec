"""The stackpress CLI against the virtual fixture, as a user runs it."""

import csv
import json
import os
import subprocess
import time

import pytest
import serial
from conftest import ROOT
from simfixture import BIN, RunningSim, read_replies, scenario_file, stackpress

from stackpress.protocol import frame


@pytest.fixture(scope="module")
def sim():
    s = RunningSim("--speed", "max", "--seed", "1")
    yield s
    s.stop()


def _status(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_status_json_describes_the_fixture(sim):
    st = _status(sim.port)
    for k in (
        "firmware_version",
        "runtime",
        "board",
        "state",
        "pressure_mpa",
        "setpoint_mpa",
        "force_n",
        "position_um",
        "cell_area_mm2",
        "alarms",
        "uptime_s",
    ):
        assert k in st, k
    assert st["runtime"].startswith("micropython")
    assert st["board"] == "virtual" and st["cell_area_mm2"] == 78.54 and st["alarms"] == []
    assert st["heap_free_bytes"] + st["heap_alloc_bytes"] <= 192 * 1024  # a Pico-sized heap


def test_hold_40_reaches_and_holds_within_1_percent(sim):
    r = stackpress(sim.port, "hold", "40", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(1.0)  # at --speed max that is minutes of virtual time with the cell cycling
    st = _status(sim.port)
    assert st["state"] == "hold" and abs(st["pressure_mpa"] - 40) <= 0.4, st


def test_garbage_on_the_line_gets_error_replies_and_changes_nothing(sim):
    before = _status(sim.port)
    with serial.Serial(sim.port, 115200, timeout=0.2) as s:
        s.reset_input_buffer()
        s.write(b"\x03\x03\r\x01\x04")  # what a stray mpremote sends
        s.write(b"hold 60\n")  # no frame
        s.write(frame({"id": 5, "cmd": "hold", "mpa": 60})[:-3] + b"00\n")  # bad CRC
        s.write(frame({"id": 6, "cmd": "hold", "mpa": 900}))  # out of range
        s.write(frame({"id": 7, "cmd": "hold", "mpa": "60"}))  # wrong type
        s.write(frame({"id": 8, "cmd": "launch"}))  # unknown command
        s.write(b"\xff\xfe" * 400 + b"\n")  # overlong binary junk
        replies = read_replies(s, 6, 5)
    assert [r["ok"] for r in replies] == [False] * 6, replies
    assert [r["err"] for r in replies] == ["frame", "crc", "range", "type", "unknown", "frame"], replies
    assert "MPa" in replies[2]["msg"]
    after = _status(sim.port)
    assert after["state"] == before["state"] == "hold"
    assert after["setpoint_mpa"] == before["setpoint_mpa"] == 40
    assert abs(after["pressure_mpa"] - 40) <= 0.4
    assert after["seq"] > before["seq"]  # still running, still reporting


def test_refusals_are_exit_code_4_with_the_allowed_range(sim):
    r = stackpress(sim.port, "hold", "500")
    assert r.returncode == 4 and "0.1 to 76 MPa" in r.stderr, r.stderr
    r = stackpress(sim.port, "config", "cell_area_mm2", "113")
    assert r.returncode == 4 and "can't change while" in r.stderr, r.stderr
    # in the words of the command line, not the protocol's ('gap', 'idle')
    assert "'stackpress gap' or 'stackpress idle' first" in r.stderr, r.stderr


def test_lock_refuses_what_changes_pressure_until_unlock(sim):
    assert stackpress(sim.port, "lock").returncode == 0
    r = stackpress(sim.port, "hold", "30")
    assert r.returncode == 4 and "locked" in r.stderr and "unlock" in r.stderr, r.stderr
    r = stackpress(sim.port, "release")
    assert r.returncode == 4 and "locked" in r.stderr
    # the refusal names what was typed: the firmware's "'set' changes pressure" is not true
    # of the telemetry period, and 'repl' is not what a person flashing typed
    r = stackpress(sim.port, "config", "telemetry_period_ms", "500")
    assert r.returncode == 4 and "'stackpress config telemetry_period_ms' waits until 'stackpress unlock'" in r.stderr
    assert "'set'" not in r.stderr and "changes pressure" not in r.stderr, r.stderr
    r = stackpress(sim.port, "flash")
    assert r.returncode == 4 and "'stackpress flash' waits until 'stackpress unlock'" in r.stderr, r.stderr
    assert _status(sim.port)["setpoint_mpa"] == 40.0 and _status(sim.port)["locked"] is True
    assert stackpress(sim.port, "unlock").returncode == 0
    assert _status(sim.port)["locked"] is False


def test_log_on_an_existing_file_resumes_it_without_a_hole_or_a_duplicate(tmp_path):
    # A paced fixture: at --speed max a loaded machine's second between two loggers is
    # more simulated time than the fixture's history holds (720 records), and the
    # honest "# lost" line this test would then see is another test's business.
    paced = RunningSim("--speed", "50", "--seed", "2")
    try:
        out = tmp_path / "run.csv"
        for _ in range(2):
            r = stackpress(paced.port, "log", "--out", str(out), "--duration", "2")
            assert r.returncode == 0, r.stderr
            time.sleep(0.5)  # records the logger misses meanwhile come back by replay
    finally:
        paced.stop()
    text = out.read_text()
    assert "# resumed" in text and "# lost" not in text
    keys = [
        tuple(map(int, line.split(",")[:2]))
        for line in text.splitlines()
        if line and not line.startswith("#") and not line.startswith("boot,")
    ]
    assert len(keys) > 50 and len(set(keys)) == len(keys)
    seqs = [s for _, s in keys]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_no_port_is_exit_code_3_with_a_hint(tmp_path):
    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path))  # no fixture attached (the module's sim is)
    r = subprocess.run([str(BIN / "stackpress"), "status"], capture_output=True, text=True, env=env)
    assert r.returncode == 3 and "--port" in r.stderr


def test_log_writes_metadata_header_and_every_record(sim, tmp_path):
    out = tmp_path / "run.csv"
    r = stackpress(sim.port, "log", "--out", str(out), "--duration", "2")
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    meta = [line for line in lines if line.startswith("#")]
    assert any(line.startswith("# firmware_version: ") for line in meta)
    assert any(line.startswith("# cell_area_mm2: 78.54") for line in meta)
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) > 50
    for k in ("seq", "device_ms", "pressure_mpa", "setpoint_mpa", "force_n", "position_um", "state"):
        assert k in rows[0], k
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost


def test_monitor_runs_headless(sim):
    r = stackpress(sim.port, "monitor", "--duration", "2.5")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "pressure_mpa=" in line]
    assert len(lines) >= 2 and "state=hold" in lines[-1]
    assert "force_ch2_n=" in lines[-1] and "uniformity_pct=" in lines[-1]  # the reference build's three


def test_monitor_keys_change_the_setpoint_only_when_confirmed(sim):
    def monitor(keys):
        return subprocess.run(
            [str(BIN / "stackpress"), "--port", sim.port, "monitor", "--duration", "3"],
            input=keys,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "60").returncode == 0
    r = monitor("s35\nn")  # asked, then not confirmed: nothing sent
    assert r.returncode == 0, r.stderr
    assert "hold 35.000 MPa? y to confirm" in r.stdout and "setpoint change cancelled" in r.stdout, r.stdout
    assert _status(sim.port)["setpoint_mpa"] == 40.0
    r = monitor("s35\ny")
    assert "event: hold 35.000 MPa: ramp" in r.stdout, r.stdout
    assert _status(sim.port)["setpoint_mpa"] == 35.0
    r = monitor("s99\ny")  # out of range: the fixture's refusal is shown, the setpoint stays
    assert "hold refused:" in r.stdout and "MPa" in r.stdout, r.stdout
    r = monitor("a")
    assert "event: ack: cleared nothing" in r.stdout, r.stdout
    assert stackpress(sim.port, "hold", "40", "--wait", "--timeout", "60").returncode == 0


def test_gap_jog_idle_tare_and_ack_by_hand(tmp_path):
    s = RunningSim("--speed", "20", "--seed", "5")
    try:
        r = stackpress(s.port, "tare")  # unloaded, but nothing shows it yet
        assert r.returncode == 4 and "'stackpress release' first" in r.stderr, r.stderr
        assert stackpress(s.port, "release").returncode == 0  # backs the plunger off 50 um
        deadline = time.monotonic() + 60
        while _status(s.port)["state"] != "idle" and time.monotonic() < deadline:
            time.sleep(0.2)
        r = stackpress(s.port, "tare")
        assert r.returncode == 0, r.stderr
        st = _status(s.port)
        assert abs(st["force_n"]) < 1.0 and abs(st["calibration"]["tare_temperature_c"] - 25.0) < 0.5
        assert stackpress(s.port, "gap").returncode == 0 and _status(s.port)["state"] == "gap"
        pos = st["position_um"]  # -50: the release backed off
        r = stackpress(s.port, "jog", "--", "25")
        assert r.returncode == 0 and "moving +25.0000 µm" in r.stdout, r.stdout + r.stderr
        time.sleep(1)
        assert abs(_status(s.port)["position_um"] - pos - 25.0) < 0.01
        r = stackpress(s.port, "jog", "200")
        assert r.returncode == 4 and "allowed -100 to 100 um" in r.stderr
        assert stackpress(s.port, "idle").returncode == 0 and _status(s.port)["state"] == "idle"
        r = stackpress(s.port, "hold", "20")
        assert r.returncode == 0
        r = stackpress(s.port, "tare")
        assert r.returncode == 4 and "unloaded" in r.stderr  # never zeroed under load
        r = stackpress(s.port, "ack")
        assert r.returncode == 0 and _status(s.port)["alarms"] == []
    finally:
        s.stop()


def _tagged(tag):
    """PIDs of the processes whose environment carries `tag`: this test's demo and what it
    started (a child inherits the environment), and nobody else's."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if tag.encode() in f.read():
                        found.append(int(d))
            except OSError:  # gone meanwhile, or not ours to read
                pass
    return found


def test_demo_starts_a_fixture_holds_and_shows_it_then_leaves_nothing_running():
    tag = "STACKPRESS_TEST_DEMO=%d" % os.getpid()
    r = subprocess.run(
        [str(BIN / "stackpress"), "demo", "--speed", "50", "--duration", "8"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, STACKPRESS_TEST_DEMO=str(os.getpid())),
    )
    assert r.returncode == 0, r.stderr
    assert "holding 40.0 MPa" in r.stderr
    last = dict(kv.split("=", 1) for kv in r.stdout.strip().splitlines()[-1].split()[1:])
    assert last["state"] == "hold" and abs(float(last["pressure_mpa"]) - 40.0) < 0.4, last
    assert _tagged(tag) == [], "the demo left its own processes running"


def test_one_grammar_port_after_the_command_sentences_or_json_and_release_wait():
    sim = RunningSim("--speed", "max", "--seed", "8")

    def run(*args):
        return subprocess.run([str(BIN / "stackpress"), *args], capture_output=True, text=True, timeout=300)

    try:
        r = run("status", "--port", sim.port, "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["state"] == "idle", r.stderr
        r = run("hold", "10", "--wait", "--port", sim.port)
        # stderr is not a terminal here: no progress line, no carriage returns
        last = r.stdout.splitlines()[-1]
        assert r.returncode == 0 and last.startswith("holding ") and r.stderr == "", r
        assert abs(float(last.split()[1]) - 10.0) <= 0.1, last  # within 1 % of the setpoint
        r = run("lock", "--port", sim.port)
        assert r.returncode == 0 and r.stdout.startswith("locked: ") and "stackpress unlock" in r.stdout, r
        r = run("unlock", "--json", "--port", sim.port)
        assert r.returncode == 0 and json.loads(r.stdout) == {"locked": False}, r
        r = run("release", "--wait", "--port", sim.port)
        assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("released: idle"), r
        assert _status(sim.port)["state"] == "idle"
        r = run("gap", "--port", sim.port, "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["state"] == "gap", r
    finally:
        sim.stop()


def test_without_a_port_the_one_fixture_attached_is_used_and_several_are_named(tmp_path):
    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path / "run"))  # only this test's sims

    def run(*args):
        return subprocess.run([str(BIN / "stackpress"), *args], capture_output=True, text=True, timeout=120, env=env)

    r = run("status")
    assert r.returncode == 3 and "no fixture found" in r.stderr, r.stderr
    a = RunningSim("--speed", "max", "--seed", "9", env=env)
    b = None
    try:
        r = run("status", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["state"] == "idle", r.stderr
        b = RunningSim("--speed", "max", "--seed", "10", env=env)
        r = run("hold", "10")
        assert r.returncode == 3 and "2 fixtures found" in r.stderr and a.port in r.stderr and b.port in r.stderr
        assert _status(a.port)["setpoint_mpa"] == 0.0 and _status(b.port)["setpoint_mpa"] == 0.0  # nothing moved
        assert run("profile", "check", str(ROOT / "host" / "profiles" / "form-then-cycle.toml")).returncode == 0
    finally:
        a.stop()
        if b:
            b.stop()


def test_monitor_waits_for_a_fixture_that_was_unplugged(tmp_path):
    sc = scenario_file(tmp_path, [{"at_s": 20, "board": "unplug", "for_s": 20.0}])
    sim = RunningSim("--speed", "10", "--seed", "11", "--scenario", str(sc))
    mon = subprocess.Popen(
        [str(BIN / "stackpress"), "--port", sim.port, "monitor"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        for line in mon.stdout:  # plain lines (not a terminal), as they come
            seen.append(line)
            back = any(x.startswith("fixture back") for x in seen)
            if back and "pressure_mpa=" in line:
                break
        mon.stdin.write("q")  # quits at its next record
        mon.stdin.close()
        mon.wait(120)
    finally:
        if mon.poll() is None:
            mon.kill()
        sim.stop()
    text = "".join(seen)
    assert "fixture gone" in text and "waiting for it on %s" % sim.port in text, text[-2000:]
    after = text.split("fixture back", 1)[1]
    assert "pressure_mpa=" in after and mon.returncode == 0, (mon.returncode, mon.stderr.read()[-2000:])


def test_every_command_answers_json_for_scripts():
    """--json on every command but demo (a show for people): one JSON object, or JSON lines
    for monitor, and sim's port as JSON."""
    import argparse

    from stackpress.cli_grammar import build_parser

    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    without = [n for n, p in sub.choices.items() if "--json" not in [o for a in p._actions for o in a.option_strings]]
    assert without == ["demo"], without
    p = subprocess.Popen(
        [str(BIN / "stackpress"), "sim", "--speed", "20", "--seed", "5", "--json"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = json.loads(p.stdout.readline())["port"]
        mon = subprocess.Popen(
            [str(BIN / "stackpress"), "--port", port, "monitor", "--json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in mon.stdout:  # JSON lines as they come, until a record
            if json.loads(line)["t"] == "tel":
                assert "pressure_mpa" in json.loads(line)
                break
        mon.stdin.write("q")  # quits at its next record
        mon.stdin.close()
        assert mon.wait(120) == 0
        r = stackpress(port, "repl", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["port"] == port, r.stdout + r.stderr
        r = stackpress(port, "reset", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["protocol_version"] >= 4, r.stdout + r.stderr
    finally:
        p.terminate()
        p.wait(timeout=30)
