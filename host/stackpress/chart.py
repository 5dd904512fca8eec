"""Text charts for the terminal: a value against a reference line, on a fixed grid."""

from __future__ import annotations

from collections.abc import Sequence


def line_chart(
    values: Sequence[float], width: int = 60, height: int = 8, ref: float | None = None, min_span: float | None = None
) -> list[str]:
    """Rows of text plotting the last `width` values; `ref` drawn as a dotted line."""
    vals = list(values)[-width:]
    if not vals:
        return ["(no data yet)"]
    lo, hi = min(vals), max(vals)
    if ref is not None:
        lo, hi = min(lo, ref), max(hi, ref)
    span = hi - lo
    if min_span and span < min_span:
        mid = (hi + lo) / 2
        lo, hi, span = mid - min_span / 2, mid + min_span / 2, min_span
    span = span or 1.0

    def row_of(v):
        return min(height - 1, max(0, int(round((hi - v) / span * (height - 1)))))

    grid = [[" "] * len(vals) for _ in range(height)]
    if ref is not None:
        r = row_of(ref)
        grid[r] = ["┈"] * len(vals)
    for x, v in enumerate(vals):
        grid[row_of(v)][x] = "●"
    labels = [hi - span * i / (height - 1) for i in range(height)]
    return ["%10.4f │%s" % (labels[i], "".join(grid[i])) for i in range(height)]
