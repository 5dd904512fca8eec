"""Protocol commands: validate every argument, then call the instrument's verbs, or
refuse and change nothing.

Each handler returns the reply's data (a dict) or raises Refused with a code and a
message a person can act on; ranges and units are always in the message. The physical
state a command assumes is checked by the verb it calls (instrument.py); what is
checked here is the command itself: its arguments, the lock, a running profile.
"""

import gc

from stackpress import config as cfgmod
from stackpress import history
from stackpress import profile as profmod
from stackpress.instrument import Refused
from stackpress.protocol import MAX_LINE, Parts
from stackpress.version import FIRMWARE_VERSION, PROTOCOL_VERSION


def _number(obj, key, lo, hi, unit):
    if key not in obj:
        raise Refused("missing", "'%s' (%s) is required" % (key, unit))
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Refused("type", "'%s' must be a number in %s, got %r" % (key, unit, v))
    if not (lo <= v <= hi):
        raise Refused("range", "'%s' %s %s out of range: allowed %.3g to %.4g %s" % (key, v, unit, lo, hi, unit))
    return float(v)


def _numbers(obj, key, n, lo, hi, unit):
    """A list of n numbers, each checked as _number checks one."""
    v = obj.get(key)
    if not isinstance(v, list) or len(v) != n:
        raise Refused("type", "'%s' must be a list of %d numbers (%s), one per load cell" % (key, n, unit))
    return [_number({key: x}, key, lo, hi, unit) for x in v]


def _not_locked(app, obj):
    if app.locked:
        raise Refused(
            "locked", "the fixture is locked (a test is running): '%s' changes pressure; 'unlock' first" % obj["cmd"]
        )


def hello(app, obj):
    return {
        "firmware_version": FIRMWARE_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "board": app.board.name,
        "runtime": app.runtime(),
        "fixture_id": app.board.unique_id(),
        "boot": app.boot,
        "boot_id": app.boot_id,
        "max_line_bytes": MAX_LINE,
    }


def schema(app, obj):
    """What this firmware's telemetry records hold: their fields in order (units in the
    names), and the protocol they follow."""
    return {"protocol_version": PROTOCOL_VERSION, "telemetry": history.fields(app.hist.load_cells)}


def status(app, obj):
    gc.collect()  # so the heap figures are the live footprint, not garbage
    d = Parts(app.instrument.describe())
    d.append(hello(app, obj))
    d.append(
        {
            "uptime_s": app.clock.s + app.clock.ms / 1000,
            "sample_rate_sps": app.board.sample_rate_sps,
            "samples": app.samples,
            "seq": app.seq,
            "oldest_seq": app.hist.oldest_seq(),
            "history_records": app.hist.cap,
            "locked": app.locked,
        }
    )
    d.append(
        {
            "reset_cause": app.reset_cause,
            "frames_dropped": app.out.dropped,
            "memory_errors": app.memory_errors,
            "flash_free_bytes": app.store.free_bytes(),
            "heap_free_bytes": gc.mem_free(),
            "heap_alloc_bytes": gc.mem_alloc(),
        }
    )
    d.append(app.link.describe())
    if hasattr(app.board, "scenario"):
        d.append({"scenario": app.board.scenario()})
    return d


def heap(app, obj):
    # Imported when asked for: a diagnostic, not worth its kilobyte of heap in every boot.
    from stackpress.heap import report

    return report(app.memory_errors)


def hold(app, obj):
    ins = app.instrument
    mpa = _number(obj, "mpa", 0.1, ins.max_setpoint_mpa(), "MPa")
    _not_locked(app, obj)
    ins.hold(mpa)
    return {"setpoint_mpa": mpa, "state": ins.state_name()}


def gap(app, obj):
    _not_locked(app, obj)
    app.instrument.gap()
    return {"state": "gap"}


JOG_MAX_UM = 100.0


