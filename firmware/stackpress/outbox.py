"""The firmware's output: a fixed queue drained as fast as the serial line takes it.

A host that holds the port open without reading must never block the control loop
(USB CDC on the Pico blocks a write when its buffer is full), so frames are queued
whole and written in what the board says it can take now. When the queue is full a
frame is dropped, whole, and counted: a telemetry record stays in the history for a
replay, and a command whose reply was dropped is sent again by the host.
"""


class Outbox:
    def __init__(self, write, size=4096, buf=None):
        self._write = write  # board.serial_write(memoryview) -> bytes taken, never blocks
        self.buf = buf if buf is not None else bytearray(size)
        self._mv = memoryview(self.buf)
        self.n = 0
        self.dropped = 0
        self._w = -1  # end of the frame being written in place (begin..commit), or -1

    def room(self):
        return len(self.buf) - self.n

    def put(self, frame):
        """Queue a whole frame, or drop it (returns False) if it does not fit."""
        m = len(frame)
        if m > len(self.buf) - self.n:
            self.dropped += 1
            return False
        self.buf[self.n : self.n + m] = frame
        self.n += m
        self.pump()
        return True

    # A frame written in place, piece by piece: a reply of several KB then never needs
    # a block of that size from a heap that weeks of running have fragmented.
    def begin(self):
        self._w = self.n

    def add(self, b):
        """Append bytes to the frame being written; past the end of the queue the frame
        is marked dropped and the rest ignored."""
        w = self._w
        if w < 0:
            return
        m = len(b)
        if m > len(self.buf) - w:
            self._w = -1
            return
        self.buf[w : w + m] = b
        self._w = w + m

    def written(self):
        """The frame so far (a view into the queue; valid until commit)."""
        return self._mv[self.n : max(self._w, self.n)]

    def commit(self):
        """Queue the frame written since begin(), or count it dropped (returns False)."""
        w = self._w
        self._w = -1
        if w < 0:
            self.dropped += 1
            return False
        self.n = w
        self.pump()
        return True

    def pump(self):
        """Write what the line takes now; keep the rest."""
        n = self.n
        if not n:
            return
        k = self._write(self._mv[:n])
        if k:
            if k < n:
                self.buf[: n - k] = self._mv[k:n]
            self.n = n - k
