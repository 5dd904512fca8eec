"""Text charts for the terminal: a value against a reference line, on a fixed grid."""

from __future__ import annotations

from collections.abc import Sequence

LABEL_WIDTH = 12  # "%10.4f │"


def line_chart(
    values: Sequence[float | None],
    width: int = 60,
    height: int = 8,
    ref: float | None = None,
    min_span: float | None = None,
    focus: Sequence[bool] | None = None,
) -> list[str]:
    """Rows of text plotting the last `width` values (None: a gap); `ref` drawn as a dotted
    line. With `focus` (one flag per value), the scale is set by the flagged values alone
    (a hold's, not the ramp's into it) and the others, where they leave it, are drawn as
    ▲ or ▼ at its edge."""
    vals = list(values)[-width:]
    flags = list(focus)[-width:] if focus is not None else [True] * len(vals)
    scaled = [v for v, f in zip(vals, flags) if v is not None and f]
    if not scaled:
        scaled = [v for v in vals if v is not None]
    if not scaled:
        return ["(no data yet)"] + [""] * (height - 1)
    lo, hi = min(scaled), max(scaled)
    if ref is not None:
        lo, hi = min(lo, ref), max(hi, ref)
    span = hi - lo
    if min_span and span < min_span:
        mid = (hi + lo) / 2
        lo, hi, span = mid - min_span / 2, mid + min_span / 2, min_span
    span = span or 1.0

    def row_of(v: float) -> int:
        return int(round((hi - v) / span * (height - 1)))

    grid = [[" "] * len(vals) for _ in range(height)]
    if ref is not None:
        grid[min(height - 1, max(0, row_of(ref)))] = ["┈"] * len(vals)
    for x, v in enumerate(vals):
        if v is None:
            continue
        r = row_of(v)
        if r < 0:
            grid[0][x] = "▲"
        elif r > height - 1:
            grid[height - 1][x] = "▼"
        else:
            grid[r][x] = "●"
    labels = [hi - span * i / (height - 1) for i in range(height)] if height > 1 else [hi]
    return ["%10.4f │%s" % (labels[i], "".join(grid[i])) for i in range(height)]


def _ago(s: float) -> str:
    if s < 120:
        return "%.0f s" % s
    if s < 7200:
        return "%.0f min" % (s / 60)
    return "%.1f h" % (s / 3600)


def time_axis(times_s: Sequence[float], width: int) -> str:
    """The line under a chart of the last `width` points taken at `times_s` (the
    fixture's clock, s): how long ago its left end and its middle are."""
    ts = list(times_s)[-width:]
    if len(ts) < 2:
        return " " * LABEL_WIDTH + "(the fixture's clock)"
    n = len(ts)
    line = [" "] * n
    marks = [(0, "-" + _ago(ts[-1] - ts[0])), (n // 2, "-" + _ago(ts[-1] - ts[n // 2]))]
    for at, text in marks:
        if at + len(text) < n - 4:
            line[at : at + len(text)] = list(text)
    line[n - 3 :] = list("now")
    return " " * (LABEL_WIDTH - 1) + "└" + "".join(line)
