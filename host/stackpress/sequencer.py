"""Each record a fixture sends, once and in order, into its log: the logger's bookkeeping
of boots, sequence numbers, holes to replay and what is lost (`stackpress log`, logger.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .timebase import TimeBase

if TYPE_CHECKING:
    from stackpress.logfile import CsvLog, Rotating, SqliteLog


class Sequencer:
    """Puts records in (boot, seq) order, exactly once: duplicates dropped, records after a
    hole held back while the hole is replayed, and what the fixture no longer has noted
    as lost. A boot is known by its count and its identity (`boot_id`, from `hello`,
    `status` and the boot event): a fixture whose flash was wiped counts from boot 1
    again, and its records are new ones, not duplicates of the old boot 1. Each record is
    placed in UTC when it arrives (timebase.py): live, or by its boot's clock if late."""

    def __init__(self, log: CsvLog | Rotating | SqliteLog, hold_unanchored: bool = False) -> None:
        self.log = log
        # The logger anchors each boot's clock with `status` and holds records until then;
        # without it (tests, tools) a boot's first record anchors it as it arrives.
        self.hold_unanchored = hold_unanchored
        self.boot, self.last = log.last if log.last else (None, 0)
        self.boot_id = getattr(log, "last_boot_id", None)
        self.fresh = log.last is None  # nothing written yet: what came before it was never promised
        self.time = TimeBase()
        self.held: list[
            tuple[dict[str, Any], float]
        ] = []  # (record, arrival ms) of a boot whose clock is not anchored yet: see anchor()
        self.pending: dict[int, tuple[dict[str, Any], tuple[float, str]]] = {}
        self.want = None  # first seq of a hole to ask for
        self.asked_at = None
        self.duplicates = 0
        self.lost = 0
        # each record as it is written (boot_id, measured UTC ms, time source): serve's publisher
        self.on_row: Callable[[dict[str, Any], str | None, float, str], None] | None = None

    def new_boot(self, boot: int | None, boot_id: str | None = None) -> None:
        restarted = isinstance(boot, int) and isinstance(self.boot, int) and boot <= self.boot
        if self.boot is not None:
            self._give_up_pending("the fixture restarted (boot %s)" % boot)
            if restarted:
                self.log.note(
                    "the fixture's boot count restarted: boot %s (boot_id %s) after boot %s (boot_id %s); "
                    "its flash was erased or replaced, and its records go on from here"
                    % (boot, boot_id, self.boot, self.boot_id)
                )
            else:
                self.log.note("fixture rebooted: boot %s" % boot)
        if restarted:
            self.time.forget(boot)  # a boot count that restarted: not the old boot's clock
        self.boot, self.boot_id, self.last = boot, boot_id, 0
        self.want = None

    def _same_boot(self, boot: int | None, boot_id: str | None) -> bool:
        if boot != self.boot:
            return False
        return boot_id is None or self.boot_id is None or boot_id == self.boot_id

    def offer(self, rec: dict[str, Any], arrival_ms: float | None = None) -> None:
        arrival_ms = time.time() * 1000 if arrival_ms is None else arrival_ms
        b, s = rec.get("boot"), rec.get("seq")
        if not isinstance(s, int):
            return
        bid = rec.get("boot_id") if rec.get("kind") == "boot" else None
        if not self._same_boot(b, bid) or (rec.get("kind") == "boot" and s == 1 and self.last >= 1):
            self.new_boot(b, bid)
        elif bid and self.boot_id is None:
            self.boot_id = bid
        if s <= self.last or s in self.pending:
            self.duplicates += 1
            return
        if self.hold_unanchored and self.time.offset_ms(self.boot) is None:
            # A boot first seen in a burst (the port given back, a reconnect): its clock is
            # anchored by `status` before any of it is written (the logger asks for it).
            self.held.append((rec, arrival_ms))
            return
        when = self.time.place(self.boot, rec.get("device_ms", 0), arrival_ms)
        if s == self.last + 1:
            self._write(rec, when)
            self._drain()
        else:
            self.pending[s] = (rec, when)
            if self.want is None:
                self.want = self.last + 1
                self.asked_at = None

    def anchor(self, status: dict[str, Any], arrival_ms: float) -> None:
        """`status` arrived at arrival_ms: its uptime is its boot's device time then. Records
        held for want of it are placed now; one of a boot status no longer shows is placed
        by its own arrival (the best there is)."""
        up = status.get("uptime_s")
        if isinstance(up, (int, float)) and isinstance(status.get("boot"), int):
            self.time.anchor(status.get("boot"), round(up * 1000), arrival_ms)
        held, self.held = self.held, []
        for rec, t in held:
            if self.time.offset_ms(rec.get("boot")) is None:
                self.time.anchor(rec.get("boot"), rec.get("device_ms", 0), t)
            self.offer(rec, t)

    def _write(self, rec: dict[str, Any], when: tuple[float, str]) -> None:
        self.log.row(rec, self.boot_id, *when)
        self.last = rec["seq"]
        self.fresh = False
        if self.on_row is not None:
            self.on_row(rec, self.boot_id, *when)

    def _drain(self) -> None:
        while self.last + 1 in self.pending:
            self._write(*self.pending.pop(self.last + 1))
        if not self.pending:
            self.want = None

    def replayed(self, reply: dict[str, Any]) -> None:
        """The fixture's answer to a replay: records before its from_seq are gone."""
        first = reply["from_seq"]
        if first > self.last + 1:
            gone_to = first - 1
            if self.pending:
                gone_to = min(gone_to, min(self.pending) - 1)
            if gone_to >= self.last + 1:
                if self.fresh:  # a new log: it starts where the fixture's history does now
                    self.log.note("log starts at boot %s seq %d" % (self.boot, gone_to + 1))
                else:
                    self.lost += gone_to - self.last
                    self.log.note(
                        "lost: records %d..%d of boot %s (the fixture no longer held them)"
                        % (self.last + 1, gone_to, self.boot)
                    )
                self.last = gone_to
            self._drain()

    def hole(self) -> tuple[int, int | None] | None:
        """(from_seq, to_seq) to ask a replay for: the first hole only, not what came after it."""
        if self.want is None:
            return None
        return self.want, (min(self.pending) - 1 if self.pending else None)

    def _give_up_pending(self, why: str) -> None:
        if self.pending:
            first = min(self.pending)
            self.lost += first - self.last - 1
            self.log.note("lost: records %d..%d of boot %s (%s)" % (self.last + 1, first - 1, self.boot, why))
            for s in sorted(self.pending):
                self._write(*self.pending.pop(s))

    def catch_up(self, status: dict[str, Any]) -> None:
        """After (re)connecting: ask for what was said while no one listened."""
        if not self._same_boot(status.get("boot"), status.get("boot_id")):
            self.new_boot(status.get("boot"), status.get("boot_id"))
        elif self.boot_id is None:
            self.boot_id = status.get("boot_id")
        if status.get("seq", 0) > self.last:
            self.want = self.last + 1
            self.asked_at = None