def jog(app, obj):
    """Move the motor by `um` (+ = more compression) while idle or in gap: probing, set-up."""
    um = _number(obj, "um", -JOG_MAX_UM, JOG_MAX_UM, "um")
    _not_locked(app, obj)
    steps = app.instrument.jog(um)
    return {"steps": steps, "um": steps * app.instrument.cfg["um_per_step"]}


def idle(app, obj):
    _not_locked(app, obj)
    app.instrument.idle()
    return {"state": "idle"}


def release(app, obj):
    _not_locked(app, obj)
    app.instrument.release()
    return {"state": "release"}


def ack(app, obj):
    cleared = app.instrument.ack()
    return {"cleared": cleared, "state": app.instrument.state_name()}


def config_get(app, obj):
    """The settings; with "help": true, what each one is instead (two replies, as one would
    not fit the output queue beside the telemetry)."""
    if obj.get("help") is True:
        return {"help": cfgmod.help_texts()}
    return {"config": cfgmod.describe(app.instrument.cfg)}


def config_set(app, obj):
    _not_locked(app, obj)
    key = obj.get("key")
    try:
        value = cfgmod.check(key, obj.get("value"))
    except cfgmod.ConfigError as e:
        raise Refused(e.code, e.msg)
    app.instrument.check_settings(key, cfgmod.Changed(app.instrument.cfg, key, value))
    app.save_settings(key, value)
    return {"key": key, "value": value, "unit": cfgmod.spec(key)[3]}


def tare(app, obj):
    """Zero the load cells where they read now, only when the fixture is demonstrably
    unloaded (the instrument's tare says when)."""
    _not_locked(app, obj)
    cal = app.instrument.tare()
    app.save_calibration(cal, tared=True)
    return {"tare_counts": cal["tare_counts"]}


def _text(obj, key, n):
    v = obj.get(key, "")
    if not isinstance(v, str) or len(v) > n:
        raise Refused("type", "'%s' must be text of at most %d characters" % (key, n))
    return v


def set_calibration(app, obj):
    """Store a calibration measured by the host (`stackpress calibrate`): tare, span, the
    reference it was made against, its date, points and figures of merit."""
    _not_locked(app, obj)
    ins = app.instrument
    ins.require_idle("set_calibration", "a new calibration changes every force reading")
    n = ins.load_cells
    if n > 1 and isinstance(obj.get("tare_counts"), list):
        # Each load cell's own zero and span (its certificate, or a calibration of each).
        tares = [int(v) for v in _numbers(obj, "tare_counts", n, -0x800000, 0x7FFFFF, "counts")]
        tare_c, span = ins.calibration(tares, _numbers(obj, "span_counts_per_n", n, 1.0, 100000.0, "counts/N"))
    else:
        # One load cell; or several calibrated as one against a reference under the whole
        # stack: numbers for the summed reading (status raw_counts), in channel 0's counts.
        t = _number(obj, "tare_counts", -0x800000 * n, 0x7FFFFF * n, "counts")
        tare_c, span = ins.calibration(t, _number(obj, "span_counts_per_n", 1.0, 100000.0, "counts/N"))
    pts = obj.get("points", [])
    if (
        not isinstance(pts, list)
        or len(pts) > 6
        or not all(
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
            for p in pts
        )
    ):
        raise Refused("type", "'points' must be up to 6 pairs [force_n, counts]")
    cal = {
        "tare_counts": tare_c,
        "zero_counts": tare_c,
        "span_counts_per_n": span,
        "reference": _text(obj, "reference", 60),
        "date": _text(obj, "date", 32),
        "points": pts,
    }
    for k in ("residual_rms_n", "uncertainty_pct", "tare_temperature_c"):
        if k in obj:
            cal[k] = _number(
                obj, k, -1000.0, 1000.0, "N" if k == "residual_rms_n" else "%" if k[-3:] == "pct" else "degC"
            )
    app.save_calibration(cal)
    return {"calibration": cal}


