"""`stackpress log`: every record each fixture sends, once, in order, written through.

One fixture or many (several --port, or --all: every fixture found, and any that turns
up later), each to its own file, in one process: a thread per fixture. A hole in a
fixture's sequence is filled by asking it to replay (it keeps a history of its records);
what it no longer holds is written down as lost where it happened, so a loss is never
silent. The link is opened again when it drops (USB unplug, reset): the logger waits
for the fixture and catches up. The ordering is in sequencer.py, the files in logfile.py.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import discover
from .connect import open_link
from .link import DeviceError, HandedOver, LinkError
from .logfile import UNITS, LogError, open_log, utc
from .owner import me, note_record
from .protocol import FIXTURE_ID
from .sequencer import Sequencer
from .timebase import utc_text

if TYPE_CHECKING:
    from stackpress.connect import FixtureLink
    from stackpress.logfile import CsvLog, Rotating, SqliteLog

REPLAY_RETRY_S = 3.0
SCAN_EVERY_S = 5.0
PROGRESS_EVERY_S = 5.0
STATUS_EVERY_S = 5.0  # with observers (serve --mqtt, --notify-*): how fresh their status is


def metadata(link: FixtureLink, status: dict[str, Any]) -> dict[str, Any]:
    """A new log's metadata header: the fixture, its firmware and settings, and the fields
    its records carry (its `schema`: the log's columns)."""
    meta = {
        "stackpress log": "one row per telemetry record or event, in (boot, seq) order",
        "started_utc": utc(),
        "fixture_id": status.get("fixture_id"),
        "port": link.port,
        "firmware_version": status["firmware_version"],
        "protocol_version": status["protocol_version"],
        "runtime": status["runtime"],
        "board": status["board"],
        "cell_area_mm2": status["cell_area_mm2"],
        "calibration": status.get("calibration", {}),
        "settings": {k: v["value"] for k, v in link.command("config")["config"].items()},
        "load_cells": status.get("load_cells", 1),
        "record_fields": link.command("schema")["telemetry"],
        "units": UNITS,
    }
    if status.get("scenario"):
        meta["scenario"] = status["scenario"]  # a virtual fixture: what its model simulated
    return meta


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Observer(Protocol):
    """What serve hangs on a fixture's logger (lab.py): told every record as it is
    written, every audit record and note, the fixture's status now and then, and when the
    fixture comes and goes."""

    def row(self, rec: dict[str, Any], boot_id: str | None, measured_ms: float, source: str | None) -> None: ...
    def side(self, rec: dict[str, Any]) -> None: ...
    def status(self, st: dict[str, Any]) -> None: ...
    def fixture_link(self, up: bool) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class FixtureLogger:
    """One fixture into one log (a file, or a rotating series), across unplugs and resets."""

    def __init__(
        self,
        port: str,
        out: str,
        daily: bool = False,
        max_bytes: int | None = None,
        link: FixtureLink | None = None,
        fixture_id: str | None = None,
        extra_meta: dict[str, Any] | None = None,
        notes: Sequence[str] = (),
        group: str | None = None,
        observe: Callable[[FixtureLogger], list[Observer]] | None = None,
    ) -> None:
        self.port = port  # may be changed by the scanner when the fixture comes back elsewhere
        self.out = out
        self.daily, self.max_bytes = daily, max_bytes
        self.link = link
        self.fixture_id = fixture_id
        self.connected = link is not None
        self.extra_meta = extra_meta or {}
        self.notes = list(notes)
        self.group = group
        self.log: CsvLog | SqliteLog | Rotating | None = None
        self.seq: Sequencer | None = None
        self.error: str | None = None
        self._side: collections.deque[dict[str, Any]] = (
            collections.deque()
        )  # audit records and notes, written by this thread
        self.observe = observe
        self.observers: list[Observer] = []
        self._status_at = 0.0

    def _sync(self) -> None:
        """status: what the fixture said while no one listened is asked for, and its boot's
        clock is anchored (uptime_s is its device time when the reply came)."""
        t = time.time() * 1000
        status = self.link.command("status")
        self.seq.catch_up(status)
        self.seq.anchor(status, t)
        self._tell_status(status)

    def _tell_status(self, status: dict[str, Any]) -> None:
        self._status_at = time.monotonic()
        for obs in self.observers:
            obs.status(status)

    def _row(self, rec: dict[str, Any], boot_id: str | None, measured_ms: float, source: str) -> None:
        for obs in self.observers:
            obs.row(rec, boot_id, measured_ms, source)

    def _tick(self) -> None:
        for obs in self.observers:
            obs.tick()

    def mark(self, text: str) -> None:
        """A note in this fixture's log from any thread (serve's publisher and notifier)."""
        self._side.append(note_record(text, *me()))

    def command_as(self, user: str, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        """A command from a user this host vouches for (a broker's), audited in their name."""
        link = self.link
        if link is None:
            raise LinkError("fixture %s is not reachable from this host now" % self.fixture_id)
        return link.command_as(user, cmd, **args)

    def _attach(self) -> None:
        self.link.on_record = self.seq.offer
        self.link.listeners.append(self._side_record)

    def _side_record(self, rec: dict[str, Any]) -> None:
        if rec.get("t") in ("audit", "note"):
            self._side.append(rec)

    def open(self) -> None:
        """Connect (if not given a link) and open the log; the first status names the fixture."""
        if self.link is None:
            self.link = open_link(self.port, subscribe=True, group=self.group)
            self.link.hello()
        self.connected = True
        t = time.time() * 1000
        status = self.link.command("status")
        self.fixture_id = status.get("fixture_id")
        self.log = open_log(self.out, dict(metadata(self.link, status), **self.extra_meta), self.daily, self.max_bytes)
        self.seq = Sequencer(self.log, hold_unanchored=True)
        if self.observe is not None:
            self.observers = self.observe(self)
            self.seq.on_row = self._row
        self._attach()
        for text in self.notes:  # as `stackpress note` writes one
            self._side.append(note_record(text, *me()))
        self._write_side()
        if self.log.last is None:
            # A new log starts with the oldest record the fixture still holds: its history
            # comes first, and nothing before it is called lost.
            self.seq.boot = status.get("boot")
            self.seq.boot_id = status.get("boot_id")
            self.seq.last = max(0, status.get("oldest_seq", 1) - 1)
            self.log.note(
                "log starts at boot %s seq %d (the fixture's history from there on is replayed first)"
                % (self.seq.boot, self.seq.last + 1)
            )
        self.seq.catch_up(status)
        self.seq.anchor(status, t)
        self._tell_status(status)
        _say("logging %s (fixture %s) to %s" % (self.port, self.fixture_id, self.log.path))

    def run(self, stop: threading.Event, end: float | None) -> None:
        try:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                self.step(stop, end)
        except Exception as e:  # a thread must say why it ended; the file is closed below
            self.error = "%s: %s" % (type(e).__name__, e)
            if os.environ.get("STACKPRESS_DEBUG"):
                import traceback

                traceback.print_exc()
            _say("stackpress log: %s stopped: %s" % (self.port, self.error))
        finally:
            try:
                self.close()
            except Exception as e:
                self.error = self.error or "closing the log: %s" % e

    def step(self, stop: threading.Event, end: float | None) -> None:
        seq = self.seq
        try:
            if self.link is None:
                self.link = _reconnect(lambda: self.port, self.fixture_id, stop, end, self.group, self._tick)
                if self.link is None:
                    return
                self.connected = True
                for obs in self.observers:
                    obs.fixture_link(True)
                self._attach()
                self._sync()
            for rec in self.link.records(0.2):
                seq.offer(rec)
            if seq.held:
                self._sync()
            self._write_side()
            if seq.want is not None and (seq.asked_at is None or time.monotonic() - seq.asked_at > REPLAY_RETRY_S):
                seq.asked_at = time.monotonic()
                a, z = seq.hole()
                upto = {} if z is None else {"to_seq": z}
                try:
                    seq.replayed(self.link.command("replay", from_seq=a, boot=seq.boot, **upto))
                except DeviceError as e:
                    if e.code != "boot":
                        raise
                    self._sync()
            if self.observers and time.monotonic() - self._status_at >= STATUS_EVERY_S:
                self._tell_status(self.link.command("status"))
            self._tick()
        except HandedOver:
            time.sleep(0.2)  # the port is lent out (a flash, the REPL): its owner takes it back
        except LinkError as e:
            _say("stackpress log: %s; waiting for the fixture to come back" % e)
            self._drop_link()
        self._write_side()
        self.log.flush()

    def _write_side(self) -> None:
        while self._side:
            rec = self._side.popleft()
            for obs in self.observers:
                obs.side(rec)
            body = {k: v for k, v in rec.items() if k not in ("t", "utc_ms")}
            self.log.note(
                "%s %s: %s"
                % (rec["t"], utc_text(rec.get("utc_ms", time.time() * 1000)), json.dumps(body, separators=(",", ":")))
            )

    def _drop_link(self) -> None:
        if self.connected:
            for obs in self.observers:
                obs.fixture_link(False)
        self.connected = False
        if self.link is not None:
            try:
                self.link.close()
            except Exception:
                pass
        self.link = None

    def close(self) -> None:
        if self.log is not None:
            self._write_side()  # every note reaches the observers before they close
        observers, self.observers = self.observers, []
        for obs in observers:  # the notifier first: what it still sends goes out through the publisher
            try:
                obs.close()
            except Exception as e:  # the log is closed whatever the network does
                _say("stackpress serve: %s: %s" % (self.fixture_id, e))
        if self.log is not None:
            self._write_side()  # what they said as they closed
            self.log.close()
        self.connected = False
        self._drop_link()

    def summary(self) -> dict[str, Any]:
        s = {
            "port": self.port,
            "fixture_id": self.fixture_id,
            "file": self.log.path if self.log else None,
            "rows": self.log.rows if self.log else 0,
            "lost": self.seq.lost if self.seq else 0,
            "duplicates_dropped": self.seq.duplicates if self.seq else 0,
        }
        if self.error:
            s["error"] = self.error
        return s


def _reconnect(
    port_of: Callable[[], str],
    fixture_id: str | None,
    stop: threading.Event,
    end: float | None,
    group: str | None = None,
    waiting: Callable[[], None] | None = None,
) -> FixtureLink | None:
    """The fixture back, on its port (which the scanner may change). A port name can come
    back on another fixture (/dev/ttyACM0 after an unplug, a recycled pty): its id must match."""
    said = set()
    while not stop.is_set() and (end is None or time.monotonic() < end):
        port = port_of()
        try:
            link = open_link(port, subscribe=True, group=group)
            try:
                found = link.hello().get("fixture_id")
            except (LinkError, DeviceError):
                link.close()
                raise LinkError(port) from None
            if fixture_id is None or found == fixture_id:
                _say("stackpress log: fixture %s back on %s" % (fixture_id, port))
                return link
            link.close()
            if port not in said:
                said.add(port)
                _say("stackpress log: %s is now fixture %s, not %s: still waiting" % (port, found, fixture_id))
        except LinkError:
            pass
        if waiting is not None:
            waiting()
        stop.wait(0.2)
    return None


def out_path(out: str, fixture_id: str | None, fmt: str) -> str:
    """--out DIR (one file per fixture, named by its id) or --out FILE (one fixture). The id
    comes from the device: only the firmware's form (16 hex digits) names a file."""
    if out.endswith(os.sep) or os.path.isdir(out):
        if not isinstance(fixture_id, str) or not FIXTURE_ID.match(fixture_id):
            raise LinkError(
                "a device gave the fixture id %.40r, not 16 hex digits: not a stackpress fixture" % (fixture_id,)
            )
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise LogError("can't make the folder %s: %s" % (out, e.strerror)) from None
        return os.path.join(out, "%s.%s" % (fixture_id, fmt))
    return out


def record(
    ports: Sequence[str],
    out: str,
    duration_s: float | None = None,
    scan: bool = False,
    daily: bool = False,
    max_bytes: int | None = None,
    fmt: str = "csv",
    as_json: bool = False,
    notes: Sequence[str] = (),
    meta: dict[str, Any] | None = None,
    group: str | None = None,
    several: bool = False,
    observe: Callable[[FixtureLogger], list[Observer]] | None = None,
) -> int:
    """Log the fixtures on `ports` (and with scan, every fixture found, now and later) until
    duration_s (None: until Ctrl-C or SIGTERM), serving each to the other stackpress programs
    (owner.py). `notes` go into each log at its start, `meta` into its header; `group` may
    reach the fixtures through this process. Returns the exit code."""
    signal.signal(signal.SIGTERM, _stop)  # systemd's stop, kill: end cleanly, files closed
    # Ctrl-C, kill -INT: also for a logger started in the background by a script, which
    # inherits SIGINT ignored (and would then log on past every Ctrl-C and kill -INT).
    signal.signal(signal.SIGINT, _stop)
    stop = threading.Event()
    end = None if duration_s is None else time.monotonic() + duration_s
    loggers, threads = [], []
    several = several or scan or len(ports) > 1
    if several and not (out.endswith(os.sep) or os.path.isdir(out)):
        _say("stackpress log: several fixtures need --out DIR/ (one file per fixture, named by its id)")
        return 2

    def start(port, link=None, fixture_id=None):
        path = out_path(out, fixture_id or os.path.basename(port), fmt) if several else out
        lg = FixtureLogger(
            port,
            path,
            daily,
            max_bytes,
            link=link,
            fixture_id=fixture_id,
            extra_meta=meta,
            notes=notes,
            group=group,
            observe=observe,
        )
        try:
            lg.open()
        except BaseException:
            lg.close()
            raise
        loggers.append(lg)
        t = threading.Thread(target=lg.run, args=(stop, end), name="log %s" % port, daemon=True)
        threads.append(t)
        t.start()

    ended = []  # summaries of fixture loggers that stopped (and were started again)

    def scan_now():
        known = {}
        for i, lg in enumerate(loggers):
            if not threads[i].is_alive() and lg.error:
                # Stopped on an error (a full disk, a file it could not write): once the
                # fixture answers again, a new logger resumes its file.
                ended.append(lg.summary())
                del loggers[i], threads[i]
                return scan_now()
            known[lg.fixture_id] = lg
        busy = {lg.port for lg in loggers if lg.connected}
        for port in discover.candidate_ports():
            if port in busy:
                continue
            hello, why = discover.probe(port)
            if hello is None:
                continue
            fid = hello.get("fixture_id")
            if fid in known:
                known[fid].port = port  # the same fixture back on another port
                continue
            try:
                start(port, fixture_id=fid)
                if any(e["fixture_id"] == fid for e in ended):
                    _say("stackpress log: logging fixture %s again (its logger had stopped)" % fid)
            except (LinkError, DeviceError, LogError, OSError) as e:  # taken meanwhile, gone, or its file
                _say("stackpress log: not yet logging %s: %s" % (port, e))

    code = 0
    try:
        for port in ports:
            if several:
                with open_link(port) as probe_link:
                    fid = probe_link.hello().get("fixture_id")
                start(port, fixture_id=fid)
            else:
                start(port)
        if scan:
            scan_now()
            if not loggers:
                _say("stackpress log: no fixture found yet (USB Picos and running 'stackpress sim'); still looking")
        scanned = shown = time.monotonic()
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
            if scan and time.monotonic() - scanned >= SCAN_EVERY_S:
                scan_now()
                scanned = time.monotonic()
            if time.monotonic() - shown >= PROGRESS_EVERY_S:
                shown = time.monotonic()
                for lg in loggers:
                    if lg.seq is not None:
                        _say(
                            "  %s: %d rows, boot %s seq %s, %d lost%s"
                            % (
                                lg.fixture_id,
                                lg.log.rows,
                                lg.seq.boot,
                                lg.seq.last,
                                lg.seq.lost,
                                "" if lg.connected else ", waiting for the fixture",
                            )
                        )
            if not scan and loggers and not any(t.is_alive() for t in threads):
                break
    except KeyboardInterrupt:
        pass
    except (LinkError, DeviceError, LogError) as e:
        if os.environ.get("STACKPRESS_DEBUG"):
            import traceback

            traceback.print_exc()
        _say("stackpress log: %s" % e)
        code = 3 if isinstance(e, LinkError) else 4 if isinstance(e, DeviceError) else 2
    finally:
        stop.set()
        for t in threads:  # each closes its file, and says goodbye on the broker (a minute at most)
            t.join(60)
    summaries = ended + [lg.summary() for lg in loggers]
    for s in summaries:
        _say(
            "wrote %d rows to %s (%d lost, %d duplicates dropped)%s"
            % (
                s["rows"],
                s["file"],
                s["lost"],
                s["duplicates_dropped"],
                "; stopped early: " + s["error"] if "error" in s else "",
            )
        )
        if "error" in s and code == 0:
            code = 1
    if as_json:
        print(json.dumps({"fixtures": summaries}))
    return code
