"""A log as one table: every telemetry record of a stackpress log (a CSV or SQLite file, or
a rotating set of them) in a pandas DataFrame with typed columns. The reader behind
`stackpress report`, `tempco`, and `stackpress.read_log` in a notebook.

It reads a chunk at a time into columns allocated once, so a month of 1 s records
(2.6 M rows) takes a few hundred MB, not the gigabytes a table of Python objects would:
measured values are float64 (or float32 with compact=True: 7 significant digits, what the
RP2040 computes them in, in half the memory), counts and keys int64, the text columns
categorical, `host_time_utc` a UTC timestamp.

The DataFrame's `attrs` hold the rest of the log:
  meta    the first file's metadata (`# key: value` lines or the `meta` table), with
          `files` (how many were read) and `time_axis` (what `elapsed_s` counts);
  events  the event records (the fixture's JSON fields with boot, seq, device_ms and
          host_time_utc), in order;
  notes   the log's note lines (lost records, reboots, audit and people's notes), in order.
`elapsed_s` is seconds from the first record on the log's time axis: the host's clock for a
real fixture; for the virtual one, which runs faster than real time, its own device time,
each boot continuing where the last one ended.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .logfile import INTEGER_COLUMNS, TEXT_COLUMNS, LogError, format_of
from .timebase import device_elapsed_s

CHUNK_ROWS = 65536
NAT = np.iinfo(np.int64).min  # numpy's "not a time" as int64
# Integer counts that float32 would round (its integers stop at 2**24).
WIDE_COLUMNS = {"raw_counts"}
# Kept as text, not parsed: an event's JSON
EVENT_COLUMN = "event"
TIME_COLUMN = "host_time_utc"
# what places a record in time and says what it is: read whatever `columns` says
HOST_CLOCK = "host clock, UTC"  # meta["time_axis"] when elapsed_s is the host's clock
ALWAYS_READ = {"boot", "device_ms", TIME_COLUMN, "state", EVENT_COLUMN}


class _Source:
    """One log file: its metadata, notes, number of data lines, columns, and its rows a
    chunk at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.meta: dict[str, str] = {}
        self.notes: list[str] = []
        self.columns: list[str] = []
        self.lines = 0
        self.wanted: Callable[[str], bool] = lambda c: True

    def chunks(self) -> Iterator[pd.DataFrame]:
        raise NotImplementedError


class _CsvSource(_Source):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._skip: list[int] = []
        header = None
        try:
            f = open(path, "rb")
        except OSError as e:
            raise LogError("can't read %s: %s" % (path, e.strerror)) from None
        with f:
            i = -1
            last = b""
            for i, line in enumerate(f):
                last = line
                if line[:1] == b"#":
                    self._skip.append(i)
                    body = line[1:].strip().decode(errors="replace")
                    k, sep, v = body.partition(": ")
                    if header is None and sep and k.replace("_", "").isalnum():
                        self.meta.setdefault(k, v)
                    else:
                        self.notes.append(body)
                elif header is None:
                    header = line.decode(errors="replace").rstrip("\r\n").split(",")
                else:
                    self.lines += 1
            if last and not last.endswith(b"\n") and last[:1] != b"#" and header is not None and self.lines:
                self._skip.append(i)  # a torn last line: its logger was killed mid-write
                self.lines -= 1
        if header is None or "pressure_mpa" not in header or "seq" not in header:
            raise LogError("%s is not a stackpress log (no pressure_mpa/seq header)" % path)
        self.columns = header

    def chunks(self) -> Iterator[pd.DataFrame]:
        if not self.lines:
            return
        text = {c: object for c in self.columns if c in TEXT_COLUMNS or c == EVENT_COLUMN}
        try:
            yield from pd.read_csv(
                self.path,
                usecols=[c for c in self.columns if self.wanted(c)],
                skiprows=set(self._skip),
                dtype=text,
                keep_default_na=False,
                na_values={c: [""] for c in self.columns if c not in text},
                chunksize=CHUNK_ROWS,
            )
        except (ValueError, pd.errors.ParserError) as e:
            raise LogError("%s: a row that is not a log record: %s" % (self.path, e)) from None


