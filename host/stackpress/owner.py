"""One process owns a fixture's serial port; every other stackpress program goes through it.

A serial port has one reader. Whichever stackpress process opens a fixture's port (a
logger, `serve`, a monitor, a one-off command) also listens on a Unix socket named after
the port in the runtime directory, and every other stackpress program for that fixture
(remote.py) sends its commands there and, if it asks, gets every record. Commands from
all of them go to the fixture one at a time over the owner's Link (each waits for its own
reply, so replies never go to the wrong client); records go to everyone subscribed.

Every command that changes something becomes an audit record — the command, its
arguments, the reply, the local user (from the socket's peer credentials, not from what
the client says) and the client program — handed to the owner's listeners and to every
subscriber, so whichever stackpress program logs the fixture writes it in its log.

mpremote and terminal programs need the port to themselves: a client may borrow it
(`handover`: the owner closes the port until the borrower's connection ends, as
`stackpress flash` does), or park the fixture at its REPL (`repl`: the port stays free
until `stackpress reset`, which the owner carries out itself).

Messages are JSON objects, one per line, both ways (PROTOCOL.md has the fixture's own).
"""

from __future__ import annotations

import getpass
import json
import os
import pwd
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import discover
from .link import DeviceError, Endpoint, HandedOver, Link, LinkError

if TYPE_CHECKING:
    from stackpress.link import Link

# Commands that change what the fixture does or what it will do: each is audited.
AUDITED = (
    "hold",
    "gap",
    "idle",
    "jog",
    "release",
    "ack",
    "set",
    "tare",
    "set_calibration",
    "profile_set",
    "profile_run",
    "profile_stop",
    "lock",
    "unlock",
    "repl",
    "reset",
    "handover",
)
CLIENT_QUEUE_MAX = 20000  # records waiting for a client that does not read: past this it is dropped


def socket_dir() -> str:
    return os.path.join(os.path.dirname(discover.runtime_dir()), "owners")


def socket_path(port: str) -> str:
    """Where the owner of `port` listens: one name per device, whatever link points at it."""
    real = os.path.realpath(port)
    return os.path.join(socket_dir(), real.strip("/").replace("/", "_") + ".sock")


