"""The fixture's settings: one schema with defaults, ranges and units.

Every value a host may change is checked here, so a bad value gets a message that
names the allowed range and the unit, and nothing changes.
"""

# key: (default, min, max, unit, integral, what it is)
SCHEMA = {
    "cell_area_mm2": (78.54, 0.5, 2000.0, "mm2", False, "area the force acts on (10 mm pellet: 78.54)"),
    "max_pressure_mpa": (80.0, 1.0, 500.0, "MPa", False, "pressure above which the fixture faults"),
    "load_cell_capacity_n": (10000.0, 10.0, 200000.0, "N", False, "rated capacity of each load cell"),
    "ramp_rate_mpa_s": (1.0, 0.001, 20.0, "MPa/s", False, "rate of rise towards a setpoint"),
    "release_rate_mpa_s": (0.5, 0.001, 20.0, "MPa/s", False, "rate of fall (step-down, release)"),
    "um_per_step": (0.0125, 0.0001, 100.0, "um", False, "plunger travel per microstep"),
    "stiffness_n_per_um": (16.0, 0.01, 100000.0, "N/um", False,
                           "small-signal stiffness seen by the motor while holding ('stackpress tune' measures it)"),
    "loop_gain": (0.25, 0.01, 0.9, "1", False, "fraction of the error corrected per sample"),
    "max_step_rate_hz": (20000, 10, 200000, "Hz", True, "fastest microstep rate"),
    "travel_limit_um": (5000.0, 10.0, 100000.0, "um", False, "largest travel from the boot position"),
    "contact_force_n": (20.0, 0.5, 2000.0, "N", False, "force that counts as contact"),
    "release_backoff_um": (50.0, 0.0, 5000.0, "um", False, "retraction after a release"),
    "telemetry_period_ms": (1000, 10, 60000, "ms", True,
                            "time between telemetry records (each carries the min and max between them)"),
    "load_cell_zero_n_per_k": (0.0, -50.0, 50.0, "N/K", False,
                               "load cell's zero drift per K at the frame thermistor, taken out of every "
                               "reading (0: none; measure it, as make bench does)"),
    "frame_um_per_k": (0.097, -10.0, 10.0, "um/K", False,
                       "fixture's thermal growth against the frame, taken out of thickness_um"),
    "sample_timeout_ms": (1000, 100, 8000, "ms", True, "silence from the ADC that raises a fault"),
    "max_jump_n": (250.0, 1.0, 100000.0, "N", False,
                   "largest change between two conversions that is believed (more: implausible_jump)"),
    "stuck_samples": (20, 3, 10000, "samples", True,
                      "identical conversions in a row that mean a stuck reading (the ADC's noise never repeats so)"),
    "load_cell_radius_mm": (30.0, 1.0, 500.0, "mm", False,
                            "radius of the circle the load cells stand on (channel 0 on +x, the others evenly "
                            "spaced counter-clockwise): places the load's centre"),
    "max_nonuniformity_pct": (25.0, 1.0, 200.0, "%", False,
                              "largest deviation of a load cell from the cells' mean load: beyond it, an alarm "
                              "while holding, a warning while ramping"),
    "channel_disagree_n": (2.0, 0.2, 1000.0, "N", False,
                           "a load cell whose reading departs this far from what the others imply (by the shares "
                           "the cells had when the hold settled), while the others agree, is outvoted (3 or more "
                           "load cells)"),
    "stall_force_n": (20.0, 1.0, 10000.0, "N", False,
                      "force change that one second of steps in contact must make, by the configured "
                      "stiffness, before a stall is judged (at least 1/8 of it must show)"),
}

# Changing these re-interprets the measured force, so they are refused mid-test.
LOCKED_WHILE_CONTROLLING = ("cell_area_mm2", "um_per_step")


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
    _, lo, hi, unit, integral, _ = spec
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("type", "%s takes a number in %s, got %r" % (key, unit, value))
    if integral and value != int(value):
        raise ConfigError("type", "%s takes a whole number of %s, got %r" % (key, unit, value))
    if not (lo <= value <= hi):  # also refuses nan
        raise ConfigError("range", "%s must be between %s and %s %s, got %s" % (key, lo, hi, unit, value))
    return int(value) if integral else float(value)


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
    return {k: {"value": cfg[k], "unit": s[3], "min": s[1], "max": s[2], "help": s[5]} for k, s in SCHEMA.items()}
