"""`stackpress reset`: restart the firmware, whether it is running or at the REPL.

A running firmware is asked over the protocol (it saves its state first). A board
at the REPL (after `stackpress repl`) is reset through the raw REPL: machine.reset()
on a Pico; on the virtual board the REPL's soft reset ends the board process, and
the fixture boots it again.
"""
import sys
import time

import serial

from .link import DeviceError, Link, LinkError

RESET_CODE = b"import sys\nif sys.platform == 'rp2':\n import machine\n machine.reset()\nelse:\n raise SystemExit\n"


def _raw_repl_reset(port):
    with serial.Serial(port, 115200, timeout=0.2) as s:
        s.write(b"\r\x03\x03")
        time.sleep(0.2)
        s.reset_input_buffer()
        s.write(b"\x01")
        seen = b""
        end = time.monotonic() + 3
        while b"raw REPL" not in seen and time.monotonic() < end:
            seen += s.read(256)
        if b"raw REPL" not in seen:
            return False
        s.write(RESET_CODE + b"\x04")
        time.sleep(0.5)
        return True


def _wait_for_firmware(port, timeout_s=20):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with Link(port, timeout_s=1.0) as link:
                return link.command("hello", retries=0)
        except LinkError:
            time.sleep(0.3)
    return None


def reset(port):
    try:
        with Link(port, timeout_s=1.5) as link:
            r = link.command("reset", retries=0)
            print("resetting; the firmware resumes '%s'" % r.get("resume"), file=sys.stderr)
    except (LinkError, DeviceError):
        if not _raw_repl_reset(port):
            print("stackpress: %s answers neither the protocol nor the raw REPL" % port, file=sys.stderr)
            return 3
    info = _wait_for_firmware(port)
    if info is None:
        print("stackpress: no firmware answered on %s after the reset" % port, file=sys.stderr)
        return 3
    print("firmware %s is running on %s" % (info["firmware_version"], info["board"]))
    return 0
