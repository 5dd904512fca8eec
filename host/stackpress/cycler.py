"""A battery cycler's own file as a table, put on a fixture log's time axis.

The vendors' formats are read by the libraries the field maintains, not parsed here:
navani (EC-Lab .mpr, Arbin .res and .xlsx, Neware .nda and .ndax, Maccor text exports, Battery
Data Format CSV) and galvani for EC-Lab text exports (.mpt). `pip install 'stackpress[cycler]'`
installs them; an Arbin .res also needs mdbtools (Debian: `apt-get install mdbtools`). A CSV
with a header naming a time column (stackpress's own simple layout) needs neither.

Units come from each vendor's own columns where they say them (navani's standardised
`Current` is mA for most vendors, but A for an Arbin Excel export). The table:
  test_time_s    seconds from the cycler's start
  time_utc       when, by the cycler's clock (NaT where the file says only relative times);
                 a file with local times (EC-Lab, Arbin, Neware .ndax) is taken in `tz`
  voltage_v, current_a (positive: charging), cycle, step, temperature_c: where the file has them
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .logtable import HOST_CLOCK

# Each quantity: the columns that carry it, first found wins, with the factor to its unit.
# BDF labels and machine names first (battery-data-format, ontology 1.3.0), then vendors'.
TEST_TIME_S = [("Test Time / s", 1.0), ("test_time_second", 1.0), ("Test_Time(s)", 1.0), ("time/s", 1.0)]
UNIX_TIME_S = ["Unix Time / s", "unix_time_second"]
LOCAL_OR_UTC = ["Date_Time", "timestamp", "Timestamp", "DPt Time"]  # naive: local; with a zone: as said
VOLTAGE_V = [("Voltage / V", 1.0), ("voltage_volt", 1.0), ("Voltage(V)", 1.0), ("Ewe/V", 1.0), ("Voltage", 1.0)]
CURRENT_A = [
    ("Current / A", 1.0),
    ("current_ampere", 1.0),
    ("Current(A)", 1.0),
    ("Current(mA)", 1e-3),
    ("I/mA", 1e-3),
    ("Current", 1e-3),  # navani's standard column: mA (checked above against the vendors' own)
]
CYCLE = ["Cycle Count / 1", "cycle_count", "Cycle_Index", "Cycle", "cycle number", "full cycle"]
STEP = ["Step Count / 1", "Step Index / 1", "step_count", "step_index", "Step_Index", "Ns"]
TEMPERATURE_C = [("Ambient Temperature / degC", 1.0), ("ambient_temperature_celsius", 1.0), ("T1", 1.0)]
# stackpress's own simple CSV layout (lower-cased header names)
SIMPLE_CSV = {
    "abs_time": ("datetime", "date_time", "timestamp", "time_utc", "absolute_time"),
    "test_time_s": ("time_s", "test_time_s", "elapsed_s", "time/s"),
    "voltage_v": ("voltage_v", "ewe_v", "ecell_v", "ewe/v", "ecell/v", "voltage(v)", "voltage"),
    "current_ma": ("current_ma", "i/ma", "current(ma)"),
    "current_a": ("current_a", "i/a", "current(a)"),
    "cycle": ("cycle", "cycle_number", "cycle number", "cycle_index"),
    "step": ("step", "step_id", "step_index", "ns"),
}
# ... and the column each becomes, as _standard reads the vendors' own
SIMPLE_AS = {
    "test_time_s": "Test Time / s",
    "voltage_v": "Voltage / V",
    "current_a": "Current / A",
    "current_ma": "Current(mA)",
    "cycle": "Cycle",
    "step": "Step_Index",
}
NAVANI_SUFFIXES = {".mpr", ".res", ".xlsx", ".nda", ".ndax", ".txt", ".csv"}


class CyclerError(Exception):
    """The file can't be read as a cycler's export, or can't be put on the log's axis:
    the message says why and what to do (exit code 2)."""


@dataclass
class Cycler:
    path: str
    table: pd.DataFrame
    reader: str  # which library read it, and its version
    clock: str  # what time_utc is: "UTC", "local time, taken as UTC+01:00", "none"
    notes: list[str] = field(default_factory=list)

    @property
    def has_clock(self) -> bool:
        return bool(self.table["time_utc"].notna().any())


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in (module, "datalab-org-" + module):
        try:
            return "%s %s" % (module, version(dist))
        except PackageNotFoundError:
            continue
    return module


def _numbers(col: pd.Series) -> pd.Series:
    """A column as float64; one a reader gave as float32 through its shortest decimals
    (3.4666, not the 3.466599941 a plain cast shows)."""
    if col.dtype == np.float32:
        return pd.Series(col.to_numpy().astype(str).astype(float), index=col.index)
    return pd.to_numeric(col, errors="coerce").astype(float)


def _first(df: pd.DataFrame, names: list[Any]) -> tuple[str, float] | None:
    for n in names:
        name, factor = n if isinstance(n, tuple) else (n, 1.0)
        if name in df.columns and pd.to_numeric(df[name], errors="coerce").notna().any():
            return name, factor
    return None


def _zone(tz: str | None) -> datetime.tzinfo:
    if tz is None:
        return datetime.datetime.now().astimezone().tzinfo or datetime.timezone.utc
    if tz.upper() == "UTC":
        return datetime.timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        pass
    try:  # +02:00
        return datetime.datetime.strptime(tz, "%z").tzinfo or datetime.timezone.utc
    except ValueError:
        raise CyclerError(
            "--cycler-tz %r is not a time zone: a name (Europe/Berlin), UTC, or an offset (+02:00)" % tz
        ) from None


def _arbin(raw: pd.DataFrame) -> pd.DataFrame:
    """An Arbin .res's own columns say no unit (its database: seconds, amperes, volts, and
    DateTime in days since 1899-12-30, local time), and navani leaves them so: named here,
    before its mA-based `Current` is taken for them."""
    if not ("Cycle_Index" in raw.columns and "Test_Time" in raw.columns and "Current(A)" not in raw.columns):
        return raw
    raw = raw.rename(columns={"Test_Time": "Test_Time(s)", "Current": "Current(A)"})
    if "DateTime" in raw.columns and pd.api.types.is_numeric_dtype(raw["DateTime"]):
        raw["Date_Time"] = pd.to_datetime(raw["DateTime"], unit="D", origin="1899-12-30")
    return raw


def _standard(raw: pd.DataFrame, path: str, reader: str, tz: str | None) -> Cycler:
    """The table from a reader's columns, units from the vendors' own columns."""
    raw = _arbin(raw)
    out = pd.DataFrame(index=raw.index)
    notes = []
    clock = "none"
    when = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    unix = _first(raw, UNIX_TIME_S)
    stamp = next((c for c in LOCAL_OR_UTC if c in raw.columns), None)
    if unix:
        when = pd.to_datetime(pd.to_numeric(raw[unix[0]], errors="coerce"), unit="s", utc=True)
        clock = "UTC"
    elif stamp:
        t = pd.to_datetime(raw[stamp], errors="coerce")
        if getattr(t.dt, "tz", None) is not None:
            when = t.dt.tz_convert("UTC")
            clock = "UTC"
        else:
            zone = _zone(tz)
            when = t.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
            clock = "local time, taken as %s" % (tz or "this computer's zone (%s)" % zone)
            if tz is None:
                notes.append(
                    "the cycler's file has local times: taken in this computer's zone (%s); --cycler-tz ZONE "
                    "if the cycler's PC kept another" % zone
                )
    tt = _first(raw, TEST_TIME_S)
    if tt:
        out["test_time_s"] = _numbers(raw[tt[0]]) * tt[1]
    elif when.notna().any():
        out["test_time_s"] = (when - when.dropna().iloc[0]).dt.total_seconds()
    else:
        raise CyclerError("%s (read by %s): no column of the test's time" % (path, reader))
    out["time_utc"] = when.dt.as_unit("ms")  # as a log's host_time_utc: the two merge
    for key, names in (("voltage_v", VOLTAGE_V), ("current_a", CURRENT_A), ("temperature_c", TEMPERATURE_C)):
        col = _first(raw, names)
        out[key] = _numbers(raw[col[0]]) * col[1] if col else np.nan
    for key, counts in (("cycle", CYCLE), ("step", STEP)):
        found = _first(raw, counts)
        out[key] = pd.to_numeric(raw[found[0]], errors="coerce").round().astype("Int64") if found else pd.NA
    out = out[out["test_time_s"].notna()].reset_index(drop=True)
    if not len(out):
        raise CyclerError("%s (read by %s): no row with a time" % (path, reader))
    return Cycler(path, out, reader, clock, notes)


def _simple_csv(path: str, tz: str | None) -> Cycler | None:
    """stackpress's simple layout, or None when the header is not it."""
    try:
        head = pd.read_csv(path, nrows=0)
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    lower = {c.strip().lower(): c for c in head.columns}
    col = {}
    for key, aliases in SIMPLE_CSV.items():
        for a in aliases:
            if a in lower:
                col[key] = lower[a]
                break
    if "abs_time" not in col and "test_time_s" not in col:
        return None
    raw = pd.read_csv(path)
    renamed = pd.DataFrame(index=raw.index)
    if "abs_time" in col:
        t = pd.to_datetime(raw[col["abs_time"]], errors="coerce", utc=False, format="ISO8601")
        renamed["Timestamp"] = t
    for key, name in SIMPLE_AS.items():
        if key in col and not (key == "current_ma" and "current_a" in col):  # amperes first
            renamed[name] = raw[col[key]]
    try:
        return _standard(renamed, path, "stackpress (a CSV with a time column)", tz)
    except CyclerError:  # its time column holds no time this layout knows
        return None


