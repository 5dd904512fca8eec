"""When each record was measured, in UTC: each boot's device clock mapped to the host's.

A fixture stamps its records with `device_ms` (its time since boot) only. A record that
arrives live says when it was measured, give or take the link's latency, which only ever
adds: so the mapping offset = arrival - device_ms is the smallest such difference over the
recent live records of the boot (a window, so the mapping follows the crystal's drift).
A record that arrives late (a replay after the host was away) gets its time from the
mapping: the time it was measured, not the time it was read. A boot is anchored by the
first thing seen of it live (its boot event, or `status` at connect, whose `uptime_s` is
its device time then).

A record counts as live when it arrives within LIVE_MS of when the mapping says it was
measured; its row says "live", a mapped one "replayed".
"""

from __future__ import annotations

import collections
import datetime
from typing import Any

LIVE_MS = 1000
WINDOW = 300  # live records per boot (5 minutes at 1 s): the drift is followed within it


def utc_text(ms: float) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")


class TimeBase:
    def __init__(self) -> None:
        self._offsets: dict[Any, collections.deque[float]] = {}  # boot key -> recent live (arrival - device_ms), ms

    def anchor(self, boot: Any, device_ms: int, arrival_ms: float) -> None:
        """The boot's device clock read `device_ms` at `arrival_ms` (host UTC, ms) or later."""
        self._offsets.setdefault(boot, collections.deque(maxlen=WINDOW)).append(arrival_ms - device_ms)

    def forget(self, boot: Any) -> None:
        self._offsets.pop(boot, None)

    def offset_ms(self, boot: Any) -> float | None:
        d = self._offsets.get(boot)
        return min(d) if d else None

    def place(self, boot: Any, device_ms: int, arrival_ms: float) -> tuple[float, str]:
        """(measured UTC in ms, "live" or "replayed") of a record of `boot` that arrived at
        `arrival_ms`."""
        off = self.offset_ms(boot)
        if off is None or arrival_ms - (device_ms + off) < LIVE_MS:
            self.anchor(boot, device_ms, arrival_ms)
            return device_ms + min(self._offsets[boot]), "live"
        return device_ms + off, "replayed"


def device_elapsed_s(boot: Any, device_ms: Any) -> Any:
    """Seconds from the first record on the fixture's own clock (numpy arrays of each
    record's boot and device_ms, in order), each boot continuing where the last one ended:
    the time axis of a virtual fixture, which runs faster than real time."""
    import numpy as np

    t = np.asarray(device_ms, dtype=np.float64) / 1000.0
    if not len(t):
        return t
    starts = np.flatnonzero(np.diff(np.asarray(boot)) != 0) + 1
    offset = 0.0
    for a, b in zip(np.concatenate(([0], starts)), np.concatenate((starts, [len(t)]))):
        t[a:b] += offset - (t[a] if a == 0 else 0.0)
        offset = t[b - 1]
    return t
