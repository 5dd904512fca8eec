"""A wrap-safe uptime clock.

`ticks_ms` wraps at 2**30 on the RP2040 (~12.4 days) and weeks-long tests cross that
many times, so uptime is accumulated from `ticks_diff` steps. Seconds and the
millisecond remainder are kept apart so both stay small ints (no bignum, no heap).
"""


class Clock:
    def __init__(self, ticks_ms, ticks_diff):
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self._last = ticks_ms()
        self.s = 0
        self.ms = 0

    def update(self):
        now = self._ticks_ms()
        d = self._ticks_diff(now, self._last)
        if d > 0:
            self._last = now
            ms = self.ms + d
            if ms >= 1000:
                self.s += ms // 1000
                ms %= 1000
            self.ms = ms
        return now

    def device_ms(self):
        # Allocates a big int after ~12 days; only called when formatting telemetry.
        return self.s * 1000 + self.ms
