"""Pressure profiles on the host: read a TOML schedule, check it, send it to the fixture.

The fixture stores and runs the schedule itself (the firmware's `profile_*` commands,
PROTOCOL.md); this module turns the file a person writes, with units in every key,
into its steps [[mpa, rate_mpa_s, hold_s], ...] and says exactly what is wrong with one.
"""

from __future__ import annotations

import tomllib
from typing import Any

MAX_STEPS = 24  # the firmware's limit (a schedule travels in one protocol line)
RATE_MPA_S = (0.001, 20.0)
HOLD_KEYS = {"hold_s": 1, "hold_min": 60, "hold_h": 3600}
STEP_KEYS = {"to_mpa", "rate_mpa_s", "until_stopped"} | set(HOLD_KEYS)
UNTIL_STOPPED = -1


class ProfileError(ValueError):
    pass


def load(path: str) -> tuple[str, list[list[float | int]]]:
    """(name, steps) from a TOML file, or ProfileError saying where and what is allowed."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ProfileError("can't read %s: %s" % (path, e.strerror)) from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError("%s is not valid TOML: %s" % (path, e)) from None
    return doc.get("name", str(path)), steps_of(doc)


def steps_of(doc: dict[str, Any]) -> list[list[float | int]]:
    unknown = set(doc) - {"name", "step"}
    if unknown:
        raise ProfileError("unknown top-level keys %s: a profile has 'name' and [[step]] tables" % sorted(unknown))
    raw = doc.get("step")
    if not isinstance(raw, list) or not raw:
        raise ProfileError("no steps: add [[step]] tables (to_mpa, rate_mpa_s, and a hold)")
    if len(raw) > MAX_STEPS:
        raise ProfileError("%d steps: the fixture holds at most %d" % (len(raw), MAX_STEPS))
    out = []
    for i, s in enumerate(raw, 1):
        where = "step %d" % i
        bad = set(s) - STEP_KEYS
        if bad:
            raise ProfileError(
                "%s: unknown keys %s; a step has %s" % (where, sorted(bad), ", ".join(sorted(STEP_KEYS)))
            )
        for k in ("to_mpa", "rate_mpa_s"):
            if k not in s:
                raise ProfileError("%s: '%s' is missing" % (where, k))
            if isinstance(s[k], bool) or not isinstance(s[k], (int, float)):
                raise ProfileError("%s: '%s' must be a number, got %r" % (where, k, s[k]))
        if not s["to_mpa"] > 0:
            raise ProfileError("%s: to_mpa must be above 0 MPa, got %g" % (where, s["to_mpa"]))
        lo, hi = RATE_MPA_S
        if not lo <= s["rate_mpa_s"] <= hi:
            raise ProfileError(
                "%s: rate_mpa_s must be between %g and %g MPa/s, got %g" % (where, lo, hi, s["rate_mpa_s"])
            )
        holds = [k for k in HOLD_KEYS if k in s] + (["until_stopped"] if "until_stopped" in s else [])
        if len(holds) != 1:
            raise ProfileError(
                "%s: give exactly one of hold_s, hold_min, hold_h or until_stopped = true (got %s)"
                % (where, ", ".join(holds) or "none")
            )
        if holds[0] == "until_stopped":
            if s["until_stopped"] is not True:
                raise ProfileError("%s: until_stopped must be true (or leave it out and give a hold)" % where)
            if i != len(raw):
                raise ProfileError("%s: only the last step can hold until stopped" % where)
            hold = UNTIL_STOPPED
        else:
            v = s[holds[0]]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ProfileError("%s: %s must be a number >= 0, got %r" % (where, holds[0], v))
            hold = round(v * HOLD_KEYS[holds[0]])
        out.append([float(s["to_mpa"]), float(s["rate_mpa_s"]), int(hold)])
    return out


def describe(steps: list[list[float | int]]) -> list[str]:
    """One line per step, for a person."""
    lines = []
    for i, (mpa, rate, hold) in enumerate(steps, 1):
        h = "until stopped" if hold == UNTIL_STOPPED else "for %s" % duration(hold)
        lines.append("%2d. ramp to %.3f MPa at %g MPa/s, hold %s" % (i, mpa, rate, h))
    return lines


def duration(s: float) -> str:
    if s >= 3600:
        return "%.2f h" % (s / 3600)
    if s >= 60:
        return "%.1f min" % (s / 60)
    return "%d s" % s
