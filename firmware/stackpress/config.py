"""The fixture's settings: one schema with defaults, ranges and units (settings.txt).

Every value a host may change is checked here, so a bad value gets a message that
names the allowed range and the unit, and nothing changes. The schema is read from
settings.txt beside this module whenever it is needed (boot, `set`, `config`): kept in
RAM it cost 8 KB of heap. A board without the file cannot start (safemode.py says so).
"""

import gc

from stackpress.protocol import Parts

_FILE = __file__.rsplit("/", 1)[0] + "/settings.txt"

# Changing these re-interprets the measured force, so they are refused mid-test (a span
# tempco typed 100 times too big moves the held force by percent at once).
LOCKED_WHILE_CONTROLLING = (
    "cell_area_mm2",
    "um_per_step",
    "load_cell_zero_n_per_k",
    "load_cell_span_per_k",
    "load_cell_creep_per_30min",
    "load_cell_creep_tau_s",
)
# These shape the hold loop: while it runs, its gain (loop_gain / stiffness) may fall but
# rise at most LOOP_STEP-fold, and the step rate move at most LOOP_STEP-fold, per change.
LOOP_KEYS = ("loop_gain", "stiffness_n_per_um", "max_step_rate_hz")
LOOP_STEP = 2.0


class ConfigError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _each(fn):
    """fn(key, spec text, description) for every setting, read from the file now."""
    with open(_FILE) as f:
        while True:
            line = f.readline()
            if not line:
                return
            if line[0] != "#":
                k, _, rest = line.partition(": ")
                spec, _, text = rest.partition(": ")
                fn(k, spec, text.rstrip())


def _parse(spec):
    d, lo, hi, unit, kind = spec.split()
    t = int if kind == "int" else float
    return t(d), t(lo), t(hi), unit, kind == "int"


def schema():
    """{key: (default, min, max, unit, integral)} of every setting."""
    sch = {}

    def add(k, sp, _):
        sch[k] = _parse(sp)

    _each(add)
    return sch


def spec(key):
    """(default, min, max, unit, integral) of setting `key`, or None."""
    found = []

    def see(k, sp, _):
        if k == key:
            found.append(sp)

    _each(see)
    return _parse(found[0]) if found else None


def check(key, value, sch=None):
    """Return the value coerced to its type, or raise ConfigError (`sch`: schema(), when
    many are checked at once)."""
    s = None
    if isinstance(key, str):
        s = sch.get(key) if sch is not None else spec(key)
    if s is None:
        raise ConfigError("unknown_key", "unknown setting %r; known: %s" % (key, ", ".join(sorted(sch or schema()))))
    _, lo, hi, unit, integral = s
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("type", "%s takes a number in %s, got %r" % (key, unit, value))
    if not (lo <= value <= hi):  # also refuses nan; first, as int() of inf raises
        raise ConfigError("range", "%s must be between %s and %s %s, got %s" % (key, lo, hi, unit, value))
    if integral and value != int(value):
        raise ConfigError("type", "%s takes a whole number of %s, got %r" % (key, unit, value))
    return int(value) if integral else float(value)


class Changed:
    """Settings `cfg` as they would be with `key` set to `value`, for reading, without a
    copy: a copy of every setting takes one block of 0.7 KB that a fragmented heap may
    not have."""

    def __init__(self, cfg, key, value):
        self._cfg = cfg
        self._key = key
        self._value = value

    def __getitem__(self, k):
        return self._value if k == self._key else self._cfg[k]


def loop_change(old, new):
    """How many times as aggressive the hold loop becomes from settings `old` to `new`
    (its gain: loop_gain / stiffness), and the step rate's change either way."""
    g = (new["loop_gain"] / new["stiffness_n_per_um"]) / (old["loop_gain"] / old["stiffness_n_per_um"])
    r = new["max_step_rate_hz"] / old["max_step_rate_hz"]
    return g, max(r, 1 / r)


def defaults():
    return {k: v[0] for k, v in schema().items()}


def merged(stored):
    """Defaults overlaid with every stored value that is still valid."""
    sch = schema()
    bad = []
    if isinstance(stored, dict):
        for k, v in stored.items():
            try:
                sch[k] = (check(k, v, sch),)
            except ConfigError:
                bad.append(k)
    # Built once the text read is garbage and gone: the settings, kept for good, then
    # take the heap's first free room rather than leave holes between them.
    gc.collect()
    cfg = {}
    for k, v in sch.items():
        cfg[k] = v[0] * 1  # a new float, in the room the text left (int: the same)
    return cfg, bad


def describe(cfg):
    """Every setting with its value, unit and range, in parts (protocol.Parts): one dict of
    every setting needs one block of heap (592 B on the unix port) that a fragmented one may
    not have, and `config --json` failed so mid-hold."""
    parts = Parts()

    def add(k, sp, _):
        _, lo, hi, unit, _ = _parse(sp)
        parts.put(k, {"value": cfg[k], "unit": unit, "min": lo, "max": hi})

    _each(add)
    return parts


def help_texts():
    """What each setting is (the text is documentation: a board whose file lost it still
    works)."""
    parts = Parts()

    def add(k, _, text):
        parts.put(k, text)

    try:
        _each(add)
    except OSError:
        pass
    return parts