class _SqliteSource(_Source):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        db = self._open()
        try:
            self.meta = dict(db.execute("SELECT key, value FROM meta"))
            self.columns = [r[1] for r in db.execute("PRAGMA table_info(records)")]
            self.lines = db.execute("SELECT count(*) FROM records").fetchone()[0]
            self.notes = [t for (t,) in db.execute("SELECT text FROM notes ORDER BY rowid")]
        except sqlite3.Error as e:
            raise LogError("%s is not a stackpress log: %s" % (path, e)) from None
        finally:
            db.close()
        if "pressure_mpa" not in self.columns:
            raise LogError("%s is not a stackpress log (no pressure_mpa column)" % path)

    def _open(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect("file:%s?mode=ro" % self.path, uri=True)
        except sqlite3.Error as e:
            raise LogError("can't read %s: %s" % (self.path, e)) from None

    def chunks(self) -> Iterator[pd.DataFrame]:
        db = self._open()
        try:
            cols = [c for c in self.columns if self.wanted(c)]
            cur = db.execute("SELECT %s FROM records ORDER BY rowid" % ", ".join('"%s"' % c for c in cols))
            while True:
                rows = cur.fetchmany(CHUNK_ROWS)
                if not rows:
                    break
                yield pd.DataFrame.from_records(rows, columns=cols, coerce_float=True)
        except sqlite3.Error as e:
            raise LogError("%s: %s" % (self.path, e)) from None
        finally:
            db.close()


def _source(path: str) -> _Source:
    return _SqliteSource(path) if format_of(path) == "sqlite" else _CsvSource(path)


def _dtype(col: str, compact: bool) -> Any:
    if col in INTEGER_COLUMNS:
        return np.int64
    if col in WIDE_COLUMNS or not compact:
        return np.float64
    return np.float32


class _Columns:
    """The table's columns, allocated once for every data line, filled a chunk at a time."""

    def __init__(self, names: list[str], lines: int, compact: bool) -> None:
        self.names = names
        self.n = 0
        self.num = {
            c: np.zeros(lines, np.int64) if c in INTEGER_COLUMNS else np.full(lines, np.nan, _dtype(c, compact))
            for c in names
            if c not in TEXT_COLUMNS
        }
        self.time_ms = np.zeros(lines, np.int64)
        self.text: dict[str, list[pd.Categorical]] = {c: [] for c in names if c in TEXT_COLUMNS and c != TIME_COLUMN}

    def add(self, chunk: pd.DataFrame, path: str) -> None:
        k = len(chunk)
        if not k:
            return
        a, b = self.n, self.n + k
        for c, arr in self.num.items():
            if c in chunk:
                v = pd.to_numeric(chunk[c], errors="coerce")
                if c in INTEGER_COLUMNS and v.isna().any():
                    raise LogError("%s: a record without its %s" % (path, c))
                arr[a:b] = v.to_numpy(dtype=arr.dtype, na_value=np.nan) if c not in INTEGER_COLUMNS else v.to_numpy()
        if TIME_COLUMN not in chunk:  # a log not written by stackpress: no host times
            self.time_ms[a:b] = NAT
        else:
            try:
                t = pd.to_datetime(chunk[TIME_COLUMN], format="ISO8601", utc=True)
            except ValueError as e:
                raise LogError("%s: a record whose %s is not a time: %s" % (path, TIME_COLUMN, e)) from None
            self.time_ms[a:b] = t.to_numpy(dtype="datetime64[ms]").astype(np.int64)
        for c, parts in self.text.items():
            col = chunk[c].fillna("").astype(str) if c in chunk else pd.Series([""] * k)
            parts.append(pd.Categorical(col))
        self.n = b

    def frame(self, virtual: bool) -> pd.DataFrame:
        """The table, with `elapsed_s` on the device's time (`virtual`) or the host's."""
        n = self.n
        out: dict[str, Any] = {}
        elapsed = device_elapsed_s(self.num["boot"][:n], self.num["device_ms"][:n]) if virtual else None
        names = self.names if TIME_COLUMN in self.names else self.names + [TIME_COLUMN]
        for c in names:
            if c == TIME_COLUMN:
                ms = self.time_ms[:n]
                if elapsed is None:
                    elapsed = ms.astype(np.float64)
                    elapsed -= elapsed[0] if n else 0.0
                    elapsed /= 1000.0
                out[c] = pd.DatetimeIndex(ms.view("datetime64[ms]")).tz_localize("UTC")
                self.time_ms = ms = np.zeros(0, np.int64)
            elif c in self.num:
                out[c] = self.num[c][:n]
            elif c in self.text:
                parts = self.text[c]
                out[c] = pd.api.types.union_categoricals(parts) if parts else pd.Categorical([])
        out["elapsed_s"] = elapsed
        return pd.DataFrame(out, copy=False)


def read_log(
    paths: str | Path | Sequence[str | Path],
    progress: Callable[[str], None] | None = None,
    columns: Callable[[str], bool] | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    """Every telemetry record of the log in `paths` (one file, or a rotating log's files in
    any order: they are read oldest first) as a DataFrame; metadata, events and notes in its
    `attrs` (see the module's doc). Only the columns `columns` accepts are read (the keys
    always are); `compact` reads measured values as float32. LogError when a file is not a
    stackpress log."""
    names = [str(paths)] if isinstance(paths, (str, Path)) else sorted(str(p) for p in paths)
    if not names:
        raise LogError("no log file given")
    sources = [_source(p) for p in names]

    def wanted(c: str) -> bool:
        return c in ALWAYS_READ or columns is None or columns(c)

    cols: list[str] = []
    for s in sources:
        s.wanted = wanted
        cols += [c for c in s.columns if c not in cols and c != EVENT_COLUMN and wanted(c)]
    total = sum(s.lines for s in sources)
    table = _Columns(cols, total, compact)
    events: list[dict[str, Any]] = []
    notes: list[str] = []
    for s in sources:
        notes += s.notes
        for chunk in s.chunks():
            if EVENT_COLUMN in chunk:
                is_event = chunk[EVENT_COLUMN].fillna("").astype(str) != ""
                if is_event.any():
                    events += _events(chunk[is_event])
                    chunk = chunk[~is_event]
            table.add(chunk, s.path)
            if progress:
                progress("read %d of %d records" % (table.n, total))
    meta: dict[str, Any] = dict(sources[0].meta)
    meta["files"] = len(sources)
    virtual = meta.get("board") == "virtual"
    if not table.n:
        meta["time_axis"] = "no records"
    elif virtual:
        meta["time_axis"] = "virtual fixture time, faster than real time"
    elif (table.time_ms[: table.n] == NAT).any():
        virtual = True
        meta["time_axis"] = "the fixture's clock (the log has records without the host's time)"
    else:
        meta["time_axis"] = HOST_CLOCK
    df = table.frame(virtual)
    df.attrs.update(meta=meta, events=events, notes=notes)
    return df


def _events(rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    seqs = rows["seq"] if "seq" in rows else [None] * len(rows)
    for boot, seq, dev, when, ev in zip(rows["boot"], seqs, rows["device_ms"], rows[TIME_COLUMN], rows["event"]):
        try:
            d = dict(json.loads(ev), boot=int(boot), device_ms=int(dev), host_time_utc=str(when))
            if seq is not None:
                d["seq"] = int(seq)
            out.append(d)
        except (ValueError, TypeError):
            continue
    return out
