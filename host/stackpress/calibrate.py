"""`stackpress calibrate`: tare, then the span against a reference force, stored on the fixture.

A reference load cell (or force gauge) goes in the stack where the cell would be. The
fixture itself applies each force (`--at`, N): it ramps there, then holds its motor still
(`gap`) while the reference is read and typed in and the fixture's ADC is averaged. The
readings are checked as Klipper's load-cell calibration checks them: none saturated, none
equal to the tare or within 1 % of the ADC's range of it. One point gives the span; more
give a least-squares line through the tare, with each point's residual and an uncertainty
of the span (k = 2, from the fit and the readings' noise). The result is stored on the
fixture with its date and reference, and every log's metadata carries it.

On a fixture with several load cells the reading calibrated is their sum (status
`raw_counts`, each cell scaled to channel 0's counts by its own span): the fixture then
scales every cell's span alike and shares the zero shift among them, keeping the cells'
certificate ratios (set per cell with `set_calibration` lists, see PROTOCOL.md).
"""

from __future__ import annotations

import datetime
import math
import sys
import time
from typing import TYPE_CHECKING, Any

from .protocol import state_words

if TYPE_CHECKING:
    from stackpress.connect import FixtureLink

ADC_FULL_SCALE = 0x7FFFFF
TOO_CLOSE_FRACTION = 0.01  # of the ADC's range (Klipper: 1 %)
AVERAGE_SAMPLES = 20


class CalibrationError(Exception):
    pass


def average_raw(
    link: FixtureLink, n: int = AVERAGE_SAMPLES, timeout_s: float = 60
) -> tuple[float, float, float | None]:
    """Mean and standard deviation of n distinct conversions (status, one at a time)."""
    vals: list[float] = []
    temps: list[float] = []
    seen = None
    end = time.monotonic() + timeout_s
    while len(vals) < n:
        if time.monotonic() > end:
            raise CalibrationError("the load cell gave %d conversions in %d s: check it" % (len(vals), timeout_s))
        st = link.command("status")
        if st["samples"] != seen:
            seen = st["samples"]
            if st.get("alarms") and any(a in st["alarms"] for a in ("adc_saturated", "sensor_timeout")):
                raise CalibrationError("the load cell is not read right (%s)" % ", ".join(st["alarms"]))
            raw = st["raw_counts"]
            if raw >= ADC_FULL_SCALE or raw <= -ADC_FULL_SCALE - 1:
                raise CalibrationError("the ADC is saturated (%d counts): use less force" % raw)
            vals.append(raw)
            if st.get("temperature_c") is not None:
                temps.append(st["temperature_c"])
        time.sleep(0.05)
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    return mean, sd, (sum(temps) / len(temps) if temps else None)


def check_point(tare: float, counts: float, force_n: float) -> None:
    """Klipper's rules, and a force that makes sense."""
    if force_n <= 0:
        raise CalibrationError("the reference force must be above 0 N, got %g" % force_n)
    if round(counts) == round(tare):
        raise CalibrationError("the reading equals the tare: is the load cell loaded and wired?")
    if abs(counts - tare) < TOO_CLOSE_FRACTION * 2 * (ADC_FULL_SCALE + 1):
        raise CalibrationError(
            "the reading is within 1 %% of the ADC's range of the tare (%d counts apart): "
            "use more force" % abs(counts - tare)
        )


def fit(tare: float, points: list[tuple[float, float, float]]) -> tuple[float, list[float], float, float]:
    """Span (counts/N) through the tare: least squares over (force_n, counts - tare).
    Returns span, residuals (N), rms residual (N), and the span's uncertainty (%, k = 2)."""
    sxx = sum(f * f for f, _, _ in points)
    sxy = sum(f * (c - tare) for f, c, _ in points)
    span = sxy / sxx
    res = [(c - tare) / span - f for f, c, _ in points]
    rms = math.sqrt(sum(r * r for r in res) / len(res))
    # the span's standard error: from the scatter about the line (2+ points) and from each
    # reading's noise (standard error of its mean), whichever is larger
    noise = math.sqrt(sum((sd / math.sqrt(AVERAGE_SAMPLES)) ** 2 * f * f for f, _, sd in points)) / sxx
    scatter = math.sqrt(sum(r * r for r in res) / (len(res) - 1)) * span / math.sqrt(sxx) if len(points) > 1 else 0.0
    u_pct = 2 * max(noise, scatter) / span * 100
    return span, res, rms, u_pct


