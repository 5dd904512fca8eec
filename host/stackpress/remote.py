"""A fixture reached through the stackpress process that owns its port (owner.py).

The same interface as Link — command, hello, records, on_record, listeners, close — so
every stackpress command works the same whether it opened the port or another process
(a logger, `serve`, a monitor) has it: the same output, the same errors, the same exit
codes. Records come only to a client that asks for them (records(), or subscribe=True).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from .link import DeviceError, Endpoint, HandedOver, LinkError
from .owner import program_name


class OwnerGone(LinkError):
    """The stackpress process that owned the port ended: whoever has it now is asked next."""


class RemoteLink(Endpoint):
    def __init__(self, port: str, path: str, timeout_s: float = 3.0, subscribe: bool = False) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.on_record: Callable[[dict[str, Any]], None] | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.noise: list[bytes] = []
        self.bad_frames = 0
        self._buf = b""
        self._subscribed = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise LinkError("can't reach the owner of %s: %s" % (port, e)) from None
        if subscribe:
            self._subscribe()

    def close(self) -> None:
        self.sock.close()

    def _send(self, msg: dict[str, Any]) -> None:
        msg.setdefault("program", program_name())
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise OwnerGone("lost the owner of %s: %s" % (self.port, e)) from None

    def _messages(self, deadline: float) -> Iterator[dict[str, Any]]:
        """Messages from the owner until `deadline` (monotonic); records go to on_record
        and listeners on their way."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("op") == "reply":
                    yield msg
                elif msg.get("t") in ("tel", "evt", "audit", "note"):
                    for listen in self.listeners:
                        listen(msg)
                    if msg["t"] in ("tel", "evt"):
                        yield msg
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(min(left, 0.2))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                raise OwnerGone("lost the owner of %s: %s" % (self.port, e)) from None
            if not chunk:
                raise OwnerGone("the stackpress process that owned %s has ended" % self.port)
            self._buf += chunk

    def _request(self, msg: dict[str, Any], wait_s: float) -> dict[str, Any]:
        self._send(msg)
        for m in self._messages(time.monotonic() + wait_s):
            if m.get("op") == "reply":
                if m.get("ok"):
                    return m.get("data") or {}
                err = m.get("error")
                if err == "device":
                    raise DeviceError(str(m.get("code")), str(m.get("msg")))
                if err == "handed_over":
                    raise HandedOver(str(m.get("msg")))
                raise LinkError(str(m.get("msg")))
            if self.on_record is not None and m.get("t") in ("tel", "evt"):
                self.on_record(m)
        raise LinkError("no reply from the owner of %s to '%s'" % (self.port, msg.get("cmd", msg.get("op"))))

    def _subscribe(self) -> None:
        if not self._subscribed:
            self._request({"op": "subscribe"}, 10)
            self._subscribed = True

    def command(self, cmd: str, retries: int = 2, _program: str | None = None, **args: Any) -> dict[str, Any]:
        """`_program`: who this process sends it for, as the audit trail names it."""
        # The owner waits for the fixture as its own Link does; allow for a queue of others.
        msg = {"op": "command", "cmd": cmd, "args": args, "retries": retries}
        if _program:
            msg["program"] = _program
        return self._request(msg, self.timeout_s * (retries + 1) + 30)

    def records(self, duration_s: float) -> Iterator[dict[str, Any]]:
        """Telemetry and events, as the owner hands them on (audit records and notes go to
        the listeners only)."""
        self._subscribe()
        end = time.monotonic() + (duration_s if duration_s is not None else 1e12)
        for m in self._messages(end):
            if m.get("t"):
                yield m

    def note(self, text: str) -> None:
        self._request({"op": "note", "text": text}, 10)

    def handover(self, why: str) -> dict[str, Any]:
        """Borrow the port: the owner closes it, and opens it again when this connection ends."""
        return self._request({"op": "handover", "why": why}, 30)

    def reset(self) -> dict[str, Any]:
        return self._request({"op": "reset"}, 90)
