"""Host side of the frame format in firmware/stackpress/PROTOCOL.md.

One frame per line: compact JSON, '*', CRC-32 (zlib's, the same as MicroPython's
binascii.crc32) as 8 lower-case hex digits, newline.
"""
import json
import zlib


class FrameError(ValueError):
    pass


def frame(obj):
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return payload + b"*%08x\n" % zlib.crc32(payload)


def parse(line):
    """Decode one line (bytes, without newline). Raises FrameError if it is no frame."""
    line = line.rstrip(b"\r")
    star = line.rfind(b"*")
    if star < 0 or len(line) - star != 9:
        raise FrameError("no CRC trailer")
    payload, crc = line[:star], line[star + 1:]
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
