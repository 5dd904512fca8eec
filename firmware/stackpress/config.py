"""The fixture's settings: one schema with defaults, ranges and units.

Every value a host may change is checked here, so a bad value gets a message that
names the allowed range and the unit, and nothing changes.
"""

# key: (default, min, max, unit, integral); what each one is: settings.txt beside this file
SCHEMA = {
    "cell_area_mm2": (78.54, 0.5, 2000.0, "mm2", False),
    "max_pressure_mpa": (80.0, 1.0, 500.0, "MPa", False),
    "load_cell_capacity_n": (10000.0, 10.0, 200000.0, "N", False),
    "ramp_rate_mpa_s": (1.0, 0.001, 20.0, "MPa/s", False),
    "release_rate_mpa_s": (0.5, 0.001, 20.0, "MPa/s", False),
    "um_per_step": (0.0125, 0.0001, 100.0, "um", False),
    "stiffness_n_per_um": (16.0, 0.01, 100000.0, "N/um", False),
    "loop_gain": (0.25, 0.01, 0.9, "1", False),
    "max_step_rate_hz": (20000, 10, 200000, "Hz", True),
    "travel_limit_um": (5000.0, 10.0, 100000.0, "um", False),
    "contact_force_n": (20.0, 0.5, 2000.0, "N", False),
    "release_backoff_um": (50.0, 0.0, 5000.0, "um", False),
    "telemetry_period_ms": (1000, 10, 60000, "ms", True),
    "load_cell_zero_n_per_k": (0.0, -50.0, 50.0, "N/K", False),
    "frame_um_per_k": (0.097, -10.0, 10.0, "um/K", False),
    "sample_timeout_ms": (1000, 100, 8000, "ms", True),
    "max_jump_n": (250.0, 1.0, 100000.0, "N", False),
    "stuck_samples": (20, 3, 10000, "samples", True),
    "load_cell_radius_mm": (30.0, 1.0, 500.0, "mm", False),
    "max_nonuniformity_pct": (25.0, 1.0, 200.0, "%", False),
    "estimate_alarm_mpa": (0.1, 0.005, 100.0, "MPa", False),
    "channel_disagree_n": (2.0, 0.2, 1000.0, "N", False),
    "stall_force_n": (20.0, 1.0, 10000.0, "N", False),
    "tare_max_shift_n": (50.0, 0.5, 10000.0, "N", False),
    "hold_alarm_band_mpa": (0.5, 0.01, 100.0, "MPa", False),
    "hold_alarm_after_s": (10, 1, 3600, "s", True),
}

# Changing these re-interprets the measured force, so they are refused mid-test.
LOCKED_WHILE_CONTROLLING = ("cell_area_mm2", "um_per_step")
# These shape the hold loop: while it runs, its gain (loop_gain / stiffness) may fall but
# rise at most LOOP_STEP-fold, and the step rate move at most LOOP_STEP-fold, per change.
LOOP_KEYS = ("loop_gain", "stiffness_n_per_um", "max_step_rate_hz")
LOOP_STEP = 2.0


class ConfigError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def check(key, value):
    """Return the value coerced to its type, or raise ConfigError."""
    spec = SCHEMA.get(key) if isinstance(key, str) else None
    if spec is None:
        raise ConfigError("unknown_key", "unknown setting %r; known: %s" % (key, ", ".join(sorted(SCHEMA))))
    _, lo, hi, unit, integral = spec
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("type", "%s takes a number in %s, got %r" % (key, unit, value))
    if not (lo <= value <= hi):  # also refuses nan; first, as int() of inf raises
        raise ConfigError("range", "%s must be between %s and %s %s, got %s" % (key, lo, hi, unit, value))
    if integral and value != int(value):
        raise ConfigError("type", "%s takes a whole number of %s, got %r" % (key, unit, value))
    return int(value) if integral else float(value)


def loop_change(old, new):
    """How many times as aggressive the hold loop becomes from settings `old` to `new`
    (its gain: loop_gain / stiffness), and the step rate's change either way."""
    g = (new["loop_gain"] / new["stiffness_n_per_um"]) / (old["loop_gain"] / old["stiffness_n_per_um"])
    r = new["max_step_rate_hz"] / old["max_step_rate_hz"]
    return g, max(r, 1 / r)


def defaults():
    return {k: v[0] for k, v in SCHEMA.items()}


def merged(stored):
    """Defaults overlaid with every stored value that is still valid."""
    cfg = defaults()
    bad = []
    if isinstance(stored, dict):
        for k, v in stored.items():
            try:
                cfg[k] = check(k, v)
            except ConfigError:
                bad.append(k)
    return cfg, bad


def describe(cfg):
    """Every setting with its value, unit and range."""
    return {k: {"value": cfg[k], "unit": s[3], "min": s[1], "max": s[2]} for k, s in SCHEMA.items()}


def help_texts():
    """What each setting is, from settings.txt beside this module, read now: the text is
    documentation, kept out of the heap, and a board without the file still works."""
    d = {}
    try:
        with open(__file__.rsplit("/", 1)[0] + "/settings.txt") as f:
            for line in f:
                k, _, text = line.partition(": ")
                if k in SCHEMA:
                    d[k] = text.rstrip()
    except OSError:
        pass
    return d
