"""A log, and a cycler's file if given, as one table on one time axis, for the tools the field
uses: the Battery Data Format (BDF, Battery Data Alliance, ontology 1.3.0: its columns'
preferred labels, `Test Time / s`, `Voltage / V`, ...), or stackpress's own column names, as
CSV or Parquet. Beside the file, `NAME.metadata.json` says what each column is, where the
rows come from and how the values between them were filled.

Rows: every record of the log and every row of the cycler's file, in time order; nothing is
dropped or resampled. `Record Source` (`source`) says which instrument measured a row. The
other instrument's values on that row are interpolated from its own rows: linearly for
quantities that change smoothly (pressure, force, thickness, temperature, voltage), the last
value for those that change in steps (setpoint, current, state, alarms, cycle, step), and
left empty before its first row, after its last, and across a gap in its records longer than
GAP_PERIODS of its typical interval.

BDF has columns for pressure (`Applied Pressure / Pa`) and the cycler's quantities, none for
a thickness change or the fixture's own readings: those are custom columns named as BDF names
its own (`Fixture Thickness / um`), declared in the metadata's `variable_measured` as BDF's
custom-measurement proposal does, thickness with the EMMO term it proposes.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, logtable
from . import cycler as cyclermod
from .logfile import QUANTITY_UNITS, LogError
from .progress import Progress

BDF = "Battery Data Format (Battery Data Alliance), ontology 1.3.0"
BDF_TERMS = "https://w3id.org/battery-data-alliance/ontology/battery-data-format#"
EMMO_THICKNESS = "https://w3id.org/emmo#EMMO_43003c86_9d15_433b_9789_ee2940920656"
FORMATS = ("bdf", "csv", "parquet")
GAP_PERIODS = 10.0  # a gap in one instrument's rows longer than this many of its intervals is left empty
CSV_CHUNK_ROWS = 200_000

# The fixture's quantities (logfile.QUANTITY_UNITS), as BDF writes them: pressure in Pa.
UNITS = {suffix: ("Pa", 1e6) if unit == "MPa" else (unit, 1.0) for suffix, unit in QUANTITY_UNITS.items()}
PRESSURE = "pressure_mpa"  # the one the fixture holds: BDF's Applied Pressure
STEPWISE = ("setpoint_mpa",)  # changes in steps: the last value, never a ramp between two
# The cycler's table (cycler.py): its column, the BDF label and machine name, how it is filled.
CYCLER = (
    ("voltage_v", "Voltage / V", "voltage_volt", "linear"),
    ("current_a", "Current / A", "current_ampere", "last"),
    ("cycle", "Cycle Count / 1", "cycle_count", "last"),
    ("step", "Step ID", "step_id", "last"),
    ("step_count", "Step Count / 1", "step_count", "last"),
    ("temperature_c", "Ambient Temperature / degC", "ambient_temperature_celsius", "linear"),
)


class ExportError(Exception):
    """What can't be exported, and why (exit code 2)."""


def default_out(log_path: Path, fmt: str) -> Path:
    """run1.csv -> run1.bdf.csv (BDF), run1_export.csv, run1_export.parquet."""
    stem = log_path.name.split(".")[0]
    return log_path.with_name(stem + (".bdf.csv" if fmt == "bdf" else "_export." + fmt))


def metadata_path(out: Path) -> Path:
    """run1.bdf.csv -> run1.bdf.metadata.json, as BDF's own examples name it."""
    stem = out.name.rsplit(".", 1)[0] if "." in out.name else out.name
    return out.with_name(stem + ".metadata.json")


def _interval_s(t: np.ndarray) -> float:
    d = np.diff(t)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 0.0


def fill(t: np.ndarray, y: np.ndarray, x: np.ndarray, gap_s: float, how: str) -> np.ndarray:
    """`y` (measured at the sorted times `t`) at the times `x`: linearly between the two rows
    around each, or the last row's value ("last"); missing (NaN, None) outside t's span and
    where the two rows around it are more than `gap_s` apart; a row's own time, its value."""
    numeric = y.dtype.kind in "fiu"
    out = np.full(len(x), np.nan) if numeric else np.full(len(x), None, dtype=object)
    if not len(t):
        return out
    i = np.searchsorted(t, x, side="right") - 1  # the last row at or before each x
    inside = (i >= 0) & (x <= t[-1])
    j = np.clip(i, 0, max(len(t) - 2, 0))  # the two rows around: j and k
    k = np.minimum(j + 1, len(t) - 1)
    t0, t1 = t[j], t[k]
    ok = inside & (t1 - t0 <= gap_s)
    if how == "last":
        out[ok] = y[i[ok]]
    else:
        y0, y1 = y[j].astype(float), y[k].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(t1 > t0, (x - t0) / (t1 - t0), 0.0)
        out[ok] = (y0 + w * (y1 - y0))[ok]
    on_a_row = inside & (x == t[np.clip(i, 0, None)])  # a row's own value, whatever the gap after it
    out[on_a_row] = y[i[on_a_row]]
    return out


