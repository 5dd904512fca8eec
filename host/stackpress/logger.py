"""Logging a fixture to CSV: every record the fixture sends, once, in order, written through.

Metadata lines start with '#'; then a header; then one row per telemetry record and
one per event (its JSON in the `event` column), ordered by (boot, seq). Each row is
one write() on a file opened for appending and the file is fsync'd every second, so a
killed logger leaves at most a torn last line, which the next `log --out` on the same
file cuts off before it resumes. A hole in the sequence is filled by asking the
fixture to replay it (it keeps a history of its records); what it no longer holds is
written down as lost where it happened, so a loss is never silent. The link is opened
again when it drops (USB unplug, reset): the logger waits for the fixture and catches up.
"""
import datetime
import json
import os
import signal
import sys
import time

from .link import DeviceError, Link, LinkError

TEL_FIELDS = ["state", "pressure_mpa", "setpoint_mpa", "ref_mpa", "p_min_mpa", "p_max_mpa", "n_samples",
              "force_n", "position_um", "thickness_um", "temperature_c", "raw_counts"]
COLUMNS = ["boot", "seq", "device_ms", "host_time_utc"] + TEL_FIELDS + ["alarms", "event"]
UNITS = ("pressure MPa (p_min/p_max: extremes of the n_samples samples since the previous row); force N; "
         "position um (motor travel, + = compression); thickness_um: the cell's thickness change since the "
         "current hold began (+ = thicker); temperature_c: frame thermistor degC; device_ms: ms since boot; "
         "boot: the fixture's boot count, seq: record number within that boot")
REPLAY_RETRY_S = 3.0


