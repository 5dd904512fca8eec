"""Reaching a fixture: through the stackpress process that owns its port, or by opening it.

Every stackpress program asks here. If another stackpress process has the port, the
answer goes through it (remote.py); if none has, this process opens the port and becomes
its owner (owner.py), so that the next program goes through it in turn. Only a program
that is not stackpress's (mpremote, a terminal) makes a port "busy". When an owner ends
(a one-off command that happened to hold the port), the next call goes to whoever has the
port now, or this process opens it: a monitor or a logger is never left behind.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .link import RESEND_ON_SILENCE, Endpoint, LinkError
from .owner import OwnedLink, program_name, socket_path
from .remote import OwnerGone, RemoteLink

if TYPE_CHECKING:
    from stackpress.owner import OwnedLink
    from stackpress.remote import OwnerGone, RemoteLink

BUSY_WAIT_S = 2.0  # another stackpress process that just opened the port needs a moment to listen
REBIND_TRIES = 8


def open_link(
    port: str | None, timeout_s: float = 3.0, subscribe: bool = False, group: str | None = None
) -> FixtureLink:
    """A Link-like object for the fixture on `port` (see FixtureLink)."""
    if not port:
        raise LinkError(
            "no port given: use --port PATH or set STACKPRESS_PORT "
            "(the virtual fixture prints its port when 'stackpress sim' starts)"
        )
    return FixtureLink(port, timeout_s, subscribe, group)


def _resolve(port: str, timeout_s: float, subscribe: bool, group: str | None) -> OwnedLink | RemoteLink:
    path = socket_path(port)
    end = time.monotonic() + BUSY_WAIT_S
    while True:
        if os.path.exists(path):
            try:
                return RemoteLink(port, path, timeout_s, subscribe)
            except LinkError:
                _forget_if_dead(path)
        try:
            return OwnedLink(port, timeout_s, group)
        except LinkError as e:
            if "busy" not in str(e) and "already owned" not in str(e) or time.monotonic() > end:
                raise
        time.sleep(0.1)


def _forget_if_dead(path: str) -> None:
    """A socket left by an owner that was killed: nobody answers on it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except ConnectionRefusedError:
        try:
            os.unlink(path)
        except OSError:
            pass
    except OSError:
        pass
    finally:
        s.close()


class FixtureLink(Endpoint):
    """The fixture on a port, through its owner or owned here: the interface of Link
    (command, hello, records, on_record, listeners, noise, close), plus `remote` and the
    owner's services (note, handover, reset, lend)."""

    def __init__(self, port: str, timeout_s: float = 3.0, subscribe: bool = False, group: str | None = None) -> None:
        self.port = port
        self._args = (port, timeout_s, subscribe, group)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._on_record: Callable[[dict[str, Any]], None] | None = None
        self._link: OwnedLink | RemoteLink | None = None
        self._bind(_resolve(*self._args))

    def _bind(self, link: OwnedLink | RemoteLink) -> None:
        self._link = link
        link.on_record = self._on_record
        link.listeners.append(self._dispatch)

    def _dispatch(self, rec: dict[str, Any]) -> None:
        for listen in self.listeners:
            listen(rec)

    def _rebind(self) -> None:
        try:
            self._link.close()
        except OSError:
            pass
        self._bind(_resolve(*self._args))

    @property
    def on_record(self) -> Callable[[dict[str, Any]], None] | None:
        return self._on_record

    @on_record.setter
    def on_record(self, fn: Callable[[dict[str, Any]], None] | None) -> None:
        self._on_record = fn
        self._link.on_record = fn

    @property
    def remote(self) -> bool:
        return isinstance(self._link, RemoteLink)

    @property
    def noise(self) -> list[bytes]:
        return self._link.noise

    @property
    def bad_frames(self) -> int:
        return self._link.bad_frames

    @property
    def handed_over(self) -> str | None:
        return getattr(self._link, "handed_over", None)

    def _again(self, gone: OwnerGone, tries: int) -> None:
        """After an owner ended: the next one, or the port itself (an owner that is ending
        may still take a connection, so a few tries)."""
        if tries >= REBIND_TRIES:
            raise gone
        time.sleep(0.05 * tries)
        self._rebind()

    def command(self, cmd: str, retries: int = 2, **args: Any) -> dict[str, Any]:
        tries = 0
        while True:
            try:
                return self._link.command(cmd, retries=retries, **args)
            except OwnerGone as gone:
                if cmd not in RESEND_ON_SILENCE:
                    self._rebind()
                    raise LinkError(
                        "the stackpress process that had %s ended while '%s' went through it: "
                        "whether it was done, 'stackpress status' says" % (self.port, cmd)
                    ) from None
                tries += 1
                self._again(gone, tries)

    def command_as(self, user: str, cmd: str, **args: Any) -> dict[str, Any]:
        """A command on behalf of someone this process vouches for (a broker's user, for
        serve --mqtt-control): in the audit trail under their name, marked as such."""
        link = self._link
        if isinstance(link, OwnedLink):
            return link.command(cmd, _who=("mqtt:" + user, "%s via MQTT" % program_name(), os.getpid()), **args)
        return link.command(cmd, _program="%s for MQTT user %s" % (program_name(), user), **args)

    def hello(self) -> dict[str, Any]:
        tries = 0
        while True:
            try:
                return self._link.hello()
            except OwnerGone as gone:
                tries += 1
                self._again(gone, tries)

    def records(self, duration_s: float) -> Iterator[dict[str, Any]]:
        end = time.monotonic() + (duration_s if duration_s is not None else 1e12)
        tries = 0
        while time.monotonic() < end:
            try:
                yield from self._link.records(max(0.0, end - time.monotonic()))
                return
            except OwnerGone as gone:
                tries += 1
                self._again(gone, tries)

    def note(self, text: str) -> dict[str, Any]:
        return self._remote("note", text)

    def handover(self, why: str) -> dict[str, Any]:
        return self._remote("handover", why)

    def reset(self) -> dict[str, Any]:
        return self._remote("reset")

    def _remote(self, what: str, *args: Any) -> dict[str, Any]:
        if not self.remote:
            raise LinkError("%s: no other stackpress process has %s" % (what, self.port))
        return getattr(self._link, what)(*args)

    def lend(self, why: str) -> None:
        link = self._link
        assert isinstance(link, OwnedLink), "only the port's owner lends it"
        link.lend(why)

    def close(self) -> None:
        self._link.close()
