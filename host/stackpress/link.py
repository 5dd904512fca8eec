"""The serial link to a fixture: commands with replies, and the record stream.

Every command carries an id and gets exactly one reply; telemetry and events that
arrive while a reply is awaited are handed to `on_record`, never dropped. A reply
saying the command arrived garbled ("crc") is answered by sending it again.

A Link may be shared by threads (the process that owns a port serves other programs
through it: owner.py): the serial line is used under one lock, a command holds it until
its reply, and every record decoded is also handed to each of `listeners`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import serial

from .firmware import protocol_version
from .protocol import FrameError, ProtocolError, check_record, check_reply, frame, parse

# A fixture's longest line is a few KB; this many bytes without a frame is not a fixture.
MAX_NOISE_BYTES = 65536


# Commands that do the same when done twice: resent when a reply never came.
RESEND_ON_SILENCE = (
    "hello",
    "status",
    "config",
    "hold",
    "gap",
    "idle",
    "release",
    "ack",
    "set",
    "replay",
    "lock",
    "unlock",
)


class LinkError(Exception):
    """The fixture could not be reached or did not answer (exit code 3)."""


class HandedOver(LinkError):
    """The port is lent to another program for now (flashing, the REPL): not a lost fixture."""


class DeviceError(Exception):
    """The fixture answered with an error (exit code 4)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Endpoint:
    """What every way to a fixture shares (a Link, a fixture through its owner): `hello`
    checks the protocol version, and `with` closes it."""

    def command(self, cmd: str, retries: int = 2, **args: Any) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def hello(self) -> dict[str, Any]:
        info = self.command("hello")
        if info.get("protocol_version") != protocol_version():
            raise LinkError(
                "fixture speaks protocol %s, this stackpress speaks %s: update one of them"
                % (info.get("protocol_version"), protocol_version())
            )
        return info

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Link(Endpoint):
    def __init__(
        self, port: str, on_record: Callable[[dict[str, Any]], None] | None = None, timeout_s: float = 3.0
    ) -> None:
        if not port:
            raise LinkError(
                "no port given: use --port PATH or set STACKPRESS_PORT "
                "(the virtual fixture prints its port when 'stackpress sim' starts)"
            )
        try:
            self.ser = serial.Serial(port, 115200, timeout=0.05, exclusive=True)
        except serial.SerialException as e:
            text = str(e)
            if "lock" in text.lower() or "busy" in text.lower():
                raise LinkError("port %s is busy: another program has it open" % port) from None
            raise LinkError("can't open %s: %s" % (port, text)) from None
        self.port = port
        self.timeout_s = timeout_s
        self.on_record = on_record
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # each gets every record decoded
        self.io = threading.RLock()
        self._buf = b""
        self._id = int(time.time() * 1000) % 100000
        self.bad_frames = 0
        self.noise: list[bytes] = []
        self._noise_bytes = 0  # received since the last good frame
        self.ser.reset_input_buffer()

    def close(self) -> None:
        self.ser.close()

    def _lines(self, deadline: float) -> Iterator[bytes]:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                yield line
                continue
            if len(self._buf) > MAX_NOISE_BYTES:  # a device that never ends a line
                self._noise(self._buf)
                self._buf = b""
            if time.monotonic() >= deadline:
                return
            try:
                chunk = self.ser.read(max(1, self.ser.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkError("lost the fixture on %s: %s" % (self.port, e)) from None
            except (TypeError, AttributeError):
                if self.ser.is_open and self.ser.fd is not None:
                    raise
                raise LinkError("%s was closed" % self.port) from None  # by another thread: lent out
            if chunk:
                self._buf += chunk

    def _noise(self, line: bytes) -> None:
        self.bad_frames += 1
        self.noise.append(line[:200])
        del self.noise[:-20]
        self._noise_bytes += len(line) + 1
        if self._noise_bytes > MAX_NOISE_BYTES:
            self._noise_bytes = 0
            raise LinkError(
                "%s sends bytes that are not stackpress frames (%d KB without one): it is not a "
                "stackpress fixture running its firmware" % (self.port, MAX_NOISE_BYTES // 1024)
            )

    def _decode(self, line: bytes) -> Any:
        try:
            obj = parse(line)
            if obj.get("t") in ("tel", "evt"):
                check_record(obj)
        except (FrameError, ProtocolError):
            if line.strip():
                self._noise(line)
            return None
        self._noise_bytes = 0
        if obj.get("t") in ("tel", "evt"):
            for listen in self.listeners:
                listen(obj)
        return obj

    def records(self, duration_s: float) -> Iterator[dict[str, Any]]:
        """Yield telemetry and event records for duration_s seconds (None: forever)."""
        end = time.monotonic() + (duration_s if duration_s is not None else 1e12)
        while time.monotonic() < end:
            with self.io:  # in short slices: a command from another thread waits 50 ms at most
                got = [
                    obj
                    for obj in map(self._decode, self._lines(min(end, time.monotonic() + 0.05)))
                    if obj is not None and obj.get("t") in ("tel", "evt")
                ]
            yield from got

    def command(self, cmd: str, retries: int = 2, **args: Any) -> dict[str, Any]:
        """Send a command and return its reply's data. A command whose frame arrived garbled
        (the fixture says so and did nothing) is sent again; one with no reply is sent again
        only if doing it twice is harmless (a `jog` must not move twice)."""
        with self.io:
            return self._command(cmd, retries, args)

    def _command(self, cmd: str, retries: int, args: dict[str, Any]) -> dict[str, Any]:
        for _attempt in range(retries + 1):
            self._id += 1
            cid = self._id
            try:
                self.ser.write(frame(dict(args, id=cid, cmd=cmd)))
            except (serial.SerialException, OSError) as e:
                raise LinkError("lost the fixture on %s: %s" % (self.port, e)) from None
            except (TypeError, AttributeError):
                if self.ser.is_open and self.ser.fd is not None:
                    raise
                raise LinkError("%s was closed" % self.port) from None  # by another thread: lent out
            deadline = time.monotonic() + self.timeout_s
            garbled = False
            for line in self._lines(deadline):
                obj = self._decode(line)
                if obj is None:
                    continue
                if obj.get("t") == "rep":
                    if obj.get("id") == cid:
                        if obj.get("ok"):
                            data = obj.get("data") or {}
                            try:
                                check_reply(cmd, data)
                            except ProtocolError as e:
                                raise LinkError("%s is not a stackpress fixture: %s" % (self.port, e)) from None
                            return data
                        raise DeviceError(str(obj.get("err")), str(obj.get("msg")))
                    if obj.get("id") is None and obj.get("err") in ("crc", "frame", "json"):
                        garbled = True
                        break  # our frame arrived garbled: send it again
                elif self.on_record is not None:
                    self.on_record(obj)
            if not garbled and cmd not in RESEND_ON_SILENCE:
                break
        raise LinkError(
            "no reply from %s to '%s': is it a stackpress fixture running its firmware? "
            "(a board at its REPL does not answer; 'stackpress reset' restarts it)" % (self.port, cmd)
        )