PROGRAM = [os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"]


def program_name() -> str:
    """What this process is, for the audit trail ("stackpress hold"): the CLI sets it."""
    return PROGRAM[0]


def me() -> tuple[str, str, int]:
    """(user, program, pid) of this process, as an audit record names who did something."""
    return getpass.getuser(), program_name(), os.getpid()


def audit_record(
    cmd: str, args: dict[str, Any], ok: bool, reply: dict[str, Any], user: str, program: str, pid: int
) -> dict[str, Any]:
    return {
        "t": "audit",
        "utc_ms": int(time.time() * 1000),
        "cmd": cmd,
        "args": args,
        "ok": ok,
        "reply": reply,
        "user": user,
        "program": program,
        "pid": pid,
    }


def note_record(text: str, user: str, program: str, pid: int) -> dict[str, Any]:
    return {"t": "note", "utc_ms": int(time.time() * 1000), "text": text, "user": user, "program": program, "pid": pid}


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class OwnedLink(Endpoint):
    """A fixture's port opened by this process, served to the others: a Link with a socket
    beside it. The same interface as Link (command, records, hello, on_record, listeners)."""

    link: Link | None  # None while the port is lent out

    def __init__(self, port: str, timeout_s: float = 3.0, group: str | None = None) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.group = group
        self.on_record: Callable[[dict[str, Any]], None] | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # this process's own: audit records and notes
        self.handed_over: str | None = None  # why the port is lent out (None: it is ours)
        self._lock = threading.RLock()  # the port: open, lent, taken back (never held around I/O)
        self._clients_lock = threading.Lock()
        self._clients: list[Client] = []
        self._closing = False
        self._open_link()
        try:
            self._listen()
        except BaseException:
            self.link.close()
            raise

    # --- the port ---
    def _open_link(self) -> None:
        self.link = Link(self.port, timeout_s=self.timeout_s)
        self.link.on_record = self._local_record
        self.link.listeners.append(self._broadcast)

    def _local_record(self, rec: dict[str, Any]) -> None:
        if self.on_record is not None:
            self.on_record(rec)

    @property
    def noise(self) -> list[bytes]:
        return self.link.noise if self.link else []

    @property
    def bad_frames(self) -> int:
        return self.link.bad_frames if self.link else 0

    def command(
        self, cmd: str, retries: int = 2, _who: tuple[str, str, int] | None = None, **args: Any
    ) -> dict[str, Any]:
        """Send a command (from this process, or from a client: `_who`) and audit it if it
        changes something. Raises HandedOver while the port is lent out."""
        link = self._current()
        try:
            data = link.command(cmd, retries=retries, **args)
        except DeviceError as e:
            self._audit(cmd, args, False, {"err": e.code, "msg": e.msg}, _who)
            raise
        except LinkError:
            self._current()  # lent out meanwhile: that is what to say
            raise
        self._audit(cmd, args, True, data, _who)
        return data

    def _current(self) -> Link:
        with self._lock:
            if self.link is None:
                raise HandedOver("%s is lent out: %s" % (self.port, self.handed_over))
            return self.link

    def hello(self) -> dict[str, Any]:
        return self._current().hello()

    def records(self, duration_s: float) -> Iterator[dict[str, Any]]:
        end = time.monotonic() + (duration_s if duration_s is not None else 1e12)
        while time.monotonic() < end:
            link = self.link
            if link is None:
                time.sleep(min(0.1, max(0.0, end - time.monotonic())))
                continue
            try:
                yield from link.records(min(0.2, max(0.0, end - time.monotonic())))
            except LinkError:
                if self.link is link:
                    raise
                # the port was lent out meanwhile: not a loss

    def _audit(
        self, cmd: str, args: dict[str, Any], ok: bool, reply: dict[str, Any], who: tuple[str, str, int] | None
    ) -> None:
        if cmd not in AUDITED:
            return
        rec = audit_record(cmd, args, ok, reply, *(who or me()))
        for listen in self.listeners:
            listen(rec)
        self._broadcast(rec)

    def note(self, text: str, who: tuple[str, str, int] | None = None) -> None:
        rec = note_record(text, *(who or me()))
        for listen in self.listeners:
            listen(rec)
        self._broadcast(rec)

    # --- lending the port out ---
    def lend(self, why: str) -> None:
        """Close the port (it goes to `why`); commands raise HandedOver until take_back()."""
        with self._lock:
            if self.link is not None:
                with self.link.io:  # not while another thread reads or writes it
                    self.link.close()
                self.link = None
            self.handed_over = why

    def take_back(self, timeout_s: float = 60) -> None:
        """Open the port again (a board that was reset comes back within seconds)."""
        end = time.monotonic() + timeout_s
        while True:
            try:
                with self._lock:
                    self._open_link()
                    self.handed_over = None
                return
            except LinkError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.3)

    def reset_from_repl(self) -> None:
        """`stackpress reset` for a fixture parked at its REPL by `repl` through this owner."""
        from .reset import _raw_repl_reset

        _raw_repl_reset(self.port)
        time.sleep(0.5)
        self.take_back()

    # --- the socket ---
    def _listen(self) -> None:
        path = socket_path(self.port)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if self.group:
            _share_dir(os.path.dirname(path), self.group)
        if os.path.exists(path):
            try:  # an owner that was killed left it; a live one answers
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                probe.connect(path)
                probe.close()
                raise LinkError("%s is already owned by another stackpress process" % self.port)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tmp = path + ".%d" % os.getpid()
        self.sock.bind(tmp)
        os.chmod(tmp, 0o660 if self.group else 0o600)
        if self.group:
            os.chown(tmp, -1, _gid(self.group))
        os.replace(tmp, path)
        self.path = path
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="owner %s" % self.port).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        client = Client(conn)
        who = [_user(uid), "?", pid]
        lent = False
        try:
            for msg in client.messages():
                who[1] = str(msg.get("program", who[1]))[:80]
                op = msg.get("op")
                if op == "subscribe":
                    with self._clients_lock:
                        self._clients.append(client)
                    client.send({"op": "reply", "ok": True, "data": {}})
                elif op == "command":
                    client.send(self._client_command(msg, tuple(who)))
                elif op == "note":
                    self.note(str(msg.get("text", ""))[:2000], tuple(who))
                    client.send({"op": "reply", "ok": True, "data": {}})
                elif op == "handover":
                    # The port goes to the client (flashing) until its connection ends.
                    self.lend("handed over to %s (pid %d) by %s" % (who[1], pid, who[0]))
                    self._audit(
                        "handover", {"why": str(msg.get("why", ""))[:80]}, True, {"port": self.port}, tuple(who)
                    )
                    lent = True
                    client.send({"op": "reply", "ok": True, "data": {"port": self.port}})
                elif op == "reset":
                    client.send(self._client_reset(tuple(who)))
                elif op == "info":
                    client.send(
                        {
                            "op": "reply",
                            "ok": True,
                            "data": {
                                "port": self.port,
                                "pid": os.getpid(),
                                "program": program_name(),
                                "handed_over": self.handed_over,
                            },
                        }
                    )
                else:
                    client.send({"op": "reply", "ok": False, "error": "usage", "msg": "unknown op %r" % op})
        finally:
            with self._clients_lock:
                if client in self._clients:
                    self._clients.remove(client)
            client.close()
            if lent and not self._closing:
                try:
                    self.take_back()
                    self.note("port taken back from %s (pid %d)" % (who[1], pid), tuple(who))
                except LinkError as e:
                    self.handed_over = "the fixture did not come back after %s: %s" % (who[1], e)

    def _client_command(self, msg: dict[str, Any], who: tuple[str, str, int]) -> dict[str, Any]:
        cmd = msg.get("cmd")
        args = msg.get("args") or {}
        if not isinstance(cmd, str) or not isinstance(args, dict):
            return {"op": "reply", "ok": False, "error": "usage", "msg": "a command needs 'cmd' and 'args'"}
        try:
            if cmd == "repl":
                data = self.command("repl", _who=who, **args)
                self.lend(
                    "at its MicroPython REPL ('stackpress repl' by %s): 'stackpress reset' brings the "
                    "firmware back" % who[0]
                )
                return {"op": "reply", "ok": True, "data": data}
            data = self.command(cmd, retries=int(msg.get("retries", 2)), _who=who, **args)
            return {"op": "reply", "ok": True, "data": data}
        except DeviceError as e:
            return {"op": "reply", "ok": False, "error": "device", "code": e.code, "msg": e.msg}
        except HandedOver as e:
            return {"op": "reply", "ok": False, "error": "handed_over", "msg": str(e)}
        except LinkError as e:
            return {"op": "reply", "ok": False, "error": "link", "msg": str(e)}

    def _client_reset(self, who: tuple[str, str, int]) -> dict[str, Any]:
        try:
            if self.handed_over and self.handed_over.startswith("at its MicroPython REPL"):
                self.reset_from_repl()
                self._audit("reset", {}, True, {"from": "repl"}, who)
                return {"op": "reply", "ok": True, "data": {"resume": "saved"}}
            data = self.command("reset", retries=0, _who=who)
            return {"op": "reply", "ok": True, "data": data}
        except DeviceError as e:
            return {"op": "reply", "ok": False, "error": "device", "code": e.code, "msg": e.msg}
        except LinkError as e:
            return {"op": "reply", "ok": False, "error": "link", "msg": str(e)}

    def _broadcast(self, rec: dict[str, Any]) -> None:
        with self._clients_lock:
            clients = list(self._clients)
        for c in clients:
            if not c.queue(rec):
                with self._clients_lock:
                    if c in self._clients:
                        self._clients.remove(c)

    def close(self) -> None:
        self._closing = True
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            if os.path.exists(self.path):
                os.unlink(self.path)
        except OSError:
            pass
        with self._clients_lock:
            for c in self._clients:
                c.close()
        with self._lock:
            if self.link is not None:
                self.link.close()
                self.link = None


