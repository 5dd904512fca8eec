"""`stackpress log` on several fixtures at once, into rotating files and SQLite: every
record of every fixture once, across an unplug that moves a fixture to another port,
a fixture that turns up after the logger started, and a logger killed with SIGKILL."""

import json
import os
import signal
import sqlite3
import subprocess
import time

from conftest import ROOT, read_rows
from simfixture import BIN, RunningSim, stackpress

from stackpress.logfile import segments

STANDARD = ROOT / "hardware" / "scenarios" / "standard.json"


def _scenario(tmp_path, events):
    sc = json.loads(STANDARD.read_text())
    sc["fixture"] = str(ROOT / "hardware" / "fixture.json")
    sc["events"] = events
    path = tmp_path / "unplug_scenario.json"
    path.write_text(json.dumps(sc))
    return str(path)


def _until(ok, proc=None, timeout_s=120):
    """Wait for a condition (an event: a file written, the fixture's clock), not a time."""
    end = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < end, "not reached in %d s" % timeout_s
        assert proc is None or proc.poll() is None, proc.stderr.read() if proc.stderr else "process ended"
        time.sleep(0.1)


def _rows(db_path):
    """Records committed to an SQLite log so far (0 before its table exists)."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        try:
            return db.execute("SELECT count(*) FROM records").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _status(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _contiguous(keys):
    return len(keys) == len(set(keys)) and [s for _, s in keys] == list(range(keys[0][1], keys[0][1] + len(keys)))


def test_log_all_follows_every_fixture_found_across_an_unplug_and_one_that_comes_later(tmp_path):
    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path / "runtime"))
    # Fixture A is unplugged for 10 s of its time at 60 s: its pty goes, a new one comes.
    a = RunningSim(
        "--speed",
        "20",
        "--seed",
        "1",
        "--scenario",
        _scenario(tmp_path, [{"at_s": 60, "board": "unplug", "for_s": 10}]),
        env=env,
    )
    b = RunningSim("--speed", "20", "--seed", "2", "--set", "fixture.adc.rate_sps=80", env=env)
    c = None
    out = tmp_path / "logs"
    try:
        listed = subprocess.run([str(BIN / "stackpress"), "list", "--json"], capture_output=True, text=True, env=env)
        lg = subprocess.Popen(
            [
                str(BIN / "stackpress"),
                "log",
                "--all",
                "--out",
                str(out) + "/",
                "--rotate",
                "8KB",
                "--duration",
                "16",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        _until(lambda: len(list(out.glob("*.csv"))) >= 2, lg)  # the logger is writing both
        c = RunningSim("--speed", "20", "--seed", "3", env=env)  # plugged in while logging
        stdout, stderr = lg.communicate(timeout=60)
    finally:
        for s in (a, b, c):
            if s is not None:
                s.stop()
    assert lg.returncode == 0, stderr
    assert listed.returncode == 0, listed.stderr
    fixtures = json.loads(listed.stdout)["fixtures"]
    assert sorted(f["port"] for f in fixtures) == sorted([a.port, b.port])
    summary = json.loads(stdout)["fixtures"]
    assert len(summary) == 3, stderr
    assert all(s["lost"] == 0 and "error" not in s for s in summary), summary
    assert "back on" in stderr  # fixture A, found again on its new port
    for s in summary:
        files = segments(str(out / ("%s.csv" % s["fixture_id"])))
        meta, rows, events, notes = read_rows(files)
        keys = [(r["boot"], r["seq"]) for r in rows] + [(e["boot"], e["seq"]) for e in events]
        keys.sort()
        assert _contiguous(keys), (s, keys[:5])
        assert keys[0] == (1, 1)  # a fixture's log starts with its first record, from its history
        assert meta["fixture_id"] == s["fixture_id"] and meta["scenario"].startswith(
            ("unplug_scenario.json, seed 1", "standard.json, seed 2", "standard.json, seed 3")
        )
        assert not any(n.startswith("lost") for n in notes)
    big = [s for s in summary if s["rows"] > 200]
    assert big and all(len(segments(str(out / ("%s.csv" % s["fixture_id"])))) >= 3 for s in big)
    ids = {s["fixture_id"] for s in summary}
    assert len(ids) == 3  # three fixtures, three ids, three logs
    assert {f["fixture_id"] for f in fixtures} < ids


def test_a_sqlite_log_killed_and_started_again_holds_every_record_once_and_reports(tmp_path):
    sim = RunningSim("--speed", "20", "--seed", "4")
    out = tmp_path / "run.sqlite"
    try:
        assert stackpress(sim.port, "hold", "30").returncode == 0
        lg = subprocess.Popen(
            [str(BIN / "stackpress"), "--port", sim.port, "log", "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _until(lambda: _rows(out) >= 100, lg)
        lg.send_signal(signal.SIGKILL)
        lg.wait()
        # Records said meanwhile (device time: the fixture's seq) come back by replay.
        seq = _status(sim.port)["seq"]
        _until(lambda: _status(sim.port)["seq"] >= seq + 40)
        r = stackpress(sim.port, "log", "--out", str(out), "--duration", "4", "--json")
        assert r.returncode == 0, r.stderr
    finally:
        sim.stop()
    db = sqlite3.connect(str(out))
    keys = [tuple(k) for k in db.execute("SELECT boot, seq FROM records ORDER BY rowid")]
    notes = [n for (n,) in db.execute("SELECT text FROM notes")]
    assert len(keys) > 150 and _contiguous(keys)
    assert any(n.startswith("resumed") for n in notes) and not any(n.startswith("lost") for n in notes)
    rep = subprocess.run(
        [str(BIN / "stackpress"), "report", str(out), "--json", "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
    )
    assert rep.returncode == 0, rep.stderr
    s = json.loads(rep.stdout)
    assert s["records"] == sum(1 for k in db.execute("SELECT 1 FROM records WHERE event IS NULL"))
    assert s["fixture_id"] and s["scenario"].startswith("standard.json, seed 4") and 30.0 in s["setpoints_mpa"]
    assert (tmp_path / "rep" / "report.png").stat().st_size > 10000
