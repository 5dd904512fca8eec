"""`stackpress report RUN.csv`: plots and a short summary of a logged run, optionally with
a battery cycler's own file on the same time axis (cycler.py reads it).

The time axis is the host's clock (`host_time_utc`), which is what a cycler's file also
carries; for the virtual fixture, which runs faster than real time, it is the fixture's
own time, stitched across its boots.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import cycler as cyclermod
from . import logtable
from .logfile import QUANTITY_SUFFIXES, LogError, number
from .progress import Progress

# What a report draws and sums up: physical quantities, which carry their unit in their
# names (and the keys, which are always read). Counts and the host's bookkeeping stay
# unread: a month of records takes 40 MB less.
UNITS = QUANTITY_SUFFIXES


class ReportError(Exception):
    pass


def read_log(paths: str | Path | Sequence[str | Path], progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The log's table (logtable.read_log) without the columns no report uses, its values
    as float32: a month of 1 s records in under 500 MB."""
    try:
        df = logtable.read_log(paths, progress, columns=lambda c: c.endswith(UNITS) or c == "alarms", compact=True)
    except LogError as e:
        raise ReportError(str(e)) from None
    if not len(df):
        names = [paths] if isinstance(paths, (str, Path)) else paths
        raise ReportError("%s has no telemetry records" % ", ".join(str(p) for p in names))
    return df


def _f(x: Any) -> float | None:
    """A numpy number as a JSON one (None for NaN); a float32 as its shortest decimal
    (40.1, not 40.099998474121094)."""
    x = float(str(x)) if isinstance(x, np.float32) else float(x)
    return None if math.isnan(x) else x


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column's own array, not copied (float32: differences of nearby values are
    exact in it), or NaN where the log has no such column."""
    if name not in df:
        return np.full(len(df), np.nan, np.float32)
    return df[name].to_numpy()


def _range(v: np.ndarray) -> dict[str, Any] | None:
    v = v[~np.isnan(v)]
    return None if not len(v) else {"min": _f(v.min()), "max": _f(v.max())}


def settled_hold(df: pd.DataFrame) -> np.ndarray:
    """Records in hold whose previous record was in hold at the same setpoint: the first
    one's extremes still hold the end of the ramp into it."""
    hold = (df["state"] == "hold").to_numpy()
    sp = _col(df, "setpoint_mpa")
    ok = np.zeros(len(df), bool)
    ok[1:] = hold[1:] & hold[:-1] & (sp[1:] == sp[:-1])
    return ok & ~np.isnan(_col(df, "pressure_mpa"))


def _holds(df: pd.DataFrame, t_s: np.ndarray) -> list[dict[str, Any]]:
    """Per setpoint held: how long, and the error of the records and between them (kPa)."""
    ok = settled_hold(df)
    sp = _col(df, "setpoint_mpa")
    p = _col(df, "pressure_mpa")
    lo, hi = _col(df, "p_min_mpa"), _col(df, "p_max_mpa")
    dt = np.diff(t_s, prepend=t_s[0])
    out = []
    for level in np.unique(sp[ok]):
        m = ok & (sp == level)
        err = (p[m] - level) * 1000
        ext = np.fmax(np.abs(lo[m] - level), np.abs(hi[m] - level)) * 1000
        out.append(
            {
                "setpoint_mpa": _f(level),
                "hours": _f(dt[m].sum() / 3600),
                "records": int(m.sum()),
                "mean_kpa": _f(err.mean()),
                "rms_kpa": _f(np.sqrt(np.mean(err * err))),
                "max_abs_kpa": _f(np.abs(err).max()),
                "max_abs_between_records_kpa": _f(np.nanmax(ext)) if not np.isnan(ext).all() else None,
            }
        )
    return out


def _people(notes: list[str]) -> list[dict[str, Any]]:
    """What people did and said during the run: the log's audit and note lines, in order."""
    out = []
    for n in notes:
        kind, _, rest = n.partition(" ")
        if kind in ("audit", "note") and ": " in rest:
            when, _, body = rest.partition(": ")
            try:
                d = json.loads(body)
            except ValueError:
                continue
            out.append(dict(d, kind=kind, utc=when))
    return out


