"""The analog pressure output's check against what the cycler reads (hardware/README.md,
"Pressure into the cycler's file"): `stackpress analog test V` holds the output at a test
voltage (the fixture in gap or idle); the person reads the cycler's auxiliary input (or a
voltmeter at its terminals) and gives the pairs to `stackpress analog fit CODE:VOLTS ...`,
which fits the DAC's two ends (analog_out_zero_v, analog_out_full_scale_v) by least
squares, says what is left (the DAC's nonlinearity) in mV and in MPa, and with --apply
sets them.
"""

from __future__ import annotations

from typing import Any

DAC_CODES = 4096  # the MCP4725's 12 bits (firmware/stackpress/mcp4725.py)


class AnalogError(Exception):
    """A check that can't be fitted, with why (exit code 2)."""


def parse_points(texts: list[str]) -> list[tuple[int, float]]:
    """'124:0.1021' -> (124, 0.1021): the code `analog test` reported and the volts read."""
    points = []
    for t in texts:
        code, sep, volts = t.partition(":")
        try:
            c, v = int(code), float(volts)
        except ValueError:
            why = "CODE:VOLTS, as 'stackpress analog test' printed the code (e.g. 1861:1.503)"
            raise AnalogError("%r: %s" % (t, why)) from None
        if not sep or not 0 <= c < DAC_CODES or not -10 <= v <= 10:
            raise AnalogError("%r: a code 0-%d and the volts read (-10 to 10 V)" % (t, DAC_CODES - 1))
        points.append((c, v))
    if len({c for c, _ in points}) < 2:
        raise AnalogError("give two codes or more, far apart (e.g. from 0.5, 1.5 and 2.8 V)")
    return points


def fit(points: list[tuple[int, float]], mpa_per_v: float) -> dict[str, Any]:
    """The DAC's measured ends from (code, volts read) pairs, and the residuals."""
    n = len(points)
    mc = sum(c for c, _ in points) / n
    mv = sum(v for _, v in points) / n
    sxx = sum((c - mc) ** 2 for c, _ in points)
    slope = sum((c - mc) * (v - mv) for c, v in points) / sxx
    zero_v = mv - slope * mc
    full_scale_v = zero_v + slope * DAC_CODES
    residuals_mv = [1000 * (v - (zero_v + slope * c)) for c, v in points]
    worst = max(abs(r) for r in residuals_mv)
    return {
        "analog_out_zero_v": round(zero_v, 5),
        "analog_out_full_scale_v": round(full_scale_v, 5),
        "residuals_mv": [round(r, 3) for r in residuals_mv],
        "residual_max_mv": round(worst, 3),
        "residual_max_mpa": round(worst / 1000 * mpa_per_v, 4),
        "points": n,
    }
