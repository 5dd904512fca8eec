"""`stackpress tempco LOG`: the load cells' zero drift per kelvin, from a log of the unloaded
fixture through a temperature change, as a metrologist measures it: no load, the force the
fixture reads against its frame thermistor, a straight line fitted, its standard error given.

The procedure (README, "Temperature compensation"): `release`, then `stackpress log` while
the room or a climate chamber changes the fixture's temperature by a few kelvin (hours: the
frame follows slowly), then this on the log. What it finds adds to the fixture's
`load_cell_zero_n_per_k` (the log's force already has the fixture's compensation taken
out); `--apply` sets the sum.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .logtable import read_log

MIN_SPAN_K = 2.0  # below this, the slope is mostly the load cells' noise and creep
MIN_POINTS = 30
UNLOADED_N = 50.0  # a log whose force goes past this is of a loaded fixture


class TempcoError(ValueError):
    pass


def zero_tempco(path: str) -> dict[str, Any]:
    """{"drift_n_per_k", "stderr_n_per_k", "delta_t_k", "points", "in_use_n_per_k",
    "new_n_per_k"} from the log at `path`; TempcoError when it can't tell."""
    df = read_log(path)
    meta = df.attrs["meta"]
    df = df[df["state"].isin(("idle", "gap"))][["temperature_c", "force_n"]].dropna()
    pts = list(zip(df["temperature_c"].tolist(), df["force_n"].tolist()))
    if len(pts) < MIN_POINTS:
        raise TempcoError(
            "%s has %d idle records with a temperature: at least %d needed" % (path, len(pts), MIN_POINTS)
        )
    loaded = max(abs(f) for _, f in pts)
    if loaded > UNLOADED_N:
        raise TempcoError(
            "the fixture read %.0f N in this log: the zero drift needs it unloaded ('release' first)" % loaded
        )
    ts = [t for t, _ in pts]
    span = max(ts) - min(ts)
    if span < MIN_SPAN_K:
        raise TempcoError(
            "the temperature in %s moved %.2f K: at least %.0f K are needed to tell the drift from noise"
            % (path, span, MIN_SPAN_K)
        )
    n = len(pts)
    mt = sum(ts) / n
    mf = sum(f for _, f in pts) / n
    sxx = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (f - mf) for t, f in pts) / sxx
    resid = sum((f - mf - slope * (t - mt)) ** 2 for t, f in pts)
    # Records are correlated in time (the thermal lag, the creep): the standard error of a
    # slope from independent points is a lower bound; the note says so.
    stderr = math.sqrt(resid / (n - 2) / sxx) if n > 2 else float("inf")
    settings = meta.get("settings") or "{}"
    try:
        in_use = (json.loads(settings) if isinstance(settings, str) else settings).get("load_cell_zero_n_per_k")
    except (ValueError, AttributeError):
        in_use = None
    return {
        "drift_n_per_k": slope,
        "stderr_n_per_k": stderr,
        "delta_t_k": span,
        "points": n,
        "in_use_n_per_k": in_use,
        "new_n_per_k": None if in_use is None else in_use + slope,
    }
