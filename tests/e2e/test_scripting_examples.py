"""The scripting examples in docs/examples/ (README, "From Python"), run as a person runs
them: one drives the virtual fixture while `stackpress log` writes it down, the other reads
that log into pandas. What they print is checked against the fixture and the log."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, read_rows
from simfixture import RunningSim, start_logger, stop_logger

import stackpress

EXAMPLES = ROOT / "docs" / "examples"


def _run(script, *args, cwd, env=None):
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_the_examples_drive_a_fixture_and_read_its_log(tmp_path):
    sim = RunningSim("--speed", "20", "--seed", "31")
    log = tmp_path / "run.csv"
    logger = start_logger(sim.port, log)
    try:
        # the logger owns the port first, as a lab's `serve` does, so it hears the script's commands
        while not (log.exists() and log.read_text().count("\n1,") >= 2):
            assert logger.poll() is None, logger.stderr.read()
            time.sleep(0.1)
        env = dict(os.environ, STACKPRESS_PORT=sim.port)
        out = _run("drive_a_fixture.py", "", "22.5", cwd=tmp_path, env=env)  # no port: $STACKPRESS_PORT
        assert "idle at" in out and "ramp_rate_mpa_s = 1 MPa/s" in out, out
        held = re.search(r"holding ([0-9.]+) MPa after ([0-9.]+) s of the fixture's time", out)
        assert held and abs(float(held.group(1)) - 22.5) < 0.01, out
        with stackpress.open_fixture(sim.port) as fx:
            st = fx.command("status")
        assert st["state"] == "hold" and st["setpoint_mpa"] == 22.5
    finally:
        stop_logger(logger)
        sim.stop()
    _, rows, _, notes = read_rows(log)
    audit = [n for n in notes if n.startswith("audit ") and '"cmd":"hold"' in n]
    assert audit and "drive_a_fixture.py" in audit[0], notes  # the log says which program did it

    out = _run("read_a_log.py", str(log), cwd=tmp_path)
    assert "%d records" % len(rows) in out, out
    assert "22.5" in out.split("rms_kpa", 1)[1]  # the hold error table has the setpoint held
    png = (tmp_path / "read_a_log.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 10000
    assert Path(EXAMPLES / "read_a_log.py").read_text().count("# %%") >= 3  # cells for a notebook