class Client:
    """One connection to the owner: requests in, replies and records out (a writer thread,
    so a client that reads slowly never holds up the fixture's line)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.out: list[bytes] = []
        self.cv = threading.Condition()
        self.closed = False
        threading.Thread(target=self._write, daemon=True).start()

    def messages(self) -> Iterator[dict[str, Any]]:
        buf = b""
        while True:
            try:
                chunk = self.conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    yield msg

    def send(self, msg: dict[str, Any]) -> None:
        self.queue(msg)

    def queue(self, msg: dict[str, Any]) -> bool:
        with self.cv:
            if self.closed or len(self.out) > CLIENT_QUEUE_MAX:
                return False
            self.out.append(json.dumps(msg).encode() + b"\n")
            self.cv.notify()
            return True

    def _write(self) -> None:
        while True:
            with self.cv:
                while not self.out and not self.closed:
                    self.cv.wait()
                if self.closed:
                    return
                data = b"".join(self.out)
                self.out.clear()
            try:
                self.conn.sendall(data)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify()
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def _gid(group: str) -> int:
    import grp

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise LinkError("no group %r on this computer" % group) from None


def _share_dir(path: str, group: str) -> None:
    """The socket folder readable by the group (and its parent, so it can be reached)."""
    gid = _gid(group)
    for d in (path, os.path.dirname(path)):
        try:
            os.chown(d, -1, gid)
            os.chmod(d, 0o2770)
        except PermissionError:
            pass
