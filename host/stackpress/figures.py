"""The figures of `stackpress report`, drawn to go into a paper.

report.png: the run on one shared time axis, a panel per quantity: pressure and setpoint;
the hold error in kPa, scaled to the holds (ramps would hide kPa-level quality) with the
fixture's own alarm band; force per load cell; load sharing; thickness; temperature. The
cycler's voltage and current go beside pressure and thickness. Reboots, alarms, profile
steps and load cells left out are marked across every panel.
hold.png: the hold error's distribution per setpoint, and pressure and thickness swing
per cycle (or day, or hour).

A month at 1 s is 2.6 M records: each series is drawn as its lowest and highest value per
pixel column (ENVELOPE_BINS), which keeps every excursion and draws in a second.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .report import channels, event_times_s, settled_hold

ENVELOPE_BINS = 2000
MAX_EVENT_LABELS = 25  # beyond this, events are still drawn, not labelled
EVENT_STYLE = {  # kind: (colour, line style, label)
    "boot": ("0.35", "-", "reboot"),
    "alarm": ("tab:red", "-", "alarm"),
    "crash": ("tab:red", "--", "crash"),
    "profile": ("tab:green", ":", "profile step"),
    "channel": ("tab:orange", "-", "load cell left out"),
    "warning": ("tab:orange", ":", "warning"),
}


class Envelope:
    """Series drawn against one time axis as (time, lowest, highest) per time bin: the bins
    are found once for every series of a figure. A bin without a value is NaN, so a line
    breaks where nothing was recorded (a ramp in a hold's error, a gap in the log)."""

    def __init__(self, t_s: np.ndarray, scale: float, bins: int = ENVELOPE_BINS) -> None:
        self.small = len(t_s) <= bins
        if self.small:
            self.t = t_s / scale
        else:
            t0, span = float(t_s.min()), float(t_s.max() - t_s.min()) or 1.0
            self.k = ((t_s - t0) * ((bins - 1) / span)).astype(np.int32)
            self.centre = (t0 + (np.arange(bins) + 0.5) * span / bins) / scale
            self.bins = bins

    def __call__(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.small:
            return self.t, v, v
        lo = np.full(self.bins, np.inf)
        hi = np.full(self.bins, -np.inf)
        np.fmin.at(lo, self.k, v)  # fmin and fmax pass NaN over
        np.fmax.at(hi, self.k, v)
        empty = ~np.isfinite(lo)
        lo[empty] = hi[empty] = np.nan
        return self.centre, lo, hi


def _time_unit(duration_s: float) -> tuple[float, str]:
    if duration_s > 3 * 86400:
        return 86400.0, "d"
    if duration_s > 3 * 3600:
        return 3600.0, "h"
    return 60.0, "min"


from .report import _col  # noqa: E402


def _band(
    ax: Any, envelope: Envelope, lo: np.ndarray, hi: np.ndarray, color: str, label: str
) -> tuple[np.ndarray, np.ndarray]:
    """Draws the band from the lowest of `lo` to the highest of `hi`; returns those per bin."""
    te, a, _ = envelope(lo)
    _, _, b = envelope(hi)
    ax.fill_between(te, a, b, color=color, alpha=0.35, lw=0)
    ax.plot(te, a, color=color, lw=0.6, label=label)
    ax.plot(te, b, color=color, lw=0.6)
    return a[~np.isnan(a)], b[~np.isnan(b)]


def _setting(meta: dict[str, Any], key: str) -> float | None:
    s = meta.get("settings")
    if isinstance(s, str):
        try:
            s = json.loads(s)
        except ValueError:
            return None
    v = s.get(key) if isinstance(s, dict) else None
    return float(v) if isinstance(v, (int, float)) else None


def _marks(df: pd.DataFrame) -> list[tuple[float, str, str]]:
    """(time s, kind, text) of what is marked on the time axis."""
    events = df.attrs["events"]
    end_s = float(df["elapsed_s"].iloc[-1])
    out = []
    for e, t in zip(events, event_times_s(df, events)):
        kind = e.get("kind")
        if t is None or kind not in EVENT_STYLE or not 0 <= t <= end_s:
            continue
        if kind == "boot" and t <= 0:
            continue  # the log's first boot is its start, not a reboot
        text = {
            "boot": "reboot (%s)" % e.get("reset_cause", "?"),
            "alarm": ", ".join(e.get("alarms", [])),
            "crash": "crash",
            "profile": "step %s" % e.get("step", "") if not e.get("done") else "profile done",
            "channel": "load cell %s out: %s" % (e.get("channel"), e.get("why")),
            "warning": str(e.get("alarm", "warning")),
        }[kind]
        out.append((t, kind, text))
    # a reboot whose boot event the log does not hold still shows in the records
    said = {e.get("boot") for e in events if e.get("kind") == "boot"}
    boot = df["boot"].to_numpy()
    for i in np.flatnonzero(np.diff(boot) != 0) + 1:
        if boot[i] not in said:
            out.append((float(df["elapsed_s"].iloc[i]), "boot", "reboot (boot %d)" % boot[i]))
    return sorted(out, key=lambda m: m[0])


def _title(df: pd.DataFrame, name: str) -> str:
    meta = df.attrs["meta"]
    t = df["host_time_utc"]
    when = "%s to %s UTC" % (t.iloc[0].strftime("%Y-%m-%d %H:%M"), t.iloc[-1].strftime("%Y-%m-%d %H:%M"))
    parts = ["fixture %s" % (meta.get("fixture_id") or "(id unknown)")]
    if meta.get("cell"):
        parts.append("cell: %s" % meta["cell"])
    if meta.get("cell_area_mm2"):
        parts.append("area %s mm²" % meta["cell_area_mm2"])
    parts.append(when)
    line2 = "%s; time axis: %s" % (name, meta["time_axis"])
    if meta.get("scenario"):
        line2 += "; simulating %s" % meta["scenario"]
    return "  ·  ".join(parts) + "\n" + line2


def _error_limits(lows: np.ndarray, highs: np.ndarray) -> tuple[float, float]:
    """The error axis from the holds' extremes per time bin: the 0.5 and 99.5 percentiles,
    so a few outlying bins do not flatten the rest; with a margin."""
    if not len(lows):
        return -1.0, 1.0
    a, b = float(np.percentile(lows, 0.5)), float(np.percentile(highs, 99.5))
    m = max(b - a, 0.2) * 0.15
    return a - m, b + m


def plot_run(
    df: pd.DataFrame, summary: dict[str, Any], cycler: pd.DataFrame | None, path: Path, name: str
) -> dict[str, Any]:
    """Draws report.png; returns each panel's y range and the marks drawn (for tests)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    t_s = df["elapsed_s"].to_numpy()
    scale, unit = _time_unit(float(t_s[-1]))
    envelope = Envelope(t_s, scale)
    chans = channels(df)

    def has(col: str) -> bool:
        return col in df and bool(df[col].notna().any())

    panels = ["pressure", "error"]
    panels += ["force"] if chans or has("force_n") else []
    panels += ["sharing"] if chans and has("uniformity_pct") else []
    panels += [k for k, col in (("thickness", "thickness_um"), ("temperature", "temperature_c")) if has(col)]
    fig, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(11, 1.9 * len(panels) + 1.2), layout="constrained", squeeze=False
    )
    axes = axes[:, 0]
    ax_of = dict(zip(panels, axes))
    fig.suptitle(_title(df, name), fontsize=9)

    p, sp = _col(df, "pressure_mpa"), _col(df, "setpoint_mpa")
    lo = np.where(np.isnan(_col(df, "p_min_mpa")), p, _col(df, "p_min_mpa"))
    hi = np.where(np.isnan(_col(df, "p_max_mpa")), p, _col(df, "p_max_mpa"))
    ax = ax_of["pressure"]
    _band(ax, envelope, lo, hi, "tab:blue", "pressure, lowest to highest sample")
    te, sl, sh = envelope(sp)
    ax.plot(te, sh, color="k", lw=0.8, ls="--", label="setpoint")
    ax.set_ylabel("pressure / MPa")
    ax.ticklabel_format(axis="y", useOffset=False)
    if cycler is not None and cycler["voltage_v"].notna().any():
        av = ax.twinx()
        av.plot(cycler["t_s"] / scale, cycler["voltage_v"], color="tab:orange", lw=0.6)
        av.set_ylabel("cell voltage / V\n(cycler)", color="tab:orange")
    marks = _marks(df)
    handles, labels = ax.get_legend_handles_labels()
    for kind in dict.fromkeys(m[1] for m in marks):  # the kinds marked, in the order they come
        color, ls, label = EVENT_STYLE[kind]
        handles.append(Line2D([], [], color=color, ls=ls, lw=0.7))
        labels.append(label)
    ax.legend(handles, labels, loc="lower right", fontsize=7)

    ax = ax_of["error"]
    ok = settled_hold(df)
    err_lo = np.where(ok, (lo - sp) * 1000, np.nan)
    err_hi = np.where(ok, (hi - sp) * 1000, np.nan)
    lows, highs = _band(ax, envelope, err_lo, err_hi, "tab:blue", "")
    ax.text(
        0.005,
        0.96,
        "pressure − setpoint in settled holds, lowest to highest sample",
        transform=ax.transAxes,
        fontsize=7,
        va="top",
    )
    ymin, ymax = _error_limits(lows, highs)
    band_kpa = _setting(df.attrs["meta"], "hold_alarm_band_mpa")
    ax.axhline(0, color="k", lw=0.5)
    if band_kpa is not None:
        band_kpa *= 1000
        if band_kpa < ymax * 3 and -band_kpa > ymin * 3:
            ymin, ymax = min(ymin, -band_kpa * 1.1), max(ymax, band_kpa * 1.1)
            for y in (-band_kpa, band_kpa):
                ax.axhline(y, color="tab:red", lw=0.8, ls="--")
        ax.text(
            0.995,
            0.96,
            "alarm band ±%g kPa (hold_alarm_band_mpa)%s" % (band_kpa, "" if band_kpa < ymax * 1.2 else ": off scale"),
            transform=ax.transAxes,
            fontsize=7,
            va="top",
            ha="right",
            color="tab:red",
        )
    for h in summary["holds"]:
        m = ok & (sp == h["setpoint_mpa"])
        if m.any():
            x0 = float(t_s[int(np.argmax(m))]) / scale
            ax.annotate(
                "%g MPa: rms %.2f kPa" % (h["setpoint_mpa"], h["rms_kpa"]),
                (x0, 0.04),
                xycoords=("data", "axes fraction"),
                fontsize=7,
            )
    ax.set_ylim(ymin, ymax + (ymax - ymin) * 0.15)  # room for the labels above
    ax.set_ylabel("hold error / kPa")

    if "force" in ax_of:
        ax = ax_of["force"]
        if chans:
            for i, k in enumerate(chans):
                te, a, b = envelope(_col(df, k))
                ax.plot(te, b, lw=0.7, color="C%d" % i, label="load cell %s" % k[8:-2])
            ax.set_ylabel("force per\nload cell / N")
            ax.legend(loc="lower right", fontsize=7, ncol=len(chans))
        else:
            te, a, b = envelope(_col(df, "force_n"))
            ax.fill_between(te, a, b, color="tab:green", alpha=0.6, lw=0.6)
            ax.set_ylabel("force / N")

    if "sharing" in ax_of:
        ax = ax_of["sharing"]
        te, a, b = envelope(_col(df, "uniformity_pct"))
        ax.plot(te, b, color="0.2", lw=0.7, label="largest deviation of a load cell from their mean")
        ax.set_ylabel("load sharing\ndeviation / %")
        ax.set_ylim(0, max(1.0, float(np.nanmax(b)) * 1.4))
        ax.legend(loc="upper right", fontsize=7)

    for key, col, label, color in (
        ("thickness", "thickness_um", "thickness\nchange / µm", "tab:purple"),
        ("temperature", "temperature_c", "frame\ntemperature / °C", "tab:red"),
    ):
        if key in ax_of:
            ax = ax_of[key]
            te, a, b = envelope(_col(df, col))
            ax.fill_between(te, a, b, color=color, alpha=0.6, lw=0.6)
            ax.plot(te, a, color=color, lw=0.5)
            ax.set_ylabel(label)
            ax.ticklabel_format(axis="y", useOffset=False)
    if "thickness" in ax_of and cycler is not None and cycler["current_a"].notna().any():
        ac = ax_of["thickness"].twinx()
        ac.plot(cycler["t_s"] / scale, cycler["current_a"] * 1000, color="tab:gray", lw=0.6)
        ac.set_ylabel("current / mA\n(cycler)", color="tab:gray")

    ax = axes[-1]
    ax.set_xlabel("time from the first record / %s" % unit)
    ax.set_xlim(0, t_s[-1] / scale if t_s[-1] > 0 else 1)

    for ax in axes:
        for when, kind, _ in marks:
            color, ls, _ = EVENT_STYLE[kind]
            ax.axvline(when / scale, color=color, ls=ls, lw=0.7, alpha=0.8)
    top = ax_of["pressure"]
    for when, kind, text in marks[:MAX_EVENT_LABELS]:
        top.annotate(
            text,
            (when / scale, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=6,
            va="top",
            ha="right",
            color=EVENT_STYLE[kind][0],
        )
    if len(marks) > MAX_EVENT_LABELS:
        top.text(
            1.0,
            1.01,
            "%d events marked, the first %d labelled" % (len(marks), MAX_EVENT_LABELS),
            transform=top.transAxes,
            fontsize=6,
            ha="right",
        )
    for ax in axes:
        ax.grid(True, lw=0.3, alpha=0.5)
    fig.align_ylabels(axes)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return {"ylim": {k: ax.get_ylim() for k, ax in ax_of.items()}, "marks": marks}


def plot_holds(df: pd.DataFrame, summary: dict[str, Any], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    holds = summary["holds"]
    n = max(1, len(holds))
    cols = min(n, 4)
    rows = math.ceil(n / cols) + 1
    fig = plt.figure(figsize=(max(9.0, 3.4 * cols + 1), 2.8 * rows + 0.8), layout="constrained")
    fig.suptitle(_title(df, name), fontsize=9)
    ok = settled_hold(df)
    p, sp = _col(df, "pressure_mpa"), _col(df, "setpoint_mpa")
    for i, h in enumerate(holds):
        ax = fig.add_subplot(rows, cols, i + 1)
        err = (p[ok & (sp == h["setpoint_mpa"])] - h["setpoint_mpa"]) * 1000
        ax.hist(err, bins=80, color="tab:blue")
        ax.set_title(
            "%g MPa, %.1f h: rms %.2f kPa, max |%.2f| kPa"
            % (h["setpoint_mpa"], h["hours"], h["rms_kpa"], h["max_abs_kpa"]),
            fontsize=8,
        )
        ax.set_xlabel("pressure − setpoint / kPa")
        ax.set_ylabel("records")
    if not holds:
        ax = fig.add_subplot(rows, cols, 1)
        ax.text(0.5, 0.5, "no record in a settled hold", ha="center", transform=ax.transAxes)
        ax.set_axis_off()

    ax = fig.add_subplot(rows, 1, rows)
    cyc = summary["cycles"]
    if cyc["rows"]:
        x = [c[cyc["by"]] for c in cyc["rows"]]
        for key, label, style in (
            ("hold_error_max_abs_kpa", "largest |pressure − setpoint| in a hold", "v"),
            ("hold_error_rms_kpa", "rms of pressure − setpoint in holds", "o"),
        ):
            v = [np.nan if c[key] is None else c[key] for c in cyc["rows"]]
            ax.plot(x, v, style, color="tab:blue", ms=3, label=label)
        ax.set_ylabel("hold error / kPa")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower left", fontsize=7)
        sw = [c["thickness_swing_um"] for c in cyc["rows"]]
        if any(v is not None for v in sw):
            a2 = ax.twinx()
            a2.plot(x, [np.nan if v is None else v for v in sw], color="tab:purple", marker=".", lw=0)
            a2.set_ylabel("thickness swing / µm", color="tab:purple")
    ax.set_xlabel(cyc["by"])
    ax.set_title("per %s" % cyc["by"], fontsize=8)
    fig.savefig(path, dpi=150)
    plt.close(fig)