def _step_count(step: pd.Series) -> np.ndarray:
    """BDF's Step Count: 1 + how many times the step ID has changed (a repeated one-step
    loop, which never changes it, counts as one step)."""
    s = step.to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(s)
    changed = np.zeros(len(s))
    ks = s[known]
    changed[np.flatnonzero(known)[1:]] = ks[1:] != ks[:-1]
    out = 1 + np.cumsum(changed)
    out[~known] = np.nan
    return out


def _fixture_label(col: str) -> tuple[str, str, float]:
    """A log column's BDF-style label, unit and factor: pressure_mpa -> Applied Pressure / Pa,
    force_ch0_n -> Fixture Force Ch0 / N."""
    suffix = next(u for u in UNITS if col.endswith(u))
    unit, factor = UNITS[suffix]
    if col == PRESSURE:
        return "Applied Pressure / Pa", unit, factor
    words = " ".join(w.capitalize() for w in col[: -len(suffix)].split("_"))
    return "Fixture %s / %s" % (words, unit), unit, factor


def table(
    log_paths: Sequence[str | Path],
    cycler_path: str | Path | None = None,
    align: str | None = None,
    tz: str | None = None,
    fmt: str = "bdf",
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The export's table, columns named for `fmt`, and its metadata (the sidecar's JSON)."""
    say = progress or (lambda _: None)
    try:
        df = logtable.read_log(
            log_paths, say, columns=lambda c: c.endswith(tuple(UNITS)) or c in ("alarms", "seq", "boot")
        )
    except LogError as e:
        raise ExportError(str(e)) from None
    if not len(df):
        raise ExportError("%s has no records" % log_paths[0])
    meta = df.attrs["meta"]
    bdf = fmt == "bdf"
    tf = df["elapsed_s"].to_numpy(dtype=float)
    cyc = None
    if cycler_path is not None:
        say("reading %s" % Path(cycler_path).name)
        try:
            cyc, tc, cyc_said = cyclermod.on_a_logs_axis(df, cycler_path, align, tz)
        except cyclermod.CyclerError as e:
            raise ExportError(str(e)) from None
        order = np.argsort(tc, kind="stable")
        tc = tc[order]
        ctab = cyc.table.iloc[order].reset_index(drop=True)
        ctab["step_count"] = _step_count(ctab["step"])
    else:
        tc = np.zeros(0)
        ctab = None
    if bdf and (ctab is None or ctab["voltage_v"].isna().all() or ctab["current_a"].isna().all()):
        raise ExportError(
            "BDF requires Voltage / V and Current / A: give the cycler's file with --cycler FILE "
            "(one that has both), or export --format csv or parquet"
        )
    say("merging %d records%s" % (len(df), " and %d rows of the cycler's" % len(tc) if len(tc) else ""))
    t_all = np.concatenate([tf, tc])
    order = np.argsort(t_all, kind="stable")  # at one time: the fixture's record first
    x = t_all[order]
    n_f = len(tf)
    from_fixture = order < n_f
    t_first = float(x[0])
    out: dict[str, Any] = {}
    columns: list[dict[str, Any]] = []

    def put(name: str, values: Any, **about: Any) -> None:
        out[name] = values
        columns.append(dict(name=name, **about))

    put(
        "Test Time / s" if bdf else "test_time_s",
        np.round(x - t_first, 3),
        machine_name="test_time_second",
        unit_text="s",
        description="seconds from the table's first row, on the log's time axis (%s)" % meta["time_axis"],
    )
    real_clock = meta["time_axis"] == logtable.HOST_CLOCK
    if real_clock:
        t0_unix = df["host_time_utc"].iloc[0].value / 1e9 - float(tf[0])
        unix = np.round(t0_unix + x, 3)
        put(
            "Unix Time / s" if bdf else "unix_time_s",
            unix,
            machine_name="unix_time_second",
            unit_text="s",
            description="the host's clock (UTC) when the logger received the record; the cycler's rows on it "
            "as the cycler's clock put them (see cycler.clock and cycler.notes)",
        )
    put(
        "Record Source" if bdf else "source",
        pd.Categorical.from_codes(np.where(from_fixture, 0, 1).astype(np.int8), ["fixture", "cycler"]),
        description="which instrument measured this row: the other's values on it are interpolated (see filling)",
    )
    if not bdf:
        for key in ("boot", "seq"):
            if key in df:
                keys = np.full(len(x), np.nan)
                keys[from_fixture] = df[key].to_numpy(dtype=float)[order[from_fixture]]
                put(key, pd.array(keys, dtype="Int64"), description="the fixture's record key (fixture rows only)")
    gap_f = GAP_PERIODS * _interval_s(tf)
    empty = []
    for col in df.columns:
        if not col.endswith(tuple(UNITS)) and col not in ("state", "alarms"):
            continue
        if df[col].isna().all():  # a field this fixture does not report (ref_mpa is the virtual one's)
            empty.append(col)
            continue
        v: Any
        if col in ("state", "alarms"):
            how, unit, factor, label = "last", None, 1.0, "Fixture " + col.capitalize()
            cat = df[col].astype("category")
            codes = cat.cat.codes.to_numpy()  # text as small integers: a month is 2.6 M rows
            if len(tc):
                codes = np.nan_to_num(fill(tf, codes.astype(float), x, gap_f, how), nan=-1.0).astype(codes.dtype)
            v = pd.Categorical.from_codes(codes, cat.cat.categories)
        else:
            label, unit, factor = _fixture_label(col)
            how = "last" if col in STEPWISE else "linear"
            y = df[col].to_numpy(dtype=float)
            y = np.round(y * factor, 3) if factor != 1 else y  # Pa: to the mPa, not 40012340.000000004
            v = fill(tf, y, x, gap_f, how) if len(tc) else y  # no cycler: the log's own rows, as they are
        about: dict[str, Any] = {"source": "fixture", "log_column": col, "filled": how}
        if unit:
            about["unit_text"] = unit
        if col == PRESSURE:
            about.update(machine_name="applied_pressure_pa", same_as=BDF_TERMS + "applied_pressure_pa")
            about["description"] = "the stack pressure the fixture applies and holds (load cells' force / cell area)"
        elif col == "thickness_um":
            about.update(same_as=EMMO_THICKNESS)
            about["description"] = (
                "the cell stack's thickness change (+ thicker) since the fixture's reference, from the motor's "
                "position and the frame's stiffness (PROTOCOL.md: thickness_um); BDF has no thickness column, so "
                "it is carried as this custom column"
            )
        else:
            about["description"] = "the fixture's telemetry field %s (firmware/stackpress/PROTOCOL.md)%s" % (
                col,
                ", x%g" % factor if factor != 1 else "",
            )
        put(label if bdf else col, v, **about)
    said: dict[str, Any] = {}
    if ctab is not None:
        gap_c = GAP_PERIODS * _interval_s(tc)
        for key, label, machine, how in CYCLER:
            if ctab[key].isna().all():
                continue
            y = ctab[key].to_numpy(dtype=float, na_value=np.nan)
            v = fill(tc, y, x, gap_c, how)
            if key in ("cycle", "step", "step_count"):
                v = pd.array(np.where(np.isnan(v), np.nan, np.round(v)), dtype="Int64")
            put(
                label if bdf else "cycler_" + key,
                v,
                source="cycler",
                filled=how,
                machine_name=machine,
                same_as=BDF_TERMS + machine,
                unit_text=label.rsplit("/ ", 1)[1] if "/" in label else None,
                description="the cycler's %s, as its file says it (read by %s)"
                % (key.replace("_", " "), cyc.reader if cyc else ""),
            )
        said = cyc_said
    frame = pd.DataFrame(out, copy=False)
    custom = [
        {k: c[k] for k in ("name", "unit_text", "same_as", "description") if c.get(k)}
        for c in columns
        if bdf and not c.get("machine_name")
    ]
    for c in custom:  # BDF's proposal binds "Name / unit" to name + unit_text
        if "unit_text" in c:
            c["name"] = c["name"].rsplit(" / ", 1)[0]
    metadata: dict[str, Any] = {
        "format": BDF if bdf else "stackpress export (the log's own column names)",
        "written_by": "stackpress %s" % __version__,
        "written_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": {"total": len(frame), "fixture": int(n_f), "cycler": int(len(tc))},
        "filling": (
            "each row is one instrument's record (%s); the other's values on it are interpolated from its own "
            "rows: 'linear' between the two around it, 'last' the last value before it; empty before its first "
            "row, after its last, and across a gap in its rows longer than %g of its median intervals"
            % ("Record Source" if bdf else "source", GAP_PERIODS)
        ),
        "log": {
            "files": [str(p) for p in log_paths],
            "fixture_id": meta.get("fixture_id"),
            "cell": meta.get("cell"),
            "cell_area_mm2": meta.get("cell_area_mm2"),
            "time_axis": meta["time_axis"],
            "first_record_utc": str(df["host_time_utc"].iloc[0]),
            "records": len(df),
            "fields_never_reported": empty,
        },
        "cycler": said or None,
        "columns": columns,
    }
    if not real_clock:
        metadata["log"]["no_unix_time"] = (
            "the log's time axis is not a clock (%s): no Unix Time column" % meta["time_axis"]
        )
    if bdf:
        metadata["bdf_terms"] = BDF_TERMS
        cell = ", cell " + meta["cell"] if meta.get("cell") else ""
        metadata["battinfo_dataset"] = {
            "dataset": {
                "name": "stackpress fixture %s%s" % (meta.get("fixture_id") or "", cell),
                "description": "stack pressure and the cycler's data of one cell on one time axis (stackpress)",
                "variable_measured": custom,
            }
        }
    return frame, metadata


def _arrow(frame: pd.DataFrame, metadata: dict[str, Any]) -> Any:
    """The table for pyarrow's writers: text as plain strings (Parquet still stores them
    dictionary-encoded), every reader takes them; the metadata in the schema."""
    import pyarrow as pa

    t = pa.Table.from_pandas(frame, preserve_index=False)
    plain = [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in t.schema]
    t = t.cast(pa.schema(plain, metadata=t.schema.metadata))
    return t.replace_schema_metadata(dict(t.schema.metadata or {}, stackpress=json.dumps(metadata, default=str)))


def write_csv(frame: pd.DataFrame, path: Path, progress: Callable[[str], None], arrow: bool = True) -> None:
    """The table as CSV: through pyarrow where it is installed (ten times as fast as pandas:
    a month of records in seconds, not a minute), else pandas a chunk at a time. Both write
    each number's shortest exact decimals, so the two files read back the same."""
    if arrow:
        try:
            import pyarrow.csv as pcsv
        except ImportError:
            arrow = False
    if arrow:
        progress("writing %s" % path.name)
        import pyarrow as pa

        # unquoted, as BDF's own files are; a text with a comma (none expected) goes to pandas, which quotes it
        plain = pcsv.WriteOptions(quoting_style="none", quoting_header="none")
        try:
            pcsv.write_csv(_arrow(frame, {}), path, write_options=plain)
            return
        except pa.ArrowInvalid:
            pass
    with open(path, "w", newline="") as f:
        for k in range(0, max(len(frame), 1), CSV_CHUNK_ROWS):
            progress("writing %s: %d %%" % (path.name, 100 * k // max(len(frame), 1)))
            frame.iloc[k : k + CSV_CHUNK_ROWS].to_csv(f, index=False, header=k == 0)


def write(frame: pd.DataFrame, metadata: dict[str, Any], out: Path, progress: Callable[[str], None]) -> None:
    """The table to `out` (Parquet if its name ends .parquet, CSV otherwise), and its metadata
    beside it; written to temporary names first, so a failed export leaves no half file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    if out.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ExportError("Parquet needs pyarrow: pip install 'stackpress[export]'") from None
        progress("writing %s" % out.name)
        pq.write_table(_arrow(frame, metadata), tmp)
    else:
        write_csv(frame, tmp, progress)
    side = metadata_path(out)
    side_tmp = side.with_name(side.name + ".part")
    side_tmp.write_text(json.dumps(metadata, indent=1, default=str) + "\n")
    tmp.replace(out)
    side_tmp.replace(side)


def export(
    log_paths: str | Path | Sequence[str | Path],
    fmt: str = "bdf",
    out: str | Path | None = None,
    cycler_path: str | Path | None = None,
    align: str | None = None,
    tz: str | None = None,
    as_json: bool = False,
) -> int:
    if fmt not in FORMATS:
        raise ExportError("--format %s: one of %s" % (fmt, ", ".join(FORMATS)))
    paths = sorted(Path(p) for p in ([log_paths] if isinstance(log_paths, (str, Path)) else log_paths))
    out_path = Path(out) if out else default_out(paths[0], fmt)
    if fmt == "parquet" and out_path.suffix != ".parquet":
        raise ExportError("--format parquet writes a .parquet file: --out %s" % out_path.with_suffix(".parquet"))
    if fmt == "csv" and out_path.suffix == ".parquet":
        raise ExportError("--format csv writes CSV: --out %s" % out_path.with_suffix(".csv"))
    progress = Progress("export: ")
    frame, metadata = table(paths, cycler_path, align, tz, fmt, progress.show)
    write(frame, metadata, out_path, progress.show)
    progress.clear()
    result = {
        "file": str(out_path),
        "metadata": str(metadata_path(out_path)),
        "format": metadata["format"],
        "rows": metadata["rows"],
        "columns": list(frame.columns),
        "cycler_notes": (metadata["cycler"] or {}).get("notes", []),
    }
    if as_json:
        print(json.dumps(result))
        return 0
    rows = metadata["rows"]
    print(
        "%s: %d rows (%d the fixture's, %d the cycler's), %d columns, %s"
        % (out_path, len(frame), rows["fixture"], rows["cycler"], len(frame.columns), metadata["format"])
    )
    for n in result["cycler_notes"]:
        print("  note: %s" % n)
    print("what each column is, and how rows were filled: %s" % metadata_path(out_path))
    return 0
