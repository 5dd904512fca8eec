"""Starting and stopping `stackpress sim` for end-to-end tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def read_replies(ser, n, timeout_s, keep=lambda rep: True, into=None):
    """Replies read from an open serial port until `n` are kept (or timeout_s passes)."""
    from stackpress.protocol import parse

    got = [] if into is None else into
    buf = b""
    end = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < end:
        buf += ser.read(65536)
        *lines, buf = buf.split(b"\n")
        for line in lines:
            try:
                obj = parse(line)
            except ValueError:
                continue
            if obj.get("t") == "rep" and keep(obj):
                got.append(obj)
    return got


def stackpress(port, *args, timeout=120):
    return subprocess.run(
        [str(BIN / "stackpress"), "--port", port, *args], capture_output=True, text=True, timeout=timeout
    )


class RunningSim:
    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen(
            [str(BIN / "stackpress"), "sim", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        first = self.proc.stdout.readline()
        assert first.startswith("port: "), first + self.proc.stderr.read()
        self.port = first.split(" ", 1)[1].strip()

    def board_pids(self):
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                status = (d / "status").read_text()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(status.split("PPid:")[1].split()[0])
            if ppid == self.proc.pid and b"rom.py" in cmd:
                pids.append(int(d.name))
        return pids

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path("/proc/%d/status" % pid).read_text().count("State:\tZ")


def status_at(port, uptime_s):
    """The fixture's status once its own clock has reached `uptime_s` (device time). Started
    with `--pause-at` at that time (see pauses), the sim waits there for this read."""
    import json

    while True:
        r = stackpress(port, "status", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        st = json.loads(r.stdout)
        if st["uptime_s"] >= uptime_s:
            return st


def pauses(*uptimes_s):
    """`sim` arguments that hold the virtual world at boot until the first host command, and
    at each of these device times until the next one: a test reads the fixture where it
    means to, however slowly the machine runs its commands."""
    return ["--pause-at", ",".join(["0"] + ["%g" % t for t in uptimes_s])]


def scenario_file(tmp_path, events, cycles=None):
    """The standard scenario with these events (and cycles), as a file for `sim --scenario`."""
    import json

    root = Path(__file__).resolve().parents[2]
    sc = json.loads((root / "hardware" / "scenarios" / "standard.json").read_text())
    sc["fixture"] = str(root / "hardware" / "fixture.json")
    if cycles is not None:
        sc["cycling"]["cycles"] = cycles
    sc["events"] = events
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(sc))
    return path


def start_logger(port, out):
    """`stackpress log --out OUT` on the port, as a child process (stop it with SIGINT). It
    starts with SIGINT ignored, as a script's background job does: it must stop anyway."""
    return subprocess.Popen(
        [str(BIN / "stackpress"), "--port", port, "log", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def stop_logger(logger, wall_s=120):
    """Stop a logger from start_logger as a person does (SIGINT); its stderr. One that does
    not stop is killed and fails the test: left running, it would wait for its fixture and
    take a later test's sim, whose pty may get the same number."""
    logger.send_signal(signal.SIGINT)
    try:
        _, err = logger.communicate(timeout=wall_s)
    except subprocess.TimeoutExpired:
        logger.kill()
        _, err = logger.communicate()
        raise AssertionError("the logger did not stop within %d s of SIGINT: %s" % (wall_s, err[-2000:])) from None
    return err


def hold_and_read(sim, mpa, *uptimes_s):
    """Hold `mpa`, then the fixture's status at each of these device times (the sim started
    with pauses(*uptimes_s): each is read within a minute of its time, the device time one
    command takes at full speed; leave that before the next event); the sim is stopped after
    (its truth file is then complete)."""
    try:
        assert stackpress(sim.port, "hold", str(mpa), "--wait", "--timeout", "300").returncode == 0
        got = [status_at(sim.port, t) for t in uptimes_s]
        for t, st in zip(uptimes_s, got):
            assert st["uptime_s"] < t + 60, (t, st["uptime_s"])  # the pause held the clock
        return got
    finally:
        sim.stop()


def truth_at(truth, t_s, column):
    """The model's `column` (a --truth CSV's) at the row nearest time t_s."""
    lines = truth.read_text().splitlines()
    i = lines[0].split(",").index(column)
    rows = [line.split(",") for line in lines[1:]]
    return float(min(rows, key=lambda x: abs(float(x[0]) - t_s))[i])