def _navani(path: str) -> pd.DataFrame:
    try:
        import navani.echem as ec
    except ImportError:
        raise CyclerError(
            "%s: reading a cycler's own format needs navani: pip install 'stackpress[cycler]'" % path
        ) from None
    src = path
    tmp = None
    suffix = Path(path).suffix.lower()
    if suffix[1:].isdigit():  # Maccor numbers its exports .001, .002, ...: navani knows them as .txt
        tmp = tempfile.mkdtemp(prefix="stackpress-cycler-")
        src = os.path.join(tmp, Path(path).stem + ".txt")
        shutil.copyfile(path, src)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ec.echem_file_loader(src)
    except Exception as e:  # noqa: BLE001 - a reader's failure is a message for the user
        text = str(e)
        if "mdb-export" in text:
            raise CyclerError("%s: an Arbin .res needs mdbtools (apt-get install mdbtools)" % path) from None
        raise CyclerError("%s: navani could not read it (%s: %s)" % (path, type(e).__name__, text[:200])) from None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _mpt(path: str) -> pd.DataFrame:
    """An EC-Lab text export through galvani, which wants Windows line endings: a copy with
    them (EC-Lab's own files have them; copies that went through git often do not)."""
    try:
        from galvani import BioLogic
    except ImportError:
        raise CyclerError("%s: reading an EC-Lab .mpt needs galvani: pip install 'stackpress[cycler]'" % path) from None
    data = Path(path).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with tempfile.NamedTemporaryFile(suffix=".mpt") as f:
        f.write(data)
        f.flush()
        try:
            records, comments = BioLogic.MPTfile(f.name, encoding="latin1")
        except Exception as e:  # noqa: BLE001
            why = "%s: %s" % (type(e).__name__, str(e)[:200])
            raise CyclerError("%s: galvani could not read it (%s)" % (path, why)) from None
    df = pd.DataFrame(records)
    started = next((c for c in comments if c.startswith(b"Acquisition started on")), None)
    if started and "time/s" in df.columns:
        text = started.split(b":", 1)[1].strip().decode("latin1")
        for fmt in ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S"):
            try:
                t0 = datetime.datetime.strptime(text, fmt)
            except ValueError:
                continue
            df["timestamp"] = pd.Timestamp(t0) + pd.to_timedelta(pd.to_numeric(df["time/s"]), unit="s")
            break
    if "I/mA" not in df.columns and "<I>/mA" in df.columns:
        df["I/mA"] = df["<I>/mA"]
    return df


