"""The firmware's output: a fixed queue drained as fast as the serial line takes it.

A host that holds the port open without reading must never block the control loop
(USB CDC on the Pico blocks a write when its buffer is full), so frames are queued
whole and written in what the board says it can take now. When the queue is full a
frame is dropped, whole, and counted: a telemetry record stays in the history for a
replay, and a command whose reply was dropped is sent again by the host.
"""


class Outbox:
    def __init__(self, write, size=4096):
        self._write = write  # board.serial_write(memoryview) -> bytes taken, never blocks
        self.buf = bytearray(size)
        self._mv = memoryview(self.buf)
        self.n = 0
        self.dropped = 0

    def room(self):
        return len(self.buf) - self.n

    def put(self, frame):
        """Queue a whole frame, or drop it (returns False) if it does not fit."""
        m = len(frame)
        if m > len(self.buf) - self.n:
            self.dropped += 1
            return False
        self.buf[self.n:self.n + m] = frame
        self.n += m
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
                self.buf[:n - k] = self._mv[k:n]
            self.n = n - k