def event_times_s(df: pd.DataFrame, events: list[dict[str, Any]]) -> list[float | None]:
    """Each event's time on the rows' axis. On the host's clock, its own time stamp; on the
    fixture's (the virtual one's), a record of the same boot next to it, plus the device time
    between."""
    if df.attrs["meta"]["time_axis"] == logtable.HOST_CLOCK:
        t0 = df["host_time_utc"].iloc[0]
        return [(pd.Timestamp(e["host_time_utc"]) - t0).total_seconds() for e in events]
    boot = df["boot"].to_numpy()
    dev = df["device_ms"].to_numpy()
    key = boot * (1 << 40) + dev
    t_s = df["elapsed_s"].to_numpy()
    out: list[float | None] = []
    for e in events:
        i = int(np.searchsorted(key, e["boot"] * (1 << 40) + e["device_ms"], side="right")) - 1
        if (i < 0 or boot[i] != e["boot"]) and i + 1 < len(boot) and boot[i + 1] == e["boot"]:
            i += 1  # the first thing of a boot: from the boot's first record
        out.append(None if i < 0 else float(t_s[i] + (e["device_ms"] - dev[i]) / 1000))
    return out


def channels(df: pd.DataFrame) -> list[str]:
    """The load-cell channels a log has (force_ch0_n, ...), in order."""
    return sorted((k for k in df.columns if k.startswith("force_ch")), key=lambda k: int(k[8:-2]))


def _load_cells(df: pd.DataFrame) -> dict[str, Any]:
    """With several load cells: how evenly they shared the load while holding, where the
    load's centre sat, and every load cell left out (which, when, why)."""
    chans = channels(df)
    if not chans:
        return {"load_cells": 1}
    hold = (df["state"] == "hold").to_numpy()
    if not hold.any():  # never held: the whole run
        hold = np.ones(len(df), bool)
    u, cx, cy = (_col(df, k)[hold] for k in ("uniformity_pct", "centre_x_mm", "centre_y_mm"))
    events = [e for e in df.attrs["events"] if e.get("kind") == "channel"]
    out = [
        {
            "channel": e.get("channel"),
            "why": e.get("why"),
            "t_h": None if t is None else t / 3600,
            "left": e.get("left"),
        }
        for e, t in zip(events, event_times_s(df, events))
    ]
    centre = None
    if not np.isnan(cx).all() and not np.isnan(cy).all():
        centre = {
            "x_mean": _f(np.nanmean(cx)),
            "y_mean": _f(np.nanmean(cy)),
            "x_range": [_f(np.nanmin(cx)), _f(np.nanmax(cx))],
            "y_range": [_f(np.nanmin(cy)), _f(np.nanmax(cy))],
        }
    return {
        "load_cells": len(chans),
        "uniformity_pct": None if np.isnan(u).all() else {"mean": _f(np.nanmean(u)), "max": _f(np.nanmax(u))},
        "centre_mm": centre,
        "channels_left_out": out,
    }


def summarize(df: pd.DataFrame, cycler: pd.DataFrame | None = None) -> dict[str, Any]:
    """The run's summary (summary.json) from a log table (logtable.read_log)."""
    meta, events, notes = df.attrs["meta"], df.attrs["events"], df.attrs["notes"]
    t_s = df["elapsed_s"].to_numpy()
    dt = np.diff(t_s)
    state = df["state"].astype("category")
    in_state = np.bincount(state.cat.codes.to_numpy()[:-1], weights=dt, minlength=len(state.cat.categories))
    holds = _holds(df, t_s)
    alarms = sorted({a for e in events if e.get("kind") == "alarm" for a in e.get("alarms", [])})
    held = [h for h in holds if h["records"]]
    n = sum(h["records"] for h in held)
    s = {
        "log": meta.get("port", ""),
        "fixture_id": meta.get("fixture_id"),
        "scenario": meta.get("scenario"),
        "files": meta.get("files", 1),
        "firmware_version": meta.get("firmware_version"),
        "board": meta.get("board"),
        "cell_area_mm2": number(meta.get("cell_area_mm2", "")),
        "time_axis": meta["time_axis"],
        "start_utc": df["host_time_utc"].iloc[0].isoformat(),
        "end_utc": df["host_time_utc"].iloc[-1].isoformat(),
        "duration_h": _f(t_s[-1] / 3600),
        "records": len(df),
        "record_period_s": _f(np.median(dt)) if len(dt) else 0.0,
        "boots": sorted(int(b) for b in np.unique(df["boot"].to_numpy())),
        "lost_notes": [n for n in notes if n.startswith("lost")],
        "audit": _people(notes),
        "time_in_state_h": {str(k): _f(v / 3600) for k, v in sorted(zip(state.cat.categories, in_state)) if v > 0},
        "setpoints_mpa": [h["setpoint_mpa"] for h in held],
        "holds": holds,
        "hold_error_kpa": None
        if not n
        else {
            "rms": math.sqrt(sum(h["rms_kpa"] ** 2 * h["records"] for h in held) / n),
            "max_abs": max(h["max_abs_kpa"] for h in held),
            "max_abs_between_records": max(
                (h["max_abs_between_records_kpa"] for h in held if h["max_abs_between_records_kpa"] is not None),
                default=None,
            ),
            "records": n,
        },
        "alarms": alarms,
        "thickness_um": _range(_col(df, "thickness_um")),
        "temperature_c": _range(_col(df, "temperature_c")),
        "cycles": per_cycle(df, cycler),
    }
    s.update(_load_cells(df))
    return s


