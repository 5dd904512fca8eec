"""The files a log is written to: CSV or SQLite, one file or a series of them.

CSV: metadata lines start with '#'; then a header; then one row per telemetry record
and one per event (its JSON in the `event` column). Each row is one write() on a file
opened for appending and the file is fsync'd every second, so a killed logger leaves at
most a torn last line, which the next logger on the same file cuts off before it resumes.

SQLite (for long runs: indexed, no parsing): tables `meta` (key, value), `records` (the
CSV's columns, typed) and `notes` (what the CSV writes as '#' lines). Rows are committed
at least every loop of the logger (a fraction of a second); a killed logger loses only
uncommitted rows, which the next one asks the fixture to replay, so nothing is lost.

A rotating log is a series of such files, a fresh one each UTC day and/or when the
current one reaches a size: <stem>.<start, UTC><ext>, so they sort in time order. Each
has the whole metadata header and says which file it continues.

A log belongs to one fixture (`fixture_id` in its metadata) and is written by one logger
at a time (an exclusive lock on the file while it is open). Rows carry the boot's
identity (`boot_id`, drawn by the firmware at each boot) besides its count: a fixture whose
flash was wiped counts its boots from 1 again, and its records are still told apart.
"""

from __future__ import annotations

import datetime
import fcntl
import glob
import json
import os
import sqlite3
import stat
import time
from collections.abc import Sequence
from typing import Any

from .timebase import utc_text

# The host's columns around the fixture's record fields (which the fixture announces: its
# `schema` command; the firmware's history.py is the one description of them).
KEY_COLUMNS = ["boot", "seq", "device_ms", "host_time_utc"]
TAIL_COLUMNS = ["alarms", "event", "boot_id", "time_source"]
TEXT_COLUMNS = {"state", "host_time_utc", "alarms", "event", "boot_id", "time_source"}
INTEGER_COLUMNS = {"boot", "seq", "device_ms"}


class LogError(Exception):
    """The file given can't be this fixture's log (another fixture's, a device, a folder
    that does not exist, one another logger writes): exit code 2, nothing written."""


# The physical quantities among a log's columns: the unit each name ends in, and that unit
# as it is written out (report reads only these; export labels them).
QUANTITY_UNITS = {"_mpa": "MPa", "_n": "N", "_um": "um", "_c": "degC", "_pct": "%", "_mm": "mm"}
QUANTITY_SUFFIXES = tuple(QUANTITY_UNITS)
UNITS = (
    "units are in the column names (_mpa, _n, _um, _c: degC, _mm, _pct, _ms); what each of the fixture's "
    "fields means: firmware/stackpress/PROTOCOL.md. host_time_utc: when the record was measured (UTC, the "
    "host's clock: live, or for a record read later from the fixture's history by its boot's clock, as "
    "time_source says); boot: the fixture's boot count, boot_id: that boot's identity, seq: record number "
    "within the boot; event: an event record's fields (JSON)"
)


def columns(
    record_fields: Sequence[str],
) -> list[str]:
    """A log's columns for records with `record_fields` (the fixture's `schema`)."""
    skip = set(KEY_COLUMNS) | set(TAIL_COLUMNS)
    return KEY_COLUMNS + [f for f in record_fields if f not in skip] + TAIL_COLUMNS


def _fields_of(cols: list[str]) -> list[str]:
    """The telemetry columns among a file's columns."""
    return [c for c in cols if c not in KEY_COLUMNS and c not in TAIL_COLUMNS]


def _new_columns(meta: dict[str, Any], path: str) -> list[str]:
    """The columns of a new log: from the record fields in its metadata."""
    f = meta.get("record_fields")
    if isinstance(f, str):
        try:
            f = json.loads(f)
        except ValueError:
            f = None
    if not isinstance(f, list) or not all(isinstance(x, str) for x in f):
        raise LogError(
            "%s: a new log needs the fixture's record fields (metadata 'record_fields', from its "
            "'schema' command)" % path
        )
    return columns(f)


def utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def values(
    rec: dict[str, Any], when: str, cols: list[str], boot_id: str | None = None, source: str | None = None
) -> list[int | str | float | None]:
    """A record as the values of a file's columns: `when` the UTC time it was measured,
    `boot_id` its boot's identity, `source` how its time is known ("live", "replayed")."""
    d = {
        "boot": rec.get("boot"),
        "seq": rec.get("seq"),
        "device_ms": rec.get("device_ms"),
        "host_time_utc": when,
        "boot_id": boot_id,
        "time_source": source,
    }
    if rec.get("t") == "tel":
        d["alarms"] = "|".join(rec.get("alarms", []))
        return [d[c] if c in d else rec.get(c) for c in cols]
    d["event"] = json.dumps({k: v for k, v in rec.items() if k not in ("t", "seq", "device_ms", "boot")})
    return [d.get(c) for c in cols]


