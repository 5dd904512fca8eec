"""`stackpress report RUN.csv`: plots and a short summary of a logged run, optionally with
a battery cycler's export on the same time axis.

The time axis is the host's clock (`host_time_utc`), which is what a cycler's export also
carries; for the virtual fixture, which runs faster than real time, it is the fixture's
own time, stitched across its boots. A cycler file is a CSV with a header naming a time
column (`datetime`/`timestamp`: absolute, ISO 8601; or `time_s`/`test_time_s`: seconds from
`--cycler-start`, by default the log's first record) and any of voltage (`voltage_v`,
`ewe_v`, `ecell_v`), current (`current_ma`, `current_a`) and `cycle` columns.
"""

from __future__ import annotations

import bisect
import csv
import datetime
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import logfile
from .logfile import LogError, number

CYCLER_COLUMNS = {
    "abs_time": ("datetime", "date_time", "timestamp", "time_utc", "absolute_time"),
    "rel_time_s": ("time_s", "test_time_s", "elapsed_s", "time/s"),
    "voltage_v": ("voltage_v", "ewe_v", "ecell_v", "ewe/v", "ecell/v", "voltage(v)", "voltage"),
    "current_ma": ("current_ma", "i/ma", "current(ma)"),
    "current_a": ("current_a", "i/a", "current(a)"),
    "cycle": ("cycle", "cycle_number", "cycle number", "cycle_index"),
}
PLOT_POINTS = 4000  # per series: min and max per bin keep every excursion visible


class ReportError(Exception):
    pass


def _utc(text: str) -> datetime.datetime:
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