def _utc():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class CsvLog:
    """The CSV file. New: metadata and header. Existing (resume): its torn last line cut
    off, and the last (boot, seq) written read back."""

    def __init__(self, path, meta, resume=False):
        exists = os.path.exists(path)
        if exists and not resume:
            raise FileExistsError(path)
        self.path = path
        self.last = None  # (boot, seq) of the last row
        self.rows = 0
        self.gaps = 0
        if exists:
            self._cut_torn_line()
            self.last = _last_key(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not exists:
            head = "".join("# %s: %s\n" % (k, v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items())
            self._put(head + ",".join(COLUMNS) + "\n")
        else:
            self.note("resumed %s by a new logger; last row was boot %s seq %s"
                      % (_utc(), *(self.last or ("-", "-"))))
        self._synced = time.monotonic()

    def _cut_torn_line(self):
        with open(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def _put(self, text):
        b = text.encode()
        n = os.write(self.fd, b)  # one write per row: appended whole
        while n < len(b):
            n += os.write(self.fd, b[n:])
        if time.monotonic() - getattr(self, "_synced", 0) >= 1.0:
            os.fsync(self.fd)
            self._synced = time.monotonic()

    def note(self, text):
        self._put("# %s\n" % text)

    def row(self, rec):
        now = _utc()
        key = [rec.get("boot"), rec.get("seq"), rec.get("device_ms"), now]
        if rec.get("t") == "tel":
            row = key + [rec.get(k) for k in TEL_FIELDS] + ["|".join(rec.get("alarms", [])), ""]
        else:
            ev = {k: v for k, v in rec.items() if k not in ("t", "seq", "device_ms", "boot")}
            row = key + [""] * (len(TEL_FIELDS) + 1) + [json.dumps(ev)]
        self._put(",".join(_cell(v) for v in row) + "\n")
        self.rows += 1
        self.last = (rec.get("boot"), rec.get("seq"))

    def write(self, rec):
        """Write a record as it comes, noting holes and reboots (no replay)."""
        seq = rec.get("seq")
        if self.last is not None and isinstance(seq, int) and seq != self.last[1] + 1:
            if seq <= self.last[1] and rec.get("t") == "evt" and rec.get("kind") == "boot":
                self.note("fixture rebooted: sequence restarts at %d" % seq)
            else:
                self.gaps += 1
                self.note("gap: records %d..%d not received" % (self.last[1] + 1, seq - 1))
        self.row(rec)

    def close(self):
        os.fsync(self.fd)
        os.close(self.fd)


def _last_key(path):
    """(boot, seq) of the last data row of a log, or None."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 65536))
        lines = f.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        if line and not line.startswith("#") and not line.startswith("boot,"):
            parts = line.split(",", 2)
            try:
                return int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                continue
    return None


class Sequencer:
    """Puts records in (boot, seq) order, exactly once: duplicates dropped, records after a
    hole held back while the hole is replayed, and what the fixture no longer has noted
    as lost."""

    def __init__(self, log):
        self.log = log
        self.boot, self.last = log.last if log.last else (None, 0)
        self.pending = {}
        self.want = None       # first seq of a hole to ask for
        self.asked_at = None
        self.duplicates = 0
        self.lost = 0

    def new_boot(self, boot):
        if self.boot is not None:
            self._give_up_pending("the fixture restarted (boot %s)" % boot)
            self.log.note("fixture rebooted: boot %s" % boot)
        self.boot, self.last = boot, 0
        self.want = None

    def offer(self, rec):
        b, s = rec.get("boot"), rec.get("seq")
        if not isinstance(s, int):
            return
        if b != self.boot or (rec.get("kind") == "boot" and s == 1 and self.last >= 1):
            self.new_boot(b)
        if s <= self.last or s in self.pending:
            self.duplicates += 1
            return
        if s == self.last + 1:
            self._write(rec)
            self._drain()
        else:
            self.pending[s] = rec
            if self.want is None:
                self.want = self.last + 1
                self.asked_at = None

    def _write(self, rec):
        self.log.row(rec)
        self.last = rec["seq"]

    def _drain(self):
        while self.last + 1 in self.pending:
            self._write(self.pending.pop(self.last + 1))
        if not self.pending:
            self.want = None

    def replayed(self, reply):
        """The fixture's answer to a replay: records before its from_seq are gone."""
        first = reply["from_seq"]
        if first > self.last + 1:
            gone_to = first - 1
            if self.pending:
                gone_to = min(gone_to, min(self.pending) - 1)
            if gone_to >= self.last + 1:
                self.lost += gone_to - self.last
                self.log.note("lost: records %d..%d of boot %s (the fixture no longer held them)"
                              % (self.last + 1, gone_to, self.boot))
                self.last = gone_to
            self._drain()

    def _give_up_pending(self, why):
        if self.pending:
            first = min(self.pending)
            self.lost += first - self.last - 1
            self.log.note("lost: records %d..%d of boot %s (%s)" % (self.last + 1, first - 1, self.boot, why))
            for s in sorted(self.pending):
                self._write(self.pending.pop(s))

    def catch_up(self, status):
        """After (re)connecting: ask for what was said while no one listened."""
        if status.get("boot") != self.boot:
            self.new_boot(status.get("boot"))
        if status.get("seq", 0) > self.last:
            self.want = self.last + 1
            self.asked_at = None


def metadata(link, status):
    return {
        "stackpress log": "one row per telemetry record or event, in (boot, seq) order",
        "started_utc": _utc(),
        "port": link.port,
        "firmware_version": status["firmware_version"],
        "protocol_version": status["protocol_version"],
        "runtime": status["runtime"],
        "board": status["board"],
        "cell_area_mm2": status["cell_area_mm2"],
        "calibration": status.get("calibration", {}),
        "units": UNITS,
    }


def _say(msg):
    print(msg, file=sys.stderr, flush=True)


def _stop(signum, frame):
    raise KeyboardInterrupt


def record(link, out, duration_s, port=None):
    """Log until duration_s (None: until Ctrl-C or SIGTERM), across unplugs and resets."""
    port = port or link.port
    signal.signal(signal.SIGTERM, _stop)  # systemd's stop, kill: end cleanly, file closed
    status = link.command("status")
    log = CsvLog(out, metadata(link, status), resume=True)
    seq = Sequencer(log)
    link.on_record = seq.offer
    if log.last is None:
        # A new log starts with the oldest record the fixture still holds: its history
        # comes first, and nothing before it is called lost.
        seq.boot = status.get("boot")
        seq.last = max(0, status.get("oldest_seq", 1) - 1)
        log.note("log starts at boot %s seq %d (the fixture's history from there on is replayed first)"
                 % (seq.boot, seq.last + 1))
    seq.catch_up(status)
    end = None if duration_s is None else time.monotonic() + duration_s
    shown = time.monotonic()
    _say("logging %s to %s%s (Ctrl-C stops)" % (port, out, "" if duration_s is None else " for %g s" % duration_s))
    try:
        while end is None or time.monotonic() < end:
            try:
                if link is None:
                    link = _reconnect(port, end)
                    if link is None:
                        break
                    link.on_record = seq.offer
                    seq.catch_up(link.command("status"))
                for rec in link.records(0.2):
                    seq.offer(rec)
                if seq.want is not None and (seq.asked_at is None
                                             or time.monotonic() - seq.asked_at > REPLAY_RETRY_S):
                    seq.asked_at = time.monotonic()
                    try:
                        seq.replayed(link.command("replay", from_seq=seq.want, boot=seq.boot))
                    except DeviceError as e:
                        if e.code != "boot":
                            raise
                        seq.catch_up(link.command("status"))
            except LinkError as e:
                _say("stackpress log: %s; waiting for the fixture to come back" % e)
                try:
                    link.close()
                except Exception:
                    pass
                link = None
            if time.monotonic() - shown >= 5:
                shown = time.monotonic()
                _say("  %d rows, boot %s seq %s, %d lost" % (log.rows, seq.boot, seq.last, seq.lost))
    except KeyboardInterrupt:
        pass
    finally:
        log.close()
        if link is not None:
            link.close()
    _say("wrote %d rows to %s (%d lost, %d duplicates dropped)" % (log.rows, out, seq.lost, seq.duplicates))
    return 0


def _reconnect(port, end):
    while end is None or time.monotonic() < end:
        try:
            link = Link(port)
            link.hello()
            _say("stackpress log: fixture back on %s" % port)
            return link
        except LinkError:
            time.sleep(0.5)
    return None


def _cell(v):
    if v is None:
        return ""
    s = str(v)
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s