def meta_text(v: Any) -> str:
    """A metadata value on one line: text as it is, unless it holds a line break or other
    control character (a device's text must not add lines to the header): then as JSON."""
    if isinstance(v, str) and v.isprintable():
        return v
    return json.dumps(v)


def _lock(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogError(
            "%s is being written by another stackpress logger: one logger per file "
            "(stop the other, or give another --out)" % path
        ) from None


def _check_path(path: str, exists: bool) -> None:
    """A log is a regular file in a folder that exists."""
    if exists:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise LogError("%s is not a regular file: a log goes to a file (or --out DIR/ for one per fixture)" % path)
    else:
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise LogError("the folder %s does not exist: create it, or give another --out" % d)


def check_owner(path: str, meta_of_file: dict[str, str], meta: dict[str, Any]) -> None:
    """A log is resumed only by the fixture it belongs to."""
    theirs = meta_of_file.get("fixture_id")
    ours = meta.get("fixture_id")
    if theirs and ours and theirs != ours:
        raise LogError(
            "%s is the log of fixture %s; this is fixture %s. A log holds one fixture: give "
            "another --out (or --out DIR/ for a file per fixture)" % (path, theirs, ours)
        )


class CsvLog:
    """New: metadata and header. Existing (resume): its torn last line cut off, and the
    last (boot, seq) written read back."""

    def __init__(self, path: str, meta: dict[str, Any], resume: bool = False) -> None:
        exists = os.path.exists(path)
        if exists and not resume:
            raise FileExistsError(path)
        _check_path(path, exists)
        self.path = path
        self.last: tuple[Any, Any] | None = None  # (boot, seq) of the last row
        self.last_boot_id = None
        self.rows = 0
        self.gaps = 0
        self.cols: list[str] = [] if exists else _new_columns(meta, path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _lock(self.fd, path)
        if exists:
            try:
                check_owner(path, _csv_meta(path), meta)
            except LogError:
                os.close(self.fd)
                raise
            self._cut_torn_line()
            self.cols = _header(path) or _new_columns(meta, path)  # the file's own columns go on
            self.last, self.last_boot_id = _last_key(path, self.cols)
        self.fields = _fields_of(self.cols)
        self._synced = time.monotonic()
        if not exists:
            head = "".join("# %s: %s\n" % (k, meta_text(v)) for k, v in meta.items())
            self._put(head + ",".join(self.cols) + "\n")
        else:
            self.note("resumed %s by a new logger; last row was boot %s seq %s" % (utc(), *(self.last or ("-", "-"))))

    def _cut_torn_line(self) -> None:
        """A killed logger's half-written last row goes; only the file's tail is read."""
        with open(self.path, "rb+") as f:
            end = f.seek(0, 2)
            pos = end
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                if pos == end and chunk.endswith(b"\n"):
                    return
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    f.truncate(pos - step + nl + 1)
                    return
                pos -= step
            f.truncate(0)

    def _put(self, text: str) -> None:
        b = text.encode()
        n = os.write(self.fd, b)  # one write per row: appended whole
        while n < len(b):
            n += os.write(self.fd, b[n:])

    def flush(self) -> None:
        if time.monotonic() - self._synced >= 1.0:
            os.fsync(self.fd)
            self._synced = time.monotonic()

    def size_bytes(self) -> int:
        return os.fstat(self.fd).st_size

    def note(self, text: str) -> None:
        self._put("# %s\n" % text)

    def row(
        self,
        rec: dict[str, Any],
        boot_id: str | None = None,
        measured_ms: float | None = None,
        source: str | None = None,
    ) -> None:
        when = utc() if measured_ms is None else utc_text(measured_ms)
        self._put(",".join(_cell(v) for v in values(rec, when, self.cols, boot_id, source)) + "\n")
        self.rows += 1
        self.last = (rec.get("boot"), rec.get("seq"))
        self.last_boot_id = boot_id
        self.flush()

    def write(self, rec: dict[str, Any]) -> None:
        """Write a record as it comes, noting holes and reboots (no replay)."""
        seq = rec.get("seq")
        if self.last is not None and isinstance(seq, int) and seq != self.last[1] + 1:
            if seq <= self.last[1] and rec.get("t") == "evt" and rec.get("kind") == "boot":
                self.note("fixture rebooted: sequence restarts at %d" % seq)
            else:
                self.gaps += 1
                self.note("gap: records %d..%d not received" % (self.last[1] + 1, seq - 1))
        self.row(rec)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


def _csv_meta(path: str) -> dict[str, str]:
    """The metadata of a CSV log (its '# key: value' lines before the header)."""
    meta: dict[str, str] = {}
    with open(path, newline="", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                break
            k, sep, v = line[1:].strip().partition(": ")
            if sep:
                meta.setdefault(k, v)
    return meta


def _header(path: str) -> list[str] | None:
    """The column names of a CSV log (its first line that is not metadata), or None."""
    with open(path, newline="", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                return line.rstrip("\r\n").split(",")
    return None


def _last_key(path: str, cols: list[str] | None = None) -> tuple[tuple[int, int] | None, str | None]:
    """((boot, seq), boot_id) of the last data row of a CSV log; (None, None) if none."""
    cols = cols or _header(path) or []
    at = cols.index("boot_id") if "boot_id" in cols else None
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 65536))
        lines = f.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        if line and not line.startswith("#") and not line.startswith("boot,"):
            parts = line.split(",")
            try:
                key = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                continue
            # boot_id is last, after the event's JSON (which may hold commas): count from the end
            bid = parts[at - len(cols)] if at is not None and len(parts) >= len(cols) else None
            return key, bid or None
    return None, None


def last_key(path: str) -> tuple[int, int] | None:
    """(boot, seq) of the last row of a log file of either format, or None."""
    if format_of(path) == "csv":
        return _last_key(path)[0]
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        r = db.execute("SELECT boot, seq FROM records ORDER BY rowid DESC LIMIT 1").fetchone()
    finally:
        db.close()
    return (r[0], r[1]) if r else None


def _sql_type(col: str) -> str:
    return "TEXT" if col in TEXT_COLUMNS else "INTEGER" if col in INTEGER_COLUMNS else "REAL"


def _cell(v: float | str | int | None) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        return str(v)
    if "," in v or '"' in v or "\n" in v:
        return '"' + v.replace('"', '""') + '"'
    return v


class SqliteLog:
    def __init__(self, path: str, meta: dict[str, Any], resume: bool = False) -> None:
        exists = os.path.exists(path)
        if exists and not resume:
            raise FileExistsError(path)
        _check_path(path, exists)
        self.path = path
        self.rows = 0
        self.last_boot_id = None
        # One logger per file: a lock on a descriptor of our own (SQLite's are its own business).
        self._lockfd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        _lock(self._lockfd, path)
        # Opened by the main thread, then written by the fixture's logger thread alone.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")  # a killed writer never leaves a torn database
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if exists and tables and "records" not in tables:
            self.close()
            raise LogError("%s is not a stackpress log (no records table)" % path)
        if "meta" in tables:
            try:
                check_owner(path, dict(self.db.execute("SELECT key, value FROM meta")), meta)
            except LogError:
                self.db.close()
                os.close(self._lockfd)
                raise
        self.db.execute("BEGIN")
        if not exists or not tables:
            try:
                self.cols = _new_columns(meta, path)
            except LogError:
                self.close()
                raise
            cols = ", ".join("%s %s" % (c, _sql_type(c)) for c in self.cols)
            self.db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute("CREATE TABLE records (%s)" % cols)
            self.db.execute("CREATE INDEX records_by_key ON records (boot, seq)")
            self.db.execute("CREATE TABLE notes (host_time_utc TEXT, after_row INTEGER, text TEXT)")
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, meta_text(v)) for k, v in meta.items()])
            self.last = None
        else:
            self.cols = [r[1] for r in self.db.execute("PRAGMA table_info(records)")]
            bid = "boot_id" if "boot_id" in self.cols else "NULL"
            r = self.db.execute("SELECT boot, seq, %s FROM records ORDER BY rowid DESC LIMIT 1" % bid).fetchone()
            self.last = tuple(r[:2]) if r else None
            self.last_boot_id = r[2] if r else None
            self.note("resumed %s by a new logger; last row was boot %s seq %s" % (utc(), *(self.last or ("-", "-"))))
        self.fields = _fields_of(self.cols)
        self._insert = "INSERT INTO records VALUES (%s)" % ", ".join("?" * len(self.cols))
        self.flush()

    def note(self, text: str) -> None:
        self.db.execute("INSERT INTO notes VALUES (?, (SELECT max(rowid) FROM records), ?)", (utc(), text))

    def row(
        self,
        rec: dict[str, Any],
        boot_id: str | None = None,
        measured_ms: float | None = None,
        source: str | None = None,
    ) -> None:
        when = utc() if measured_ms is None else utc_text(measured_ms)
        self.db.execute(self._insert, values(rec, when, self.cols, boot_id, source))
        self.rows += 1
        self.last = (rec.get("boot"), rec.get("seq"))
        self.last_boot_id = boot_id

    def flush(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def size_bytes(self) -> int:
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self.db.close()
        os.close(self._lockfd)


FORMATS: dict[str, type[CsvLog] | type[SqliteLog]] = {"csv": CsvLog, "sqlite": SqliteLog}
EXTENSIONS = {".csv": "csv", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite"}


def format_of(path: str) -> str:
    return EXTENSIONS.get(os.path.splitext(path)[1].lower(), "csv")


def segments(base: str) -> list[str]:
    """The files of a rotating log named `base`, oldest first."""
    stem, ext = os.path.splitext(base)
    return sorted(glob.glob(glob.escape(stem) + ".[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*" + ext))


class Rotating:
    """A log kept as a series of files: a new one when the UTC day changes (daily) or the
    current one has reached max_bytes. The same interface as one file."""

    def __init__(
        self, base: str, meta: dict[str, Any], daily: bool = False, max_bytes: int | None = None, resume: bool = True
    ) -> None:
        self.base, self.meta, self.daily, self.max_bytes = base, meta, daily, max_bytes
        self.cls = FORMATS[format_of(base)]
        self.rows = 0
        self.files = 0
        old = segments(base)
        if old and not resume:
            raise FileExistsError(old[-1])
        if old:
            self.cur = self.cls(old[-1], meta, resume=True)
            self.last = self.cur.last
            self.last_boot_id = self.cur.last_boot_id
            for path in reversed(old[:-1]):  # the newest file may have no row yet
                if self.last is not None:
                    break
                self.last = last_key(path)
        else:
            self.cur = self._open(None)
            self.last = None
            self.last_boot_id = None
        self.path = self.cur.path
        self._day = self._day_of(self.path)

    def _day_of(self, path: str) -> str:
        """The UTC day a file of this log began, from its name."""
        return os.path.basename(path)[len(os.path.basename(os.path.splitext(self.base)[0])) + 1 :][:10]

    def _open(self, previous: str | None) -> CsvLog | SqliteLog:
        stem, ext = os.path.splitext(self.base)
        now = datetime.datetime.now(datetime.timezone.utc)
        path = "%s.%s%s" % (stem, now.strftime("%Y-%m-%dT%H%M%S.") + "%03dZ" % (now.microsecond // 1000), ext)
        n = 1
        while os.path.exists(path):
            n += 1
            path = "%s.%s_%d%s" % (stem, now.strftime("%Y-%m-%dT%H%M%S.") + "%03dZ" % (now.microsecond // 1000), n, ext)
        meta = dict(
            self.meta,
            rotation=self._policy(),
            continues=os.path.basename(previous) if previous else "nothing: the first file",
        )
        self.files += 1
        return self.cls(path, meta)

    def _policy(self) -> str:
        parts = (["a new file each UTC day"] if self.daily else []) + (
            ["a new file at %d bytes" % self.max_bytes] if self.max_bytes else []
        )
        return " and ".join(parts)

    def _due(self) -> bool:
        if self.daily and datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d") != self._day:
            return True
        return self.max_bytes is not None and self.cur.size_bytes() >= self.max_bytes

    def row(
        self,
        rec: dict[str, Any],
        boot_id: str | None = None,
        measured_ms: float | None = None,
        source: str | None = None,
    ) -> None:
        if self._due():
            self.cur.note("continued in the next file (rotation)")
            self.cur.close()
            self.cur = self._open(self.cur.path)
            self.path = self.cur.path
            self._day = self._day_of(self.path)
        self.cur.row(rec, boot_id, measured_ms, source)
        self.rows += 1
        self.last = self.cur.last
        self.last_boot_id = boot_id

    def note(self, text: str) -> None:
        self.cur.note(text)

    def flush(self) -> None:
        self.cur.flush()

    def close(self) -> None:
        self.cur.close()


def open_log(
    path: str, meta: dict[str, Any], daily: bool = False, max_bytes: int | None = None
) -> CsvLog | Rotating | SqliteLog:
    """The log at `path` (resumed if it exists), rotating if daily or max_bytes is set."""
    if daily or max_bytes:
        return Rotating(path, meta, daily, max_bytes)
    return FORMATS[format_of(path)](path, meta, resume=True)


def number(text: str) -> float | None:
    """A CSV cell as a float, None when empty or not a number."""
    try:
        return float(text) if text != "" else None
    except ValueError:
        return None
