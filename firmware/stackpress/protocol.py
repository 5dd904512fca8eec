"""Framing of the serial protocol (spec: PROTOCOL.md beside this package).

A frame is one line: a JSON object, '*', its CRC-32 as 8 lower-case hex digits,
'\\n'. The CRC is binascii's (C code on every port), so checking it costs little.
"""

import binascii
import json

# A 24-step profile with realistic numbers is ~600 bytes: a line holds it twice over.
# The reader's buffer is allocated once, so the bound costs 1 KB of heap for good.
MAX_LINE = 1024


def crc32(b):
    return binascii.crc32(b) & 0xFFFFFFFF


def frame(payload):
    """payload: a JSON text (str). Returns the bytes to send."""
    b = payload.encode()
    return b + ("*%08x\n" % crc32(b)).encode()


class FrameError(Exception):
    def __init__(self, code, msg, cid=None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.id = cid  # the command's id, when it could be read: the host matches the refusal


_VALUE_AFTER = b"{[:,"  # a value (or a key) starts the text or follows one of these
_VALUE_END = b'"0l]}'  # what ends a value: a string, a number, a literal, ] or }


def _check_json(p):
    """The JSON grammar where MicroPython's json is lenient ('01', '1.', '[1,]', '1 2'
    are taken there): returns None, or what is wrong. Structure beyond that is json's."""
    n = len(p)
    i = 0
    prev = 123  # as if after '{': the first value may start
    while i < n:
        c = p[i]
        if c in b" \t\r\n":
            i += 1
            continue
        if c == 34 or c == 45 or 48 <= c <= 57 or 97 <= c <= 122 or c == 123 or c == 91:
            if prev not in _VALUE_AFTER:
                return "a value where a ',' or ':' belongs"
            if c == 34:
                i += 1
                while i < n and p[i] != 34:
                    i += 2 if p[i] == 92 else 1
                prev = 34
            elif c == 45 or c <= 57:
                i += c == 45
                if i >= n or not 48 <= p[i] <= 57:
                    return "a number without digits"
                if p[i] == 48 and i + 1 < n and 48 <= p[i + 1] <= 57:
                    return "a number with a leading zero"
                while i + 1 < n and 48 <= p[i + 1] <= 57:
                    i += 1
                if i + 1 < n and p[i + 1] == 46:
                    i += 1
                    if i + 1 >= n or not 48 <= p[i + 1] <= 57:
                        return "a number ending in '.'"
                    while i + 1 < n and 48 <= p[i + 1] <= 57:
                        i += 1
                if i + 1 < n and p[i + 1] in b"eE":
                    i += 2
                    i += i < n and p[i] in b"+-"
                    if i >= n or not 48 <= p[i] <= 57:
                        return "a number with an empty exponent"
                    while i + 1 < n and 48 <= p[i + 1] <= 57:
                        i += 1
                prev = 48
            elif c == 123 or c == 91:
                prev = c
            else:
                while i + 1 < n and 97 <= p[i + 1] <= 122:
                    i += 1
                prev = 108
        else:
            if c == 44 or c == 58 or c == 93 or c == 125:
                if prev not in _VALUE_END and not (c > 90 and prev == c - 2):  # [] and {} are fine
                    return "a '%s' after nothing" % chr(c)
            prev = c
        i += 1
    return None


def _id_of(payload):
    """The "id" of a payload json can't decode, if it is plainly there; else None."""
    payload = bytes(payload)  # a refusal's path: a copy is allowed here
    i = payload.find(b'"id":')
    j = i + 5
    k = j
    while 0 <= i and k < len(payload) and 48 <= payload[k] <= 57:
        k += 1
    return int(payload[j:k]) if 0 <= i and k > j else None


def parse(line):
    """Check and decode one received line (bytes, or a memoryview of the reader's buffer:
    no newline) into a command dict."""
    n = len(line)
    if n < 9 or line[n - 9] != 42:  # '*'
        raise FrameError("frame", "no '*' + 8 hex CRC-32 at the end of the line")
    payload = line[: n - 9]  # of a memoryview: no copy
    try:
        want = int(bytes(line[n - 8 :]), 16)
    except ValueError:
        raise FrameError("frame", "CRC is not 8 hex digits")
    if crc32(payload) != want:
        raise FrameError("crc", "CRC mismatch: line garbled in transit")
    try:
        obj = json.loads(payload)
    except ValueError:
        raise FrameError("json", "payload is not valid JSON", _id_of(payload))
    if not isinstance(obj, dict):
        raise FrameError("json", "payload must be a JSON object")
    cid = obj.get("id")
    if isinstance(cid, bool) or not isinstance(cid, int):
        raise FrameError("id", "'id' must be an integer")
    why = _check_json(payload)
    if why:
        raise FrameError("json", "payload is not valid JSON: " + why, cid)
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
        self._view = memoryview(self._buf)
        self._n = 0
        self._over = False

    def feed(self, c):
        """Feed one byte; returns None, a complete line, or False if overlong. The line is a
        view of the buffer, good until the next byte is fed: a copy of a 1 KB command
        would need a block of heap that a fragmented one may not have."""
        if c == 10:
            n = self._n
            self._n = 0
            if self._over:
                self._over = False
                return False
            return self._view[:n] if n else None
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


class Parts(list):
    """Dicts that write_frame writes as one JSON object. A reply of forty fields in one dict
    needs one block of heap for its table; in parts it needs several small ones, which a
    fragmented heap still has (the status reply: see tests/firmware/status_room.py)."""

    def put(self, k, v, per_part=8):
        """k: v into the last part, or a new one when that holds `per_part`."""
        if not self or len(self[-1]) >= per_part:
            self.append({})
        self[-1][k] = v


def _write_json(add, obj):
    if isinstance(obj, dict):
        obj = (obj,)
    elif isinstance(obj, (list, tuple)) and not isinstance(obj, Parts):
        # An item at a time: a profile's 24 steps in one text took a 464 B block.
        add(b"[")
        sep = b""
        for v in obj:
            add(sep)
            sep = b", "
            _write_json(add, v)
        add(b"]")
        return
    elif not isinstance(obj, Parts):
        add(json.dumps(obj).encode())
        return
    add(b"{")
    sep = b""
    for part in obj:
        for k, v in part.items():
            add(sep)
            sep = b", "
            add(json.dumps(k).encode())
            add(b": ")
            _write_json(add, v)
    add(b"}")
