"""A firmware that cannot start never leaves the board at the REPL (firmware/stackpress/safemode.py):
it retries, then answers `status` with the error in a safe mode, and `reset` and `flash` still work."""

import json
import shutil
import subprocess

import pytest
from conftest import ROOT
from simfixture import BIN, RunningSim, stackpress


def _status(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _mpremote(port, code):
    p = subprocess.run(
        [str(BIN / "mpremote"), "connect", port, "resume", "exec", code], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_a_heap_too_small_to_start_gives_the_safe_mode_with_the_error():
    sim = RunningSim("--speed", "max", "--heap", "128k")
    try:
        st = _status(sim.port)
        assert st["safe_mode"] is True and st["state"] == "safe_mode", st
        assert st["alarms"] == ["boot_failed"] and st["failed_starts"] == 3, st
        assert "MemoryError" in st["boot_error"], st
        text = stackpress(sim.port, "status")
        assert "SAFE MODE" in text.stdout and "MemoryError" in text.stdout, text.stdout
        r = stackpress(sim.port, "hold", "10")
        assert r.returncode == 4 and "safe mode" in r.stderr, r.stdout + r.stderr
        # The firmware is replaced through the safe mode; a board this small fails again, the
        # flash says so and puts the previous files back, and the board is not left at its REPL.
        r = stackpress(sim.port, "flash", timeout=300)
        assert r.returncode == 5 and "in safe mode" in r.stderr, r.stdout + r.stderr
        assert _status(sim.port)["safe_mode"] is True
    finally:
        sim.stop()


@pytest.mark.parametrize("heap", ["160k", "168k", "176k", "184k", "192k"])
def test_no_heap_from_160k_leaves_the_board_at_its_repl(heap):
    sim = RunningSim("--speed", "max", "--heap", heap)
    try:
        st = _status(sim.port)
        print(heap, st["state"], st.get("boot_error", "").strip().split("\n")[-1])
        assert st["state"] in ("safe_mode", "idle"), st
    finally:
        sim.stop()


CRASH_AT_START = """
try:
    _n = int(open("crash_starts").read())
except OSError:
    _n = 0
if _n > 0:
    _f = open("crash_starts", "w")
    _f.write(str(_n - 1))
    _f.close()
    raise RuntimeError("test: crash at start")
"""


def test_a_firmware_that_fails_to_start_is_retried_then_kept_in_safe_mode_until_reset(tmp_path):
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw)
    clock = fw / "stackpress" / "clock.py"
    clock.write_text(clock.read_text() + CRASH_AT_START)
    sim = RunningSim("--speed", "max", "--seed", "3")
    try:
        r = stackpress(sim.port, "flash", "--firmware", str(fw), timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert stackpress(sim.port, "repl").returncode == 0
        _mpremote(sim.port, "f = open('crash_starts', 'w'); f.write('5'); f.close()")
        # Five starts would fail: three are tried, then the safe mode keeps the error.
        r = stackpress(sim.port, "reset")
        assert r.returncode == 3 and "in safe mode" in r.stderr, r.stdout + r.stderr
        st = _status(sim.port)
        assert st["safe_mode"] is True and st["failed_starts"] == 3, st
        assert "RuntimeError: test: crash at start" in st["boot_error"], st
        # A reset tries afresh: two more failed starts, then the firmware runs.
        r = stackpress(sim.port, "reset")
        assert r.returncode == 0, r.stdout + r.stderr
        st = _status(sim.port)
        assert "safe_mode" not in st and st["state"] == "idle", st
        # Once it has run a minute (device time), the failed starts are forgotten.
        while st["uptime_s"] < 62:
            st = _status(sim.port)
        assert stackpress(sim.port, "repl").returncode == 0
        files = _mpremote(sim.port, "import os; print(sorted(os.listdir()))")
        assert "bootfail.json" not in files and "'crash_starts'" in files, files
    finally:
        sim.stop()


CRASH_IN_THE_LOOP = """
try:
    open("crash_loop").close()
except OSError:
    pass
else:
    _update = Clock.update
    _passes = [0]

    def _crashing(self):
        _passes[0] += 1
        if _passes[0] > 300:
            raise RuntimeError("test: crash in the loop")
        return _update(self)

    Clock.update = _crashing
"""


def test_a_firmware_that_crashes_while_holding_stops_the_motor_and_keeps_the_force(tmp_path):
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw)
    clock = fw / "stackpress" / "clock.py"
    clock.write_text(clock.read_text() + CRASH_IN_THE_LOOP)
    truth = tmp_path / "truth.csv"
    sim = RunningSim("--speed", "max", "--seed", "6", "--truth", str(truth), "--truth-every", "1")
    try:
        r = stackpress(sim.port, "flash", "--firmware", str(fw), timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert stackpress(sim.port, "hold", "30", "--wait", "--timeout", "120").returncode == 0
        assert stackpress(sim.port, "repl").returncode == 0
        _mpremote(sim.port, "open('crash_loop', 'w').close()")
        # Each start resumes the hold and crashes 300 passes later (inside the minute after
        # which a start counts as good): three times, then the safe mode, with the motor
        # stopped where the last crash left it.
        assert stackpress(sim.port, "reset").returncode in (0, 3)
        st = _status(sim.port)
        while not st.get("safe_mode"):
            st = _status(sim.port)
        assert st["failed_starts"] == 3 and "test: crash in the loop" in st["boot_error"], st
        # The model's clock stops with the board's requests: read the truth written so far.
        rows = [line.split(",") for line in truth.read_text().splitlines()[1:]]
        t_safe = float(rows[-1][0])
    finally:
        sim.stop()
    p = [float(x[2]) for x in rows]
    at = next(i for i, v in enumerate(p) if v >= 30 * 0.999)  # the hold settled
    held = p[at:]
    print(
        "true pressure %.3f-%.3f MPa from %.0f s (held) to %.0f s (safe mode)"
        % (min(held), max(held), float(rows[at][0]), t_safe)
    )
    assert held and min(held) >= 30 * 0.99 and max(held) <= 30 * 1.01, (min(held), max(held), t_safe)