def read(path: str | Path, tz: str | None = None) -> Cycler:
    """The cycler's file at `path` as a table (see the module's doc); CyclerError when no
    maintained reader reads it, with what was tried."""
    path = str(path)
    if not os.path.isfile(path):
        raise CyclerError("can't read %s: no such file" % path)
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        simple = _simple_csv(path, tz)
        if simple is not None:
            return simple
        try:
            return _standard(_navani(path), path, _version("navani"), tz)
        except CyclerError as e:
            raise CyclerError(
                "%s; nor is it stackpress's simple layout (a header with time_s, or datetime in ISO 8601, "
                "and voltage_v, current_a or current_ma, cycle, step)" % e
            ) from None
    if suffix == ".mpt":
        return _standard(_mpt(path), path, _version("galvani") + " (BioLogic .mpt)", tz)
    if suffix in NAVANI_SUFFIXES or suffix[1:].isdigit():
        return _standard(_navani(path), path, _version("navani"), tz)
    raise CyclerError(
        "%s: not a cycler export stackpress knows (EC-Lab .mpr/.mpt, Arbin .res/.xlsx, Neware "
        ".nda/.ndax, Maccor .txt/.NNN, BDF .csv, or a CSV with a time column)" % path
    )


def on_log_axis(
    cyc: Cycler,
    log_t0: pd.Timestamp,
    log_end_s: float,
    align: str | None,
    virtual: bool,
    log_device0_s: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The cycler's rows' times in seconds on the log's axis (0: the log's first record), and
    what to tell the user. `align`: None (by the clocks), "start" (the cycler's start at the
    log's first record), "device" (its test time is the fixture's device clock, which read
    `log_device0_s` at the log's first record: the virtual fixture's own cycler) or an ISO
    time (the cycler's start then, UTC unless it says). CyclerError when the two do not
    overlap at all."""
    notes = list(cyc.notes)
    tt = cyc.table["test_time_s"].to_numpy(dtype=float)
    if align is None and (virtual or not cyc.has_clock):
        align = "start"
        notes.append(
            "the cycler's file put at the log's start (%s)"
            % ("the virtual fixture runs faster than real time" if virtual else "it has no clock time")
        )
    if align is None:
        when = cyc.table["time_utc"]
        t = (when - log_t0).dt.total_seconds().to_numpy(dtype=float)
        offset_s = float(np.nanmin(t))
        hours = round(offset_s / 3600)
        if 1 <= abs(hours) <= 14 and abs(offset_s - hours * 3600) < 120:
            notes.append(
                "the cycler's file starts %+d h %s the log, to the minute: a time zone? (--cycler-tz ZONE, "
                "or --cycler-align start)" % (hours, "after" if hours > 0 else "before")
            )
    elif align == "start":
        t = tt - tt[0]
    elif align == "device":
        if log_device0_s is None:
            raise CyclerError("--cycler-align device: the log has no device clock")
        t = tt - log_device0_s
    else:
        try:
            start = pd.Timestamp(align)
        except ValueError:
            raise CyclerError("--cycler-align %r: 'start', 'device' or a time (ISO 8601)" % align) from None
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        t = tt - tt[0] + (start - log_t0).total_seconds()
    a, b = float(np.nanmin(t)), float(np.nanmax(t))
    overlap = min(b, log_end_s) - max(a, 0.0)
    if overlap <= 0:
        raise CyclerError(
            "%s does not overlap the log: the cycler's file runs %s to %s, the log %s to %s "
            "(--cycler-align start puts the file's start at the log's; --cycler-tz ZONE if its clock "
            "was local)" % (cyc.path, _at(log_t0, a), _at(log_t0, b), _at(log_t0, 0.0), _at(log_t0, log_end_s))
        )
    of_log, of_file = overlap / (log_end_s or 1.0), overlap / ((b - a) or 1.0)
    if min(of_log, of_file) < 0.9:
        notes.append(
            "the cycler's file and the log overlap for %.1f h: %.0f %% of the log, %.0f %% of the file "
            "(the file %s to %s, the log %s to %s)"
            % (
                overlap / 3600,
                100 * min(1.0, of_log),
                100 * min(1.0, of_file),
                _at(log_t0, a),
                _at(log_t0, b),
                _at(log_t0, 0.0),
                _at(log_t0, log_end_s),
            )
        )
    return t, notes


def on_a_logs_axis(
    df: pd.DataFrame, path: str | Path, align: str | None, tz: str | None
) -> tuple[Cycler, np.ndarray, dict[str, Any]]:
    """The cycler's file at `path` read and put on the axis of a log's table
    (logtable.read_log): the Cycler, its rows' times in seconds on the log's axis, and what
    to say of it (file, reader, clock, rows, start, span, notes). CyclerError as read() and
    on_log_axis() raise it."""
    cyc = read(path, tz)
    t, notes = on_log_axis(
        cyc,
        df["host_time_utc"].iloc[0],
        float(df["elapsed_s"].iloc[-1]),
        align,
        virtual=df.attrs["meta"]["time_axis"] != HOST_CLOCK,
        log_device0_s=float(df["device_ms"].iloc[0]) / 1000 if "device_ms" in df else None,
    )
    tb = cyc.table
    return (
        cyc,
        t,
        {
            "file": str(path),
            "reader": cyc.reader,
            "clock": cyc.clock,
            "rows": len(tb),
            "start_utc": None if not cyc.has_clock else str(tb["time_utc"].dropna().iloc[0]),
            "test_time_h": float(tb["test_time_s"].max() - tb["test_time_s"].min()) / 3600,
            "notes": notes,
        },
    )


def _at(t0: pd.Timestamp, s: float) -> str:
    return (t0 + pd.Timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M UTC")