def _ask(prompt: str) -> str:
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise CalibrationError("no answer (end of input)")
    return line.strip()


def _wait_state(link: FixtureLink, states: tuple[str, ...], timeout_s: float = 300) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        st = link.command("status")
        if st["state"] in states:
            return st
        if st["state"] == "fault":
            raise CalibrationError("the fixture faulted: %s" % ", ".join(st["alarms"]))
        time.sleep(0.3)
    raise CalibrationError("the fixture did not reach %s in %d s" % ("/".join(states), timeout_s))


def calibrate(link: FixtureLink, at_n: list[float], reference: str, yes: bool = False, as_json: bool = False) -> int:
    st = link.command("status")
    if st["state"] != "idle":
        raise CalibrationError("the fixture is %s: 'stackpress release --wait' first" % state_words(st["state"]))
    area = st["cell_area_mm2"]
    old = st.get("calibration") or {}
    _ask("1/%d  Unload the fixture (nothing on the load cell), then press Enter: " % (len(at_n) + 2))
    tare, tare_sd, temp = average_raw(link)
    print("      tare %.1f counts (noise %.1f counts rms)" % (tare, tare_sd), file=sys.stderr)
    if abs(tare) > 0.02 * ADC_FULL_SCALE:
        print(
            "      warning: the tare is %.1f %% of the ADC's range away from 0: check for a load on the cell"
            % (abs(tare) / ADC_FULL_SCALE * 100),
            file=sys.stderr,
        )
    _ask("2/%d  Put the reference load cell in the stack, then press Enter: " % (len(at_n) + 2))
    points = []
    try:
        for i, f in enumerate(at_n, 3):
            link.command("hold", mpa=f / area)
            _wait_state(link, ("hold",))
            link.command("gap")  # the motor still: the force steady while both are read
            time.sleep(1.0)
            text = _ask(
                "%d/%d  The fixture presses about %.0f N. What does the reference read (N)? " % (i, len(at_n) + 2, f)
            )
            try:
                ref = float(text)
            except ValueError:
                raise CalibrationError("not a number: %r" % text) from None
            counts, sd, _ = average_raw(link)
            check_point(tare, counts, ref)
            points.append((ref, counts, sd))
            print("      %.3f N -> %.1f counts (noise %.1f)" % (ref, counts, sd), file=sys.stderr)
    finally:
        link.command("release")
    span, res, rms, u_pct = fit(tare, points)
    prev: Any = old.get("span_counts_per_n")
    if isinstance(prev, list):
        # Several load cells: raw_counts is their sum in channel 0's counts, whose span is
        # channel 0's; the fixture scales every cell's span alike.
        prev = prev[0]
    summary: dict[str, Any] = {
        "tare_counts": round(tare),
        "span_counts_per_n": span,
        "points": [[round(f, 3), round(c)] for f, c, _ in points],
        "residuals_n": [round(r, 4) for r in res],
        "residual_rms_n": rms,
        "uncertainty_pct": u_pct,
        "previous_span_counts_per_n": prev,
        "change_pct": None if not prev else (span / prev - 1) * 100,
    }
    print(
        "span %.4f counts/N%s; residuals %s N (rms %.4f N); span uncertainty +-%.3f %% (k = 2)"
        % (
            span,
            "" if not prev else " (was %.4f: %+.3f %%)" % (prev, summary["change_pct"]),
            ", ".join("%+.3f" % r for r in res),
            rms,
            u_pct,
        ),
        file=sys.stderr,
    )
    if not yes and _ask("store it on the fixture? y/n ").lower() != "y":
        raise CalibrationError("not stored: the fixture keeps its calibration")
    _wait_state(link, ("idle",))
    extra: dict[str, Any] = {"tare_temperature_c": round(temp, 3)} if temp is not None else {}
    r = link.command(
        "set_calibration",
        tare_counts=round(tare),
        span_counts_per_n=span,
        reference=reference[:60],
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        points=summary["points"],
        residual_rms_n=round(rms, 4),
        uncertainty_pct=round(u_pct, 4),
        **extra,
    )
    summary["stored"] = r["calibration"]
    if as_json:
        import json

        print(json.dumps(summary))
    else:
        print("stored: span %.4f counts/N, tare %d counts, against '%s'" % (span, round(tare), reference))
    return 0
