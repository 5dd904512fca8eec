"""A pty whose far end plays a device on a serial port, for the host's tests: a board that
answers, one that says nothing, one that breaks the protocol."""

import os
import threading
import tty

from stackpress.protocol import frame, parse


def reply(cmd, data):
    """The bytes of a successful reply to `cmd` carrying `data`."""
    return frame({"t": "rep", "id": cmd["id"], "ok": True, "data": data})


class FakeDevice:
    """`answer(cmd)` gives what to send back for each command received: a dict (a reply's
    data), bytes (sent as they are, in pieces), or None (silence)."""

    def __init__(self, answer):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.answer = answer
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        buf = b""
        while not self.stop:
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    cmd = parse(line)
                except ValueError:
                    continue
                out = self.answer(cmd)
                out = reply(cmd, out) if isinstance(out, dict) else out or b""
                while out and not self.stop:
                    try:
                        os.write(self.master, out[:4096])
                    except OSError:
                        return
                    out = out[4096:]

    def close(self):
        self.stop = True
        os.close(self.slave)
        os.close(self.master)
