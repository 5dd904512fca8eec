"""The virtual fixture's USB serial port, as a host sees it: a pty (a virtual null-modem
cable) whose far end behaves as a Pico's /dev/ttyACM0, with a stable link to it as
/dev/serial/by-id gives, which can be unplugged and plugged in again.

The board's output never blocks the board. While a host reads, none of it is lost: it
waits in a backlog and the world waits for the host (the sim stops virtual time until the
backlog drains). When nobody has read for HOST_WAIT_S, the output is dropped, as USB CDC
drops it with no host, until a write goes through again."""

from __future__ import annotations

import errno
import os
import time
import tty
from collections.abc import Callable

from .. import discover

HOST_WAIT_S = 0.1  # a host that has not read for this long is not reading: drop
BACKLOG_MAX = 1 << 20
READ_MAX = 65536


class UsbPort:
    def __init__(self, link: str | None, log: Callable[[str], None]) -> None:
        self.link = link  # a stable path to the port (a symlink), or None
        self.log = log
        self.master: int | None = None  # the pty's near end, None while unplugged
        self.slave: int | None = None
        self.port: str | None = None
        self.backlog = bytearray()  # the board's output the host has not taken yet
        self.backlog_since: float | None = None
        self.dropping = False  # nobody read for a while: output is dropped until a write goes through
        self.dropped_bytes = 0
        self.unplugs = 0

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        if self.link:
            tmp = self.link + ".new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.port, tmp)
            os.replace(tmp, self.link)
        discover.register(self.link or self.port)
        return self.port

    def unplug(self) -> None:
        """The port goes away (hosts get an I/O error) and what waited for a host is lost."""
        self._close_pty()
        self.dropped_bytes += len(self.backlog)
        self.backlog.clear()
        self.backlog_since = None
        self.unplugs += 1

    def write(self, data: bytes) -> None:
        """The board's output, to the host or, if none is reading, dropped."""
        if self.dropping:
            n = self._write(data)
            if n == len(data):
                self.dropping = False
            self.dropped_bytes += len(data) - n
            return
        self.backlog += data
        self.flush()

    def flush(self) -> None:
        """As much of the backlog as the host has room for; all of it dropped once nobody
        has read for HOST_WAIT_S, or it has grown past BACKLOG_MAX."""
        if not self.backlog:
            return
        n = self._write(bytes(self.backlog[:READ_MAX]))
        del self.backlog[:n]
        now = time.monotonic()
        if not self.backlog:
            self.backlog_since = None
        elif self.backlog_since is None:
            self.backlog_since = now
        elif now - self.backlog_since > HOST_WAIT_S or len(self.backlog) > BACKLOG_MAX:
            self.dropped_bytes += len(self.backlog)
            self.backlog.clear()
            self.backlog_since = None
            self.dropping = True

    def read(self) -> bytes:
        """What a host wrote, b"" if nothing (or unplugged)."""
        if self.master is None:
            return b""
        try:
            return os.read(self.master, READ_MAX)
        except OSError:  # BlockingIOError included; EIO with no host open
            return b""

    def close(self) -> None:
        self._close_pty()

    def _write(self, data: bytes) -> int:
        if self.master is None:
            self.dropped_bytes += len(data)  # no host: USB CDC drops it
            return len(data)
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            return 0

    def _close_pty(self) -> None:
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None
        discover.unregister()
        if self.link and os.path.lexists(self.link):
            os.unlink(self.link)
