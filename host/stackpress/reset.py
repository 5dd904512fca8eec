"""`stackpress reset`: restart the firmware, whether it is running or at the REPL.

A running firmware is asked over the protocol (it saves its state first). A board
at the REPL (after `stackpress repl`) is reset through the raw REPL: machine.reset()
on a Pico; on the virtual board the REPL's soft reset ends the board process, and
the fixture boots it again.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import serial

from .link import DeviceError, Link, LinkError
from .protocol import safe_mode

RESET_CODE = b"import sys\nif sys.platform == 'rp2':\n import machine\n machine.reset()\nelse:\n raise SystemExit\n"


def _raw_repl_reset(port: str) -> bool:
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


def wait_for_firmware(
    port: str, timeout_s: float = 20, direct: bool = False
) -> tuple[dict[str, Any] | None, str | None]:
    """(hello reply, None) once a firmware answers; (None, why) when none does within
    timeout_s, or as soon as the board shows its MicroPython REPL (the firmware stopped).
    `direct`: open the port here even if a stackpress process owns it (it lent it to us)."""
    from .connect import open_link

    end = time.monotonic() + timeout_s
    why = "no firmware answered within %d s" % timeout_s
    while time.monotonic() < end:
        link = None
        try:
            link = Link(port, timeout_s=1.0) if direct else open_link(port, timeout_s=1.0)
            return link.command("hello", retries=0), None
        except LinkError as e:  # HandedOver too: the port is lent, wait for it
            why = str(e)
            noise = b"\n".join(link.noise) + getattr(link, "_buf", b"") if link is not None else b""
            if b">>>" in noise or b"Traceback" in noise:
                return None, "the board is at its MicroPython REPL: the firmware stopped as it started"
        finally:
            if link is not None:
                link.close()
        time.sleep(0.3)
    return None, why


def reset(port: str, as_json: bool = False) -> int:
    from .connect import open_link

    try:
        with open_link(port, timeout_s=1.5) as link:
            # Through the process that owns the port, if one does: it resets a fixture it
            # parked at the REPL itself, and takes the port back.
            r = link.reset() if link.remote else link.command("reset", retries=0)
            print("resetting; the firmware resumes '%s'" % r.get("resume"), file=sys.stderr)
    except (LinkError, DeviceError) as e:
        try:
            at_repl = _raw_repl_reset(port)
        except (serial.SerialException, OSError):  # not there at all: what the link said
            print("stackpress: %s" % e, file=sys.stderr)
            return 3
        if not at_repl:
            print("stackpress: %s answers neither the protocol nor the raw REPL" % port, file=sys.stderr)
            return 3
    info, why = wait_for_firmware(port)
    if info is None:
        print("stackpress: no firmware answered on %s after the reset: %s" % (port, why), file=sys.stderr)
        return 3
    why = safe_mode(info)
    if why:
        print("stackpress: the fixture on %s is %s" % (port, why), file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps(info))
    else:
        print("firmware %s is running on %s" % (info["firmware_version"], info["board"]))
    return 0
