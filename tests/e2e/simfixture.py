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
