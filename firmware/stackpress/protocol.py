"""Framing of the serial protocol (spec: PROTOCOL.md beside this package).

A frame is one line: a JSON object, '*', its CRC-32 as 8 lower-case hex digits,
'\\n'. The CRC is binascii's (C code on every port), so checking it costs little.
"""
import binascii
import json

MAX_LINE = 512


def crc32(b):
    return binascii.crc32(b) & 0xFFFFFFFF


def frame(payload):
    """payload: a JSON text (str). Returns the bytes to send."""
    b = payload.encode()
    return b + ("*%08x\n" % crc32(b)).encode()


class FrameError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def parse(line):
    """Check and decode one received line (bytes, no newline) into a command dict."""
    star = line.rfind(b"*")
    if star < 0 or len(line) - star != 9:
        raise FrameError("frame", "no '*' + 8 hex CRC-32 at the end of the line")
    payload = line[:star]
    try:
        want = int(line[star + 1:], 16)
    except ValueError:
        raise FrameError("frame", "CRC is not 8 hex digits")
    if crc32(payload) != want:
        raise FrameError("crc", "CRC mismatch: line garbled in transit")
    try:
        obj = json.loads(payload)
    except ValueError:
        raise FrameError("json", "payload is not valid JSON")
    if not isinstance(obj, dict):
        raise FrameError("json", "payload must be a JSON object")
    cid = obj.get("id")
    if isinstance(cid, bool) or not isinstance(cid, int):
        raise FrameError("id", "'id' must be an integer")
    if not isinstance(obj.get("cmd"), str):
        raise FrameError("cmd", "'cmd' must be a string")
    return obj


class LineReader:
    """Collects bytes into lines in a fixed buffer; control bytes are dropped.

    Ctrl-C, Ctrl-D and the raw-REPL bytes a tool may send never reach the parser,
    and an overlong line is discarded up to its newline and reported once.
    """

    def __init__(self, size=MAX_LINE):
        self._buf = bytearray(size)
        self._n = 0
        self._over = False

    def feed(self, c):
        """Feed one byte; returns None, a complete line (bytes), or False if overlong."""
        if c == 10:
            n = self._n
            self._n = 0
            if self._over:
                self._over = False
                return False
            return bytes(self._buf[:n]) if n else None
        if c < 32 or c == 127:
            return None
        if self._n < len(self._buf):
            self._buf[self._n] = c
            self._n += 1
        else:
            self._over = True
        return None


def encode(obj):
    return frame(json.dumps(obj))


def write_frame(out, obj):
    """Write obj as one frame into the outbox `out`, the same bytes as encode(obj), built
    one key and one value at a time in the outbox itself (so the largest allocation is one
    value's text, not the whole reply). Returns False if the frame was dropped."""
    out.begin()
    _write_json(out.add, obj)
    out.add(("*%08x\n" % crc32(out.written())).encode())
    return out.commit()


def _write_json(add, obj):
    if isinstance(obj, dict):
        add(b"{")
        sep = b""
        for k, v in obj.items():
            add(sep)
            sep = b", "
            add(json.dumps(k).encode())
            add(b": ")
            _write_json(add, v)
        add(b"}")
    else:
        add(json.dumps(obj).encode())
