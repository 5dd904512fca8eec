"""Host side of the frame format in firmware/stackpress/PROTOCOL.md.

One frame per line: compact JSON, '*', CRC-32 (zlib's, the same as MicroPython's
binascii.crc32) as 8 lower-case hex digits, newline.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

from .firmware import protocol_version

FIXTURE_ID = re.compile(r"[0-9a-f]{16}\Z")  # a Pico's flash id as the firmware writes it
BOOT_ID = re.compile(r"[0-9a-f]{8}\Z")
_INT, _NUM, _STR, _LIST, _BOOL = (int,), (int, float), (str,), (list,), (bool,)
# What a fixture's replies must hold (PROTOCOL.md); a device whose reply lacks any of it, or
# gives it another type, is not a stackpress fixture, whatever else it says.
HELLO_FIELDS: dict[str, tuple[type, ...]] = {
    "firmware_version": _STR,
    "protocol_version": _INT,
    "board": _STR,
    "runtime": _STR,
    "fixture_id": _STR,
    "boot": _INT,
    "boot_id": _STR,
    "max_line_bytes": _INT,
}
REPLY_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": HELLO_FIELDS,
    "status": {  # what hello must hold (but max_line_bytes), and
        **{k: v for k, v in HELLO_FIELDS.items() if k != "max_line_bytes"},
        "state": _STR,
        "pressure_mpa": _NUM,
        "setpoint_mpa": _NUM,
        "force_n": _NUM,
        "position_um": _NUM,
        "cell_area_mm2": _NUM,
        "alarms": _LIST,
        "seq": _INT,
        "oldest_seq": _INT,
        "samples": _INT,
        "locked": _BOOL,
    },
    # A firmware that could not start (safemode.py) knows no pressure: its status says why.
    "status in safe mode": {
        **{k: v for k, v in HELLO_FIELDS.items() if k != "max_line_bytes"},
        "state": _STR,
        "alarms": _LIST,
        "boot_error": _STR,
        "failed_starts": _INT,
    },
    "replay": {"boot": _INT, "from_seq": _INT, "to_seq": _INT, "oldest_seq": _INT, "lost": _INT},
    "schema": {"protocol_version": _INT, "telemetry": _LIST},
    "heap": {"heap_alloc_bytes": _INT, "heap_free_bytes": _INT, "heap_largest_free_bytes": _INT},
}
RECORD_FIELDS = {"boot": _INT, "seq": _INT, "device_ms": _INT}


class ProtocolError(ValueError):
    """A device broke the protocol: what it sent is not what a stackpress fixture sends."""


STATE_WORDS = {
    "idle": "idle",
    "ramp": "ramping",
    "hold": "holding",
    "gap": "holding its gap",
    "release": "releasing",
    "fault": "in fault",
}


def state_words(state: str) -> str:
    """A fixture's state as a sentence takes it: "the fixture is holding", not "is hold"."""
    return STATE_WORDS.get(state, "in state %s" % state)


def _check(obj: dict[str, Any], fields: dict[str, Any], what: str) -> None:
    for k, types in fields.items():
        v = obj.get(k)
        if v is None:
            raise ProtocolError("%s has no '%s'" % (what, k))
        if not isinstance(v, types) or (types is not _BOOL and isinstance(v, bool)):
            raise ProtocolError("%s has '%s' = %.40r, not %s" % (what, k, v, "/".join(t.__name__ for t in types)))


def check_reply(cmd: str, data: dict[str, Any]) -> None:
    """Raise ProtocolError if the reply to `cmd` lacks what the protocol promises."""
    if not isinstance(data, dict):
        raise ProtocolError("its reply to '%s' is not an object" % cmd)
    fields = REPLY_FIELDS.get(cmd + " in safe mode" if data.get("safe_mode") is True else cmd)
    if "protocol_version" in (fields or ()) and data.get("protocol_version") != protocol_version():
        return  # another protocol has other fields: Link.hello says which side to update
    if fields:
        _check(data, fields, "its reply to '%s'" % cmd)
        if "fixture_id" in fields and not FIXTURE_ID.match(data["fixture_id"]):
            raise ProtocolError("its fixture_id %r is not 16 hex digits" % data["fixture_id"][:40])
        if "boot_id" in fields and not BOOT_ID.match(data["boot_id"]):
            raise ProtocolError("its boot_id %r is not 8 hex digits" % data["boot_id"][:40])


def safe_mode(reply: dict[str, Any]) -> str | None:
    """Why a fixture runs its safe mode (firmware/stackpress/safemode.py): the last line of
    the error its firmware failed to start with; None when it runs normally."""
    if reply.get("safe_mode") is not True:
        return None
    lines = str(reply.get("boot_error") or "no error kept").strip().splitlines()
    return "in safe mode: the firmware failed to start %s times (%s); the motor is stopped" % (
        reply.get("failed_starts", "several"),
        lines[-1] if lines else "?",
    )


def check_record(obj: dict[str, Any]) -> None:
    """Raise ProtocolError if a telemetry record or event lacks its key fields."""
    _check(obj, RECORD_FIELDS, "a '%s' record" % obj.get("t"))


class FrameError(ValueError):
    pass


class BadValue(ValueError):
    """A value no frame can carry (NaN, infinity): the fixture would only see a broken line."""


def frame(obj: dict[str, Any]) -> bytes:
    try:
        payload = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        bad = [k for k, v in obj.items() if isinstance(v, float) and not math.isfinite(v)]
        raise BadValue(
            "%s: %s must be a finite number; nothing was sent" % (obj.get("cmd"), ", ".join(bad) or "a value")
        ) from None
    return payload + b"*%08x\n" % zlib.crc32(payload)


def parse(line: bytes) -> dict[str, Any]:
    """Decode one line (bytes, without newline). Raises FrameError if it is no frame."""
    line = line.rstrip(b"\r")
    star = line.rfind(b"*")
    if star < 0 or len(line) - star != 9:
        raise FrameError("no CRC trailer")
    payload, crc = line[:star], line[star + 1 :]
    try:
        want = int(crc, 16)
    except ValueError:
        raise FrameError("CRC is not hex") from None
    if zlib.crc32(payload) != want:
        raise FrameError("CRC mismatch")
    try:
        obj = json.loads(payload)
    except ValueError:
        raise FrameError("payload is not JSON") from None
    if not isinstance(obj, dict):
        raise FrameError("payload is not an object")
    return obj
