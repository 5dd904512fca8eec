"""A running test is served, not locked: while a logger has the fixture's port, every other
stackpress command works through it, each record is written once at the time it was
measured, and what people did is in the log (issue: "A running test is served")."""

import csv
import datetime
import json
import os
import signal
import subprocess
import time

from simfixture import BIN, RunningSim, stackpress


def _logger(port, out, *extra):
    return subprocess.Popen(
        [str(BIN / "stackpress"), "--port", port, "log", "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_rows(out, n, timeout_s=60):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if out.exists() and len(_rows(out)) >= n:
            return
        time.sleep(0.1)
    raise AssertionError("the logger wrote fewer than %d rows" % n)


def _rows(out):
    lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def _notes(out):
    return [line[2:] for line in out.read_text().splitlines() if line.startswith("# ")]


def _caught_up(port, out, timeout_s=60):
    """The log holds every record the fixture has said in its current boot (a reset empties
    the fixture's history: what no host has read by then is gone)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        st = json.loads(stackpress(port, "status", "--json").stdout)
        rows = [(int(r["boot"]), int(r["seq"])) for r in _rows(out)]
        if (st["boot"], st["seq"] - 2) in rows and (st["boot"], 1) in rows:
            return
        time.sleep(0.2)
    raise AssertionError(
        "the log did not catch up with boot %s seq %s: it ends at %s" % (st["boot"], st["seq"], rows[-3:])
    )


def _device_s(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["uptime_s"]


def test_while_a_logger_runs_every_command_works_through_it(tmp_path):
    sim = RunningSim("--speed", "10", "--seed", "21")
    out = tmp_path / "run.csv"
    lg = _logger(sim.port, out, "--note", "cell 7, NMC811 | LPSCl | Li-In", "--meta", "operator=alice")
    try:
        _wait_rows(out, 3)
        r = stackpress(sim.port, "status", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["state"] in ("idle", "ramp", "hold"), r.stderr
        r = stackpress(sim.port, "hold", "30", "--wait", "--timeout", "120")
        assert r.returncode == 0 and "holding" in r.stdout, r.stderr
        r = stackpress(sim.port, "ack")
        assert r.returncode == 0, r.stderr
        r = stackpress(sim.port, "profile", "status")
        assert r.returncode == 0 and "no profile running" in r.stdout, r.stderr
        monitors = [
            subprocess.Popen(
                [str(BIN / "stackpress"), "--port", sim.port, "monitor", "--duration", "3"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for m in monitors:
            o, e = m.communicate(timeout=60)
            assert m.returncode == 0, e
            assert sum("pressure_mpa=" in line for line in o.splitlines()) >= 2, o
        r = stackpress(sim.port, "note", "electrolyte checked")
        assert r.returncode == 0, r.stderr
        _wait_rows(out, len(_rows(out)) + 3)
    finally:
        lg.send_signal(signal.SIGTERM)
        _, err = lg.communicate(timeout=60)
        sim.stop()
    assert lg.returncode == 0, err
    rows = _rows(out)
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "every record once, in order"
    notes = _notes(out)
    assert "operator: alice" in notes and any(n.startswith("note ") and "cell 7" in n for n in notes), notes
    audit = [json.loads(n.split(": ", 1)[1]) for n in notes if n.startswith("audit ")]
    holds = [a for a in audit if a["cmd"] == "hold"]
    assert holds and holds[0]["args"] == {"mpa": 30.0} and holds[0]["ok"] and holds[0]["program"] == "stackpress hold"
    assert holds[0]["user"] and holds[0]["pid"] > 0, holds
    assert any(a["cmd"] == "ack" for a in audit)
    assert any(n.startswith("note ") and "electrolyte checked" in n for n in notes), notes
    assert "# lost" not in out.read_text()


def test_records_replayed_after_an_outage_carry_the_time_they_were_measured(tmp_path):
    sim = RunningSim("--speed", "1", "--seed", "22")
    out = tmp_path / "run.csv"
    try:
        lg = _logger(sim.port, out)
        _wait_rows(out, 5)
        lg.send_signal(signal.SIGKILL)  # mid-write or not
        lg.wait()
        t0 = _device_s(sim.port)
        while _device_s(sim.port) < t0 + 20:  # a 20 s outage of the fixture's time
            time.sleep(0.5)
        lg = _logger(sim.port, out)
        t1 = _device_s(sim.port)
        while _device_s(sim.port) < t1 + 5:
            time.sleep(0.5)
        lg.send_signal(signal.SIGTERM)
        lg.communicate(timeout=60)
    finally:
        sim.stop()
    rows = _rows(out)
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    replayed = [r for r in rows if r["time_source"] == "replayed"]
    assert len(replayed) >= 15, [r["time_source"] for r in rows]
    # At real time, a record's time less its device time is the boot's start: the same for all.
    starts = [
        datetime.datetime.fromisoformat(r["host_time_utc"]).timestamp() - int(r["device_ms"]) / 1000 for r in rows
    ]
    spread = max(starts) - min(starts)
    assert spread < 0.5, spread


def test_a_fresh_log_reports_nothing_lost(tmp_path):
    sim = RunningSim("--speed", "max", "--seed", "23")
    out = tmp_path / "run.csv"
    try:
        time.sleep(1)  # minutes of the fixture's time: its history is full
        r = stackpress(sim.port, "log", "--out", str(out), "--duration", "2")
    finally:
        sim.stop()
    assert r.returncode == 0 and "(0 lost" in r.stderr, r.stderr
    assert "# lost" not in out.read_text() and "# log starts at boot 1 seq" in out.read_text()


def test_flash_repl_and_reset_borrow_the_port_from_the_logger(tmp_path):
    sim = RunningSim("--speed", "20", "--seed", "24")
    out = tmp_path / "run.csv"
    lg = _logger(sim.port, out)
    try:
        _wait_rows(out, 3)
        assert stackpress(sim.port, "hold", "30", "--wait", "--timeout", "120").returncode == 0
        r = stackpress(sim.port, "flash", timeout=300)
        assert r.returncode == 0, r.stderr
        _caught_up(sim.port, out)
        r = stackpress(sim.port, "repl")
        assert r.returncode == 0, r.stderr
        p = subprocess.run(
            [str(BIN / "mpremote"), "connect", sim.port, "resume", "fs", "ls"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0 and "main.py" in p.stdout, p.stdout + p.stderr  # the port is free for it
        r = stackpress(sim.port, "status")
        assert r.returncode == 3 and "REPL" in r.stderr and "stackpress reset" in r.stderr, r.stderr
        r = stackpress(sim.port, "reset")
        assert r.returncode == 0, r.stderr
        st = json.loads(stackpress(sim.port, "status", "--json").stdout)
        assert st["setpoint_mpa"] == 30.0, st
        _wait_rows(out, len(_rows(out)) + 5)
    finally:
        lg.send_signal(signal.SIGTERM)
        _, err = lg.communicate(timeout=60)
        print(err)
        sim.stop()
    assert lg.returncode == 0, err
    text = out.read_text()
    assert "# lost" not in text, [n for n in _notes(out) if "lost" in n]
    cmds = [json.loads(n.split(": ", 1)[1])["cmd"] for n in _notes(out) if n.startswith("audit ")]
    assert "handover" in cmds and "repl" in cmds and "reset" in cmds, cmds
    keys = [(r["boot_id"], int(r["seq"])) for r in _rows(out)]
    assert len(keys) == len(set(keys))


def test_serve_owns_several_fixtures_survives_sigkill_and_shares_with_a_group(tmp_path):
    import grp
    import stat

    from stackpress.owner import socket_path

    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path / "runtime"))
    a = RunningSim("--speed", "10", "--seed", "25", env=env)
    b = RunningSim("--speed", "10", "--seed", "26", env=env)
    out = tmp_path / "logs"
    group = grp.getgrgid(os.getgid()).gr_name

    def serve():
        return subprocess.Popen(
            [str(BIN / "stackpress"), "serve", "--out", str(out) + "/", "--group", group],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def cli(port, *args):
        return subprocess.run(
            [str(BIN / "stackpress"), "--port", port, *args], capture_output=True, text=True, env=env, timeout=120
        )

    sv = serve()
    try:
        end = time.monotonic() + 60
        while len(list(out.glob("*.csv"))) < 2 and time.monotonic() < end:
            time.sleep(0.2)
        for s in (a, b):
            r = cli(s.port, "hold", "25", "--wait", "--timeout", "120")
            assert r.returncode == 0, r.stderr
        sock = tmp_path / "runtime" / "owners" / os.path.basename(socket_path(a.port))
        st = os.stat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == grp.getgrnam(group).gr_gid
        sv.send_signal(signal.SIGKILL)  # no goodbye: sockets left behind, files mid-write
        sv.wait()
        r = cli(a.port, "status", "--json")  # nobody owns it now: this command does, for a moment
        assert r.returncode == 0, r.stderr
        sv = serve()
        sock_b = tmp_path / "runtime" / "owners" / os.path.basename(socket_path(b.port))
        end = time.monotonic() + 60
        while not (sock.exists() and sock_b.exists()) and time.monotonic() < end:  # both found and owned again
            time.sleep(0.2)
        r = cli(b.port, "status", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["setpoint_mpa"] == 25.0, r.stderr
    finally:
        sv.send_signal(signal.SIGTERM)
        _, err = sv.communicate(timeout=60)
        a.stop()
        b.stop()
    assert sv.returncode == 0, err
    files = sorted(out.glob("*.csv"))
    assert len(files) == 2, files
    for f in files:
        rows = _rows(f)
        keys = [(r["boot_id"], int(r["seq"])) for r in rows]
        seqs = [s for _, s in keys]
        assert len(keys) == len(set(keys)) and seqs == list(range(seqs[0], seqs[0] + len(seqs))), f
        assert "# lost" not in f.read_text()
        assert any(n.startswith("audit ") and '"cmd":"hold"' in n for n in _notes(f))


def test_the_report_says_what_people_did(tmp_path):
    from stackpress.report import report

    sim = RunningSim("--speed", "20", "--seed", "27")
    out = tmp_path / "run.csv"
    lg = _logger(sim.port, out, "--note", "started by the test")
    try:
        _wait_rows(out, 3)
        assert stackpress(sim.port, "hold", "20", "--wait", "--timeout", "120").returncode == 0
        assert stackpress(sim.port, "config", "ramp_rate_mpa_s", "0.5").returncode == 0
        _wait_rows(out, len(_rows(out)) + 3)
    finally:
        lg.send_signal(signal.SIGTERM)
        lg.communicate(timeout=60)
        sim.stop()
    assert report(out, tmp_path / "rep", as_json=True) == 0
    s = json.loads((tmp_path / "rep" / "summary.json").read_text())
    cmds = [(a["kind"], a.get("cmd")) for a in s["audit"]]
    assert ("audit", "hold") in cmds and ("audit", "set") in cmds and ("note", None) in cmds, cmds
    text = (tmp_path / "rep" / "summary.txt").read_text()
    assert "what people did" in text and 'set {"key":"ramp_rate_mpa_s","value":0.5} -> ok' in text, text