def read_log(
    paths: str | Path | Sequence[str | Path], progress: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(metadata dict, telemetry rows, events, notes) of a log (logfile.read_log), with a
    time `t_s` on every row and event."""
    try:
        meta, rows, events, notes = logfile.read_log(paths, progress)
    except LogError as e:
        raise ReportError(str(e)) from None
    if not rows:
        names = [paths] if isinstance(paths, (str, Path)) else paths
        raise ReportError("%s has no telemetry records" % ", ".join(str(p) for p in names))
    _time_axis(meta, rows, events)
    return meta, rows, events, notes


def _time_axis(meta: dict[str, Any], rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Seconds from the first record: host time for a real fixture; for the virtual one
    (faster than real time) its own time, each boot continuing where the last one ended."""
    if meta.get("board") == "virtual":
        meta["time_axis"] = "virtual fixture time, faster than real time"
        offset, last_boot, last_t = 0.0, None, 0.0
        for r in rows:
            if r["boot"] != last_boot:
                offset = last_t
                last_boot = r["boot"]
            r["t_s"] = offset + r["device_ms"] / 1000.0
            last_t = r["t_s"]
        t0 = rows[0]["t_s"]
        for r in rows:
            r["t_s"] -= t0
        meta["t0_utc"] = rows[0]["host_time_utc"]
    else:
        meta["time_axis"] = "host clock, UTC"
        t0 = _utc(rows[0]["host_time_utc"])
        for r in rows:
            r["t_s"] = (_utc(r["host_time_utc"]) - t0).total_seconds()
        meta["t0_utc"] = rows[0]["host_time_utc"]


def read_cycler(path: str | Path, t0_utc: str, start_utc: str | None = None) -> list[dict[str, Any]]:
    """Cycler rows as dicts with t_s on the log's axis and voltage_v/current_ma/cycle."""
    try:
        f = open(path, newline="")
    except OSError as e:
        raise ReportError("can't read %s: %s" % (path, e.strerror)) from None
    with f:
        rd = csv.reader(f)
        header = [h.strip().lower() for h in next(rd, [])]
        col = {}
        for name, aliases in CYCLER_COLUMNS.items():
            for a in aliases:
                if a in header:
                    col[name] = header.index(a)
                    break
        if "abs_time" not in col and "rel_time_s" not in col:
            raise ReportError(
                "%s: no time column; expected one of %s (ISO times) or %s (seconds)"
                % (path, ", ".join(CYCLER_COLUMNS["abs_time"]), ", ".join(CYCLER_COLUMNS["rel_time_s"]))
            )
        t0 = _utc(t0_utc)
        start = _utc(start_utc) if start_utc else t0
        out = []
        for line in rd:
            if not line:
                continue
            try:
                if "abs_time" in col:
                    t = (_utc(line[col["abs_time"]]) - t0).total_seconds()
                else:
                    t = float(line[col["rel_time_s"]]) + (start - t0).total_seconds()
            except (ValueError, IndexError):
                continue
            r: dict[str, Any] = {"t_s": t}
            if "voltage_v" in col:
                r["voltage_v"] = number(line[col["voltage_v"]])
            if "current_ma" in col:
                r["current_ma"] = number(line[col["current_ma"]])
            elif "current_a" in col:
                v = number(line[col["current_a"]])
                r["current_ma"] = None if v is None else v * 1000
            if "cycle" in col:
                c = number(line[col["cycle"]])
                r["cycle"] = None if c is None else int(c)
            out.append(r)
    if not out:
        raise ReportError("%s: no rows with a readable time" % path)
    return out


def _stats(values: Iterable[float | None]) -> dict[str, Any] | None:
    v = [x for x in values if x is not None]
    if not v:
        return None
    mean = sum(v) / len(v)
    return {"n": len(v), "mean": mean, "min": min(v), "max": max(v), "rms": math.sqrt(sum(x * x for x in v) / len(v))}


def _settled_hold(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in hold whose previous record was in hold too: the first one's extremes
    still hold the end of the ramp into it."""
    return [
        b
        for a, b in zip(rows, rows[1:])
        if a["state"] == "hold"
        and b["state"] == "hold"
        and b["pressure_mpa"] is not None
        and a["setpoint_mpa"] == b["setpoint_mpa"]
    ]


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


def summarize(
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
    events: list[dict[str, Any]],
    notes: list[str],
    cycler: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    hold = _settled_hold(rows)
    err_kpa = [(r["pressure_mpa"] - r["setpoint_mpa"]) * 1000 for r in hold]
    ext_kpa = [
        max(abs(r["p_min_mpa"] - r["setpoint_mpa"]), abs(r["p_max_mpa"] - r["setpoint_mpa"])) * 1000
        for r in hold
        if r["p_min_mpa"] is not None and r["p_max_mpa"] is not None
    ]
    dt = [b["t_s"] - a["t_s"] for a, b in zip(rows, rows[1:])]
    step_s = sorted(dt)[len(dt) // 2] if dt else 0.0
    states: dict[str, float] = {}
    for a, b in zip(rows, rows[1:]):
        states[a["state"]] = states.get(a["state"], 0.0) + (b["t_s"] - a["t_s"])
    alarms = sorted({a for e in events if e.get("kind") == "alarm" for a in e.get("alarms", [])})
    thk = _stats(r["thickness_um"] for r in rows)
    temp = _stats(r["temperature_c"] for r in rows)
    s = {
        "log": meta.get("port", ""),
        "fixture_id": meta.get("fixture_id"),
        "scenario": meta.get("scenario"),
        "files": meta.get("files", 1),
        "firmware_version": meta.get("firmware_version"),
        "board": meta.get("board"),
        "cell_area_mm2": number(meta.get("cell_area_mm2", "")),
        "time_axis": meta["time_axis"],
        "start_utc": meta["t0_utc"],
        "duration_h": rows[-1]["t_s"] / 3600,
        "records": len(rows),
        "record_period_s": step_s,
        "boots": sorted({r["boot"] for r in rows}),
        "lost_notes": [n for n in notes if n.startswith("lost")],
        "audit": _people(notes),
        "time_in_state_h": {k: v / 3600 for k, v in sorted(states.items())},
        "setpoints_mpa": sorted({r["setpoint_mpa"] for r in hold}),
        "hold_error_kpa": None
        if not err_kpa
        else {
            "rms": math.sqrt(sum(e * e for e in err_kpa) / len(err_kpa)),
            "max_abs": max(abs(e) for e in err_kpa),
            "max_abs_between_records": max(ext_kpa) if ext_kpa else None,
            "records": len(err_kpa),
        },
        "alarms": alarms,
        "thickness_um": thk and {"min": thk["min"], "max": thk["max"]},
        "temperature_c": temp and {"min": temp["min"], "max": temp["max"]},
        "cycles": per_cycle(rows, cycler),
    }
    s.update(_load_cells(rows, events))
    return s


def _channels(rows: list[dict[str, Any]]) -> list[str]:
    """The load-cell channels a log has (force_ch0_n, ...), in order."""
    return sorted((k for k in rows[0] if k.startswith("force_ch")), key=lambda k: int(k[8:-2]))


def _load_cells(rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
    """With several load cells: how evenly they shared the load while holding, where the
    load's centre sat, and every load cell left out (which, when, why)."""
    chans = _channels(rows)
    if not chans:
        return {"load_cells": 1}
    hold = [r for r in rows if r["state"] == "hold"] or rows
    u = _stats(r.get("uniformity_pct") for r in hold)
    cx = _stats(r.get("centre_x_mm") for r in hold)
    cy = _stats(r.get("centre_y_mm") for r in hold)
    keys = [(r["boot"], r["device_ms"]) for r in rows]

    def t_h(e):
        """The event's time on the rows' axis: that of the record just before it."""
        i = bisect.bisect_right(keys, (e["boot"], e["device_ms"])) - 1
        return None if i < 0 else (rows[i]["t_s"] + (e["device_ms"] - rows[i]["device_ms"]) / 1000) / 3600

    out = [
        {"channel": e.get("channel"), "why": e.get("why"), "t_h": t_h(e), "left": e.get("left")}
        for e in events
        if e.get("kind") == "channel"
    ]
    return {
        "load_cells": len(chans),
        "uniformity_pct": u and {"mean": u["mean"], "max": u["max"]},
        "centre_mm": cx
        and cy
        and {
            "x_mean": cx["mean"],
            "y_mean": cy["mean"],
            "x_range": [cx["min"], cx["max"]],
            "y_range": [cy["min"], cy["max"]],
        },
        "channels_left_out": out,
    }


def per_cycle(rows: list[dict[str, Any]], cycler: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Per cycler cycle (if the cycler file has cycles), else per day (runs over two days)
    or per hour: pressure mean/min/max and the thickness swing."""
    if cycler and any(c.get("cycle") is not None for c in cycler):
        spans, cur = [], None
        for c in cycler:
            if c.get("cycle") is None:
                continue
            if cur is None or c["cycle"] != cur[0]:
                cur = [c["cycle"], c["t_s"], c["t_s"]]
                spans.append(cur)
            cur[2] = c["t_s"]
        unit = "cycle"
    else:
        width = 86400.0 if rows[-1]["t_s"] > 2 * 86400 else 3600.0
        unit = "day" if width == 86400.0 else "hour"
        n = int(rows[-1]["t_s"] // width) + 1
        spans = [[i + 1, i * width, (i + 1) * width] for i in range(n)]
    out = []
    i = 0
    for label, a, b in spans:
        while i < len(rows) and rows[i]["t_s"] < a:
            i += 1
        j = i
        p, lo, hi, th = [], [], [], []
        while j < len(rows) and rows[j]["t_s"] <= b:
            r = rows[j]
            if r["pressure_mpa"] is not None:
                p.append(r["pressure_mpa"])
                lo.append(r["p_min_mpa"] if r["p_min_mpa"] is not None else r["pressure_mpa"])
                hi.append(r["p_max_mpa"] if r["p_max_mpa"] is not None else r["pressure_mpa"])
            if r["thickness_um"] is not None:
                th.append(r["thickness_um"])
            j += 1
        if p:
            out.append(
                {
                    unit: label,
                    "start_h": a / 3600,
                    "pressure_mean_mpa": sum(p) / len(p),
                    "pressure_min_mpa": min(lo),
                    "pressure_max_mpa": max(hi),
                    "thickness_swing_um": (max(th) - min(th)) if th else None,
                }
            )
    return {"by": unit, "rows": out}


def _envelope(
    ts: list[float], vs: list[float | None], bins: int = PLOT_POINTS
) -> tuple[list[float], list[float], list[float]]:
    """(t, low, high) per bin: a million points drawn as a band that keeps every extreme."""
    pts = [(t, v) for t, v in zip(ts, vs) if v is not None]
    if len(pts) <= bins:
        times = [p[0] for p in pts]
        vals = [p[1] for p in pts]
        return times, vals, vals
    span = (pts[-1][0] - pts[0][0]) or 1.0
    out: dict[int, list[float]] = {}
    for t, v in pts:
        k = int((t - pts[0][0]) / span * (bins - 1))
        o = out.get(k)
        if o is None:
            out[k] = [t, v, v]
        else:
            o[1] = min(o[1], v)
            o[2] = max(o[2], v)
    keys = sorted(out)
    return [out[k][0] for k in keys], [out[k][1] for k in keys], [out[k][2] for k in keys]


def plot(
    rows: list[dict[str, Any]], summary: dict[str, Any], cycler: list[dict[str, Any]] | None, path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = rows[-1]["t_s"] > 3 * 3600
    scale, unit = (3600.0, "h") if hours else (60.0, "min")
    t = [r["t_s"] / scale for r in rows]
    fig, axes = plt.subplots(3, 2, figsize=(15, 11))
    fig.suptitle(title, fontsize=11)

    ax = axes[0][0]
    tt, lo, _ = _envelope(t, [r["p_min_mpa"] if r["p_min_mpa"] is not None else r["pressure_mpa"] for r in rows])
    tt2, _, hi = _envelope(t, [r["p_max_mpa"] if r["p_max_mpa"] is not None else r["pressure_mpa"] for r in rows])
    ax.plot(tt, lo, color="tab:blue", lw=0.8, label="pressure: lowest and highest sample")
    ax.plot(tt2, hi, color="tab:blue", lw=0.8)
    ts, sp, _ = _envelope(t, [r["setpoint_mpa"] for r in rows])
    ax.plot(ts, sp, color="k", lw=0.8, ls="--", label="setpoint")
    ax.set_ylabel("pressure (MPa)")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("time (%s)" % unit)
    if cycler and any(c.get("voltage_v") is not None for c in cycler):
        av = ax.twinx()
        av.plot(
            [c["t_s"] / scale for c in cycler],
            [c.get("voltage_v") for c in cycler],
            color="tab:orange",
            lw=0.6,
            label="cell voltage (cycler)",
        )
        av.set_ylabel("cell voltage (V)", color="tab:orange")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("pressure and setpoint")

    chans = _channels(rows)
    if chans:
        ax = axes[0][1]
        for i, k in enumerate(chans):
            te, lo, hi = _envelope(t, [r[k] for r in rows])
            ax.plot(te, hi, lw=0.8, color="C%d" % i, label="load cell %s" % k[8:-2])
        ax.set_ylabel("force per load cell (N)")
        ax.set_xlabel("time (%s)" % unit)
        au = ax.twinx()
        te, _, hi = _envelope(t, [r.get("uniformity_pct") for r in rows])
        au.plot(te, hi, color="k", lw=0.6, ls=":", label="uniformity")
        au.set_ylabel("uniformity: largest deviation from the mean (%)")
        for e in summary.get("channels_left_out") or []:
            if e["t_h"] is not None:
                ax.axvline(e["t_h"] * 3600 / scale, color="tab:red", lw=0.8)
                ax.annotate(
                    "load cell %s out: %s" % (e["channel"], e["why"]),
                    (e["t_h"] * 3600 / scale, 0.02),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    fontsize=7,
                    color="tab:red",
                )
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title("force per load cell (total: pressure x area); uniformity dotted")
    panels = ((axes[0][1], "force_n", "force (N)", "tab:green"),) if not chans else ()
    for ax, key, label, color in panels + (
        (axes[1][0], "thickness_um", "thickness change (um)", "tab:purple"),
        (axes[1][1], "temperature_c", "frame temperature (degC)", "tab:red"),
    ):
        te, lo, hi = _envelope(t, [r[key] for r in rows])
        ax.fill_between(te, lo, hi, color=color, alpha=0.6, lw=0.8)
        ax.plot(te, lo, color=color, lw=0.5)
        ax.set_ylabel(label)
        ax.set_xlabel("time (%s)" % unit)
        ax.set_title(label.split(" (")[0])
        if key == "thickness_um" and cycler and any(c.get("current_ma") is not None for c in cycler):
            ac = ax.twinx()
            ac.plot([c["t_s"] / scale for c in cycler], [c.get("current_ma") for c in cycler], color="tab:gray", lw=0.6)
            ac.set_ylabel("current (mA, cycler)", color="tab:gray")

    ax = axes[2][0]
    err = [(r["pressure_mpa"] - r["setpoint_mpa"]) * 1000 for r in _settled_hold(rows)]
    if err:
        ax.hist(err, bins=80, color="tab:blue")
        he = summary["hold_error_kpa"]
        ax.set_title("pressure error while holding: rms %.2f kPa, max |%.2f| kPa" % (he["rms"], he["max_abs"]))
    else:
        ax.set_title("pressure error while holding: no record in hold")
    ax.set_xlabel("pressure - setpoint (kPa)")
    ax.set_ylabel("records")

    ax = axes[2][1]
    cyc = summary["cycles"]
    if cyc["rows"]:
        x = [c[cyc["by"]] for c in cyc["rows"]]
        mean = [c["pressure_mean_mpa"] for c in cyc["rows"]]
        ax.errorbar(
            x,
            mean,
            yerr=[
                [m - c["pressure_min_mpa"] for m, c in zip(mean, cyc["rows"])],
                [c["pressure_max_mpa"] - m for m, c in zip(mean, cyc["rows"])],
            ],
            fmt="o",
            color="tab:blue",
            ms=3,
            capsize=2,
            label="pressure: mean, min..max",
        )
        ax.set_ylabel("pressure (MPa)")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.legend(loc="lower left", fontsize=8)
        sw = [c["thickness_swing_um"] for c in cyc["rows"]]
        if any(v is not None for v in sw):
            a2 = ax.twinx()
            a2.plot(x, sw, color="tab:purple", marker=".", lw=0, label="thickness swing")
            a2.set_ylabel("thickness swing (um)", color="tab:purple")
    ax.set_xlabel(cyc["by"])
    ax.set_title("per %s" % cyc["by"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def text(summary: dict[str, Any]) -> str:
    s = summary
    lines = [
        "run: %s UTC, %.2f h (%s), %d records every %.3g s, boots %s"
        % (
            s["start_utc"],
            s["duration_h"],
            s["time_axis"],
            s["records"],
            s["record_period_s"],
            ", ".join(str(b) for b in s["boots"]),
        ),
        "fixture: %s (%s board), firmware %s, cell area %s mm2%s%s"
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
    he = s["hold_error_kpa"]
    if he:
        lines.append(
            "holding %s MPa: error rms %.2f kPa, max |%.2f| kPa at the records, max |%s| kPa between them"
            % (
                "/".join("%g" % v for v in s["setpoints_mpa"]),
                he["rms"],
                he["max_abs"],
                "%.2f" % he["max_abs_between_records"] if he["max_abs_between_records"] is not None else "?",
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
        lines.append("thickness change: %.3f .. %.3f um" % (s["thickness_um"]["min"], s["thickness_um"]["max"]))
    if s["temperature_c"]:
        lines.append("frame temperature: %.2f .. %.2f degC" % (s["temperature_c"]["min"], s["temperature_c"]["max"]))
    lines.append("per %s: %d rows (in the plot and in --json)" % (s["cycles"]["by"], len(s["cycles"]["rows"])))
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


def report(
    log_paths: str | Path | Sequence[str | Path],
    out_dir: Path | str | None = None,
    cycler_path: str | Path | None = None,
    cycler_start: str | None = None,
    as_json: bool = False,
) -> int:
    def progress(msg):
        print("\rreport: %-50s" % msg, end="", file=sys.stderr, flush=True)

    paths = sorted(Path(p) for p in ([log_paths] if isinstance(log_paths, (str, Path)) else log_paths))
    log_path = paths[0]  # a rotating log's files sort in time order
    out_dir = Path(out_dir) if out_dir else log_path.with_name(log_path.stem + "_report")
    progress("reading %s" % (log_path.name if len(paths) == 1 else "%d files" % len(paths)))
    meta, rows, events, notes = read_log(paths, progress)
    cycler = read_cycler(cycler_path, meta["t0_utc"], cycler_start) if cycler_path else None
    progress("summarising %d records" % len(rows))
    summary = summarize(meta, rows, events, notes, cycler)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress("plotting")
    png = out_dir / "report.png"
    plot(rows, summary, cycler, png, "%s  (%s)" % (log_path.name, meta["time_axis"]))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "summary.txt").write_text(text(summary) + "\n")
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    if as_json:
        print(json.dumps(dict(summary, png=str(png))))
    else:
        print(text(summary))
        print("plots: %s" % png)
    return 0