def repl(app, obj):
    """Park and hand the serial line to the MicroPython REPL (for mpremote)."""
    _not_locked(app, obj)
    app.instrument.park()
    app.handover = True  # before the save: the reset that ends the REPL is a deliberate one
    app.save_state()  # a reset then resumes what was running
    return {"state": "repl", "resume_on_reset": app.instrument.state_name()}


def reset(app, obj):
    app.instrument.park()
    app.reset_requested = True
    app.save_state()
    return {"resume": app.instrument.state_name()}


def lock(app, obj):
    """Protect a running test: commands that change pressure are refused until unlock."""
    app.locked = True
    app.save_state()
    return {"locked": True, "state": app.instrument.state_name()}


def unlock(app, obj):
    app.locked = False
    app.save_state()
    return {"locked": False}


def replay(app, obj):
    """Send again the records of this boot from `from_seq` on (telemetry and events, in
    sequence order, after this reply); records older than `oldest_seq` are gone."""
    if "from_seq" not in obj:
        raise Refused("missing", "'from_seq' (a sequence number of this boot) is required")
    a = obj["from_seq"]
    if isinstance(a, bool) or not isinstance(a, int) or a < 1:
        raise Refused("type", "'from_seq' must be a whole number >= 1, got %r" % (a,))
    if "boot" in obj and obj["boot"] != app.boot:
        raise Refused(
            "boot",
            "records of boot %r are gone: the fixture has restarted since (this is boot %d)" % (obj["boot"], app.boot),
        )
    z = obj.get("to_seq", app.seq)
    if isinstance(z, bool) or not isinstance(z, int) or z < a:
        raise Refused("type", "'to_seq' must be a whole number >= from_seq, got %r" % (z,))
    z = min(z, app.seq)
    oldest = app.hist.oldest_seq()
    first = max(a, oldest)
    app.hist.start(first, z)
    return {
        "boot": app.boot,
        "from_seq": first,
        "to_seq": z,
        "oldest_seq": oldest,
        "lost": max(0, min(oldest, z + 1) - a),
    }


def profile_set(app, obj):
    """Store a schedule: `steps` [[mpa, rate_mpa_s, hold_s], ...] (hold -1: until stopped)."""
    _not_locked(app, obj)
    ins = app.instrument
    lo, hi = cfgmod.spec("ramp_rate_mpa_s")[1:3]
    try:
        steps = profmod.check(obj.get("steps"), ins.max_setpoint_mpa(), lo, hi)
    except profmod.ProfileError as e:
        raise Refused("range", e.msg)
    ins.store_profile(steps)
    app.save_state()
    return profile_status(app, obj)


def profile_run(app, obj):
    _not_locked(app, obj)
    app.instrument.profile_run()
    app.save_state()
    return profile_status(app, obj)


def profile_stop(app, obj):
    """Stop the schedule where it is: the fixture goes on holding the setpoint it had."""
    _not_locked(app, obj)
    if app.instrument.profile_stop():
        app.save_state()
    return profile_status(app, obj)


def analog_test(app, obj):
    # Imported when asked for: a set-up step, not worth its heap in every boot.
    from stackpress.analogtest import analog_test as run

    return run(app, obj, _number, _not_locked)


def profile_status(app, obj):
    return app.instrument.profile_status()


HANDLERS = {
    "hello": hello,
    "status": status,
    "hold": hold,
    "gap": gap,
    "idle": idle,
    "release": release,
    "ack": ack,
    "jog": jog,
    "config": config_get,
    "set": config_set,
    "tare": tare,
    "repl": repl,
    "reset": reset,
    "lock": lock,
    "unlock": unlock,
    "replay": replay,
    "profile_set": profile_set,
    "profile_run": profile_run,
    "profile_stop": profile_stop,
    "profile": profile_status,
    "set_calibration": set_calibration,
    "schema": schema,
    "analog_test": analog_test,
    "heap": heap,
}


def handle(app, obj):
    h = HANDLERS.get(obj["cmd"])
    if h is None:
        raise Refused("unknown", "unknown command %r; known: %s" % (obj["cmd"], ", ".join(sorted(HANDLERS))))
    return h(app, obj)