def per_cycle(df: pd.DataFrame, cycler: pd.DataFrame | None) -> dict[str, Any]:
    """Per cycler cycle (if the cycler file has cycles), else per day (runs over two days)
    or per hour: pressure mean/min/max, the hold error (settled holds) and the thickness
    swing."""
    t_s = df["elapsed_s"].to_numpy()
    if cycler is not None and cycler["cycle"].notna().any():
        spans: list[list[Any]] = []
        for cycle, t in zip(cycler["cycle"], cycler["t_s"]):
            if pd.isna(cycle):
                continue
            if not spans or cycle != spans[-1][0]:
                spans.append([int(cycle), t, t])
            spans[-1][2] = t
        unit = "cycle"
    else:
        width = 86400.0 if t_s[-1] > 2 * 86400 else 3600.0
        unit = "day" if width == 86400.0 else "hour"
        spans = [[i + 1, i * width, (i + 1) * width] for i in range(int(t_s[-1] // width) + 1)]
    p = _col(df, "pressure_mpa")
    lo = np.where(np.isnan(_col(df, "p_min_mpa")), p, _col(df, "p_min_mpa"))
    hi = np.where(np.isnan(_col(df, "p_max_mpa")), p, _col(df, "p_max_mpa"))
    th = _col(df, "thickness_um")
    ok = settled_hold(df)
    err_kpa = (p - _col(df, "setpoint_mpa")) * 1000
    out = []
    for label, a, b in spans:
        i, j = np.searchsorted(t_s, a, "left"), np.searchsorted(t_s, b, "right")
        pi = p[i:j]
        if np.isnan(pi).all():
            continue
        tj = th[i:j]
        e = err_kpa[i:j][ok[i:j]].astype(np.float64)
        out.append(
            {
                unit: label,
                "start_h": a / 3600,
                "pressure_mean_mpa": _f(np.nanmean(pi)),
                "pressure_min_mpa": _f(np.nanmin(lo[i:j])),
                "pressure_max_mpa": _f(np.nanmax(hi[i:j])),
                "hold_error_rms_kpa": _f(np.sqrt(np.mean(e * e))) if len(e) else None,
                "hold_error_max_abs_kpa": _f(np.abs(e).max()) if len(e) else None,
                "thickness_swing_um": None if np.isnan(tj).all() else _f(np.nanmax(tj) - np.nanmin(tj)),
            }
        )
    return {"by": unit, "rows": out}


def text(summary: dict[str, Any]) -> str:
    s = summary
    lines = [
        "run: %s to %s, %.2f h (%s), %d records every %.3g s, boots %s"
        % (
            s["start_utc"],
            s["end_utc"],
            s["duration_h"],
            s["time_axis"],
            s["records"],
            s["record_period_s"],
            ", ".join(str(b) for b in s["boots"]),
        ),
        "fixture: %s (%s board), firmware %s, cell area %s mm²%s%s"
        % (
            s["fixture_id"] or "id unknown",
            s["board"],
            s["firmware_version"],
            s["cell_area_mm2"],
            ", simulating %s" % s["scenario"] if s["scenario"] else "",
            ", %d files" % s["files"] if s["files"] > 1 else "",
        ),
        "time in state: " + ", ".join("%s %.2f h" % kv for kv in s["time_in_state_h"].items()),
        "records lost: %s"
        % ("; ".join(n[len("lost: ") :] if n.startswith("lost: ") else n for n in s["lost_notes"]) or "none"),
    ]
    for h in s["holds"]:
        lines.append(
            "holding %g MPa for %.2f h: error rms %.2f kPa, mean %+.2f kPa, max |%.2f| kPa at the records, "
            "max |%s| kPa between them"
            % (
                h["setpoint_mpa"],
                h["hours"],
                h["rms_kpa"],
                h["mean_kpa"],
                h["max_abs_kpa"],
                "%.2f" % h["max_abs_between_records_kpa"] if h["max_abs_between_records_kpa"] is not None else "?",
            )
        )
    lines.append("alarms: %s" % (", ".join(s["alarms"]) or "none"))
    if s.get("load_cells", 1) > 1:
        u, c = s["uniformity_pct"], s["centre_mm"]
        lines.append(
            "load cells: %d; uniformity while holding %s; load centre %s"
            % (
                s["load_cells"],
                "mean %.2f %%, max %.2f %%" % (u["mean"], u["max"]) if u else "?",
                "(%.3f, %.3f) mm from the axis" % (c["x_mean"], c["y_mean"]) if c else "?",
            )
        )
        for e in s["channels_left_out"]:
            lines.append(
                "  load cell %s left out at %s h: %s (%s left)"
                % (e["channel"], "%.3f" % e["t_h"] if e["t_h"] is not None else "?", e["why"], e["left"])
            )
    if s["thickness_um"]:
        lines.append("thickness change: %.3f .. %.3f µm" % (s["thickness_um"]["min"], s["thickness_um"]["max"]))
    if s["temperature_c"]:
        lines.append("frame temperature: %.2f .. %.2f °C" % (s["temperature_c"]["min"], s["temperature_c"]["max"]))
    lines.append("per %s: %d rows (in the plot and in --json)" % (s["cycles"]["by"], len(s["cycles"]["rows"])))
    c = s.get("cycler")
    if c:
        lines.append(
            "cycler: %s, %d rows over %.2f h, read by %s; its clock: %s"
            % (os.path.basename(c["file"]), c["rows"], c["test_time_h"], c["reader"], c["clock"])
        )
        lines += ["  " + n for n in c["notes"]]
    if s["audit"]:
        lines.append("what people did (%d):" % len(s["audit"]))
        for a in s["audit"]:
            what = (
                a.get("text")
                if a["kind"] == "note"
                else "%s %s -> %s"
                % (a.get("cmd"), json.dumps(a.get("args"), separators=(",", ":")), "ok" if a.get("ok") else "refused")
            )
            lines.append("  %s %s (%s): %s" % (a["utc"], a.get("user"), a.get("program"), what))
    return "\n".join(lines)


def out_dir_of(log_path: Path) -> Path:
    """Where a log's report goes by default: beside it, named for the whole file name, so
    the reports of run1.csv and run1.sqlite do not overwrite each other."""
    return log_path.with_name(log_path.name.replace(".", "_") + "_report")


def report(
    log_paths: str | Path | Sequence[str | Path],
    out_dir: Path | str | None = None,
    cycler_path: str | Path | None = None,
    cycler_align: str | None = None,
    as_json: bool = False,
    cycler_tz: str | None = None,
) -> int:
    from .figures import plot_holds, plot_run

    progress = Progress("report: ")
    paths = sorted(Path(p) for p in ([log_paths] if isinstance(log_paths, (str, Path)) else log_paths))
    log_path = paths[0]  # a rotating log's files sort in time order
    out_dir = Path(out_dir) if out_dir else out_dir_of(log_path)
    progress.show("reading %s" % (log_path.name if len(paths) == 1 else "%d files" % len(paths)))
    df = read_log(paths, progress.show)
    cyc = None
    if cycler_path:
        progress.show("reading %s" % Path(cycler_path).name)
        try:
            cyc, t_s, cycler_said = cyclermod.on_a_logs_axis(df, cycler_path, cycler_align, cycler_tz)
        except cyclermod.CyclerError as e:
            raise ReportError(str(e)) from None
        cycler = cyc.table.assign(t_s=t_s)
    else:
        cycler = None
    progress.show("summarising %d records" % len(df))
    summary = summarize(df, cycler)
    if cyc is not None:
        summary["cycler"] = cycler_said
    out_dir.mkdir(parents=True, exist_ok=True)
    name = log_path.name if len(paths) == 1 else "%s and %d more files" % (log_path.name, len(paths) - 1)
    progress.show("plotting")
    png = out_dir / "report.png"
    plot_run(df, summary, cycler, png, name)
    holds_png = out_dir / "hold.png"
    plot_holds(df, summary, holds_png, name)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "summary.txt").write_text(text(summary) + "\n")
    progress.clear()
    if as_json:
        print(json.dumps(dict(summary, png=str(png), hold_png=str(holds_png))))
    else:
        print(text(summary))
        print("plots: %s, %s" % (png, holds_png))
    return 0
