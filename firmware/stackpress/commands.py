"""Protocol commands: validate every argument, then act, or refuse and change nothing.

Each handler returns the reply's data (a dict) or raises CommandError with a code
and a message a person can act on; ranges and units are always in the message.
"""
import gc

from stackpress import config as cfgmod
from stackpress.controller import FAULT, GAP, HOLD, IDLE, MODE_NAMES, RAMP, RELEASE
from stackpress import profile as profmod
from stackpress.loadcells import REASONS, LoadCells
from stackpress.protocol import MAX_LINE
from stackpress.safety import CHANNEL_FAULT, END_STOP, IN_END_STOP, IN_ESTOP, SENSOR_BAD
from stackpress.version import FIRMWARE_VERSION, PROTOCOL_VERSION


class CommandError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _number(obj, key, lo, hi, unit):
    if key not in obj:
        raise CommandError("missing", "'%s' (%s) is required" % (key, unit))
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise CommandError("type", "'%s' must be a number in %s, got %r" % (key, unit, v))
    if not (lo <= v <= hi):
        raise CommandError("range", "'%s' %s %s out of range: allowed %.3g to %.4g %s" % (key, v, unit, lo, hi, unit))
    return float(v)


def _numbers(obj, key, n, lo, hi, unit):
    """A list of n numbers, each checked as _number checks one."""
    v = obj.get(key)
    if not isinstance(v, list) or len(v) != n:
        raise CommandError("type", "'%s' must be a list of %d numbers (%s), one per load cell" % (key, n, unit))
    return [_number({key: x}, key, lo, hi, unit) for x in v]


def _not_in_fault(app):
    if app.ctrl.mode == FAULT:
        raise CommandError("fault", "fixture is in fault (%s): acknowledge with 'ack' first"
                           % ", ".join(app.safety.names()))


def _controlling(app):
    """The hold loop runs, or a fault interrupted it and `ack` resumes it."""
    m = app.ctrl.mode
    if m == FAULT:
        m = app.mode_before_fault
    return m in (RAMP, HOLD, RELEASE)


def _not_locked(app, obj):
    if app.locked:
        raise CommandError("locked", "the fixture is locked (a test is running): '%s' changes pressure; "
                           "'unlock' first" % obj["cmd"])


def hello(app, obj):
    return {"firmware_version": FIRMWARE_VERSION, "protocol_version": PROTOCOL_VERSION,
            "board": app.board.name, "runtime": app.runtime(), "fixture_id": app.board.unique_id(),
            "boot": app.boot, "boot_id": app.boot_id, "max_line_bytes": MAX_LINE}


def status(app, obj):
    gc.collect()  # so the heap figures are the live footprint, not garbage
    c = app.cfg
    d = hello(app, obj)
    d.update({
        "state": MODE_NAMES[app.ctrl.mode],
        "pressure_mpa": round(app.pressure_mpa(app.net), 5),
        "setpoint_mpa": round(app.setpoint_mpa, 4),
        "force_n": round(app.cell.force_n(app.net), 3),
        "force_filtered_n": round(app.force_filtered_n(), 3),
        "position_um": round(app.stepper.position * c["um_per_step"], 4),
        "moving": app.stepper.moving(),
        "thickness_um": app.thickness_um(),
        "temperature_c": app.board.temperature_c(),
        "stiffness_n_per_um": c["stiffness_n_per_um"],
        "cell_area_mm2": c["cell_area_mm2"],
        "alarms": app.safety.names(),
        "uptime_s": app.clock.s + app.clock.ms / 1000,
        "sample_rate_sps": app.board.sample_rate_sps,
        "samples": app.samples,
        "boot": app.boot,
        "seq": app.seq,
        "oldest_seq": app.hist.oldest_seq(),
        "history_records": app.hist.cap,
        "locked": app.locked,
        "reset_cause": app.reset_cause,
        "sensor_trusted": app.safety.trusted(),
        "frames_dropped": app.out.dropped,
        "memory_errors": app.memory_errors,
        "raw_counts": app.raw,
        "estop_open": bool(app.safety.inputs & IN_ESTOP),
        "end_stop_open": bool(app.safety.inputs & IN_END_STOP),
        "driver_enabled": app.driver_on,
        "flash_free_bytes": app.store.free_bytes(),
        "profile_running": app.profile.running,
        "profile_step": app.profile.index + 1 if app.profile.running else None,
        "calibration": app.calib,
        "heap_free_bytes": gc.mem_free(),
        "heap_alloc_bytes": gc.mem_alloc(),
        "load_cells": app.cells.n,
    })
    if app.cells.n > 1:
        span0 = app.cell.span_counts_per_n
        d["channels"] = app.cells.describe(span0)
        u, c = app.spread()
        d["uniformity_pct"] = None if u is None else round(u, 2)
        d["centre_offset_mm"] = None if c is None else [round(c[0], 3), round(c[1], 3)]
        d["raw_counts_channels"] = list(app.hx.values)
    if hasattr(app.board, "scenario"):
        d["scenario"] = app.board.scenario()
    return d


def hold(app, obj):
    mpa = _number(obj, "mpa", 0.1, app.max_setpoint_mpa(), "MPa")
    _not_locked(app, obj)
    _not_in_fault(app)
    app.start_hold(mpa)
    return {"setpoint_mpa": mpa, "state": MODE_NAMES[app.ctrl.mode]}


def gap(app, obj):
    _not_locked(app, obj)
    _not_in_fault(app)
    app.stepper.stop()
    app.ctrl.set_mode(GAP)
    return {"state": "gap"}


JOG_MAX_UM = 100.0


def jog(app, obj):
    """Move the motor by `um` (+ = more compression) while idle or in gap: probing, set-up."""
    um = _number(obj, "um", -JOG_MAX_UM, JOG_MAX_UM, "um")
    _not_locked(app, obj)
    _not_in_fault(app)
    if app.ctrl.mode not in (IDLE, GAP):
        raise CommandError("state", "jog moves the motor by hand: only in idle or gap (now %s)"
                           % MODE_NAMES[app.ctrl.mode])
    if app.stepper.moving():
        raise CommandError("busy", "the previous move is still running: try again when 'moving' is false")
    steps = int(um / app.cfg["um_per_step"] + (0.5 if um >= 0 else -0.5))
    why = app.safety.check_move(app.stepper.position, steps)
    if why == END_STOP:
        app.fault()
        raise CommandError("end_stop", "the end stop is open and a %.3f um move goes towards it (or which way "
                           "reached it is unknown): fault latched; ack, then jog the other way" % um)
    if why:
        app.fault()
        raise CommandError("travel_limit", "a %.3f um move would leave the travel limit of %g um: fault latched"
                           % (um, app.cfg["travel_limit_um"]))
    app.stepper.move(steps)
    return {"steps": steps, "um": steps * app.cfg["um_per_step"]}


def idle(app, obj):
    _not_locked(app, obj)
    _not_in_fault(app)
    app.stepper.stop()
    app.ctrl.set_mode(IDLE)
    app.dil.clear()
    return {"state": "idle"}


def release(app, obj):
    _not_locked(app, obj)
    _not_in_fault(app)
    app.setpoint_mpa = 0.0
    app.ctrl.release(app.net)
    app.dil.clear()
    return {"state": "release"}


def ack(app, obj):
    sf = app.safety
    if sf.latched & SENSOR_BAD and not sf.trusted():
        why = sf.names(sf.bad) or ["no conversions yet"]
        raise CommandError("sensor", "the load cell is not trusted yet (%s): control can't resume on it; "
                           "check its wiring and the ADC, then ack again" % ", ".join(why))
    if sf.inputs & IN_ESTOP:
        raise CommandError("estop", "the e-stop is pressed (or its circuit is open): release it, then ack")
    cleared = app.safety.names()
    app.safety.ack()
    app.cells.ack()
    if app.cells.excluded:
        app.safety.trip(CHANNEL_FAULT)  # a load cell still bad stays out, and said so
    if not app.driver_on:
        app.driver_on = True
        app.board.driver_enable(True)
    if app.ctrl.mode == FAULT:
        m = app.mode_before_fault
        if m in (RAMP, HOLD) and app.setpoint_mpa > 0:
            app.start_hold(app.setpoint_mpa)
        elif m == RELEASE:
            app.ctrl.release(app.net)
        elif m == GAP:
            app.ctrl.set_mode(GAP)
        else:
            app.ctrl.set_mode(IDLE)
    return {"cleared": cleared, "state": MODE_NAMES[app.ctrl.mode]}


def config_get(app, obj):
    """The settings; with "help": true, what each one is instead (two replies, as one would
    not fit the output queue beside the telemetry)."""
    if obj.get("help") is True:
        return {"help": cfgmod.help_texts()}
    return {"config": cfgmod.describe(app.cfg)}


def config_set(app, obj):
    _not_locked(app, obj)
    key = obj.get("key")
    try:
        value = cfgmod.check(key, obj.get("value"))
    except cfgmod.ConfigError as e:
        raise CommandError(e.code, e.msg)
    if key in cfgmod.LOCKED_WHILE_CONTROLLING and _controlling(app):
        raise CommandError("locked", "%s can't change while the fixture controls pressure (%s): "
                           "stop with 'gap' or 'idle' first" % (key, MODE_NAMES[app.ctrl.mode]))
    new = dict(app.cfg)
    new[key] = value
    if key in cfgmod.LOOP_KEYS and _controlling(app):
        g, r = cfgmod.loop_change(app.cfg, new)
        if g > cfgmod.LOOP_STEP or r > cfgmod.LOOP_STEP:
            raise CommandError("loop", "%s %s %s would make the running hold loop %.3g times as %s (at most %g "
                               "at a time): change it in steps, or go to 'gap' first and hold again"
                               % (key, value, cfgmod.SCHEMA[key][3], g if g > cfgmod.LOOP_STEP else r,
                                  "aggressive" if g > cfgmod.LOOP_STEP else "fast or slow", cfgmod.LOOP_STEP))
    if app.setpoint_mpa > app.max_setpoint_mpa(new):
        raise CommandError("range", "%s=%s would put the current setpoint %.3f MPa above the allowed maximum"
                           % (key, value, app.setpoint_mpa))
    app.store.save("config", new)
    app.cfg = new
    app.apply_config()
    return {"key": key, "value": value, "unit": cfgmod.SCHEMA[key][3]}


def tare(app, obj):
    """Zero the load cells, only when the fixture is demonstrably unloaded: idle and still
    since a release backed the plunger off, and reading within tare_max_shift_n of the
    calibrated zero (a tare under load would make every later hold press harder)."""
    _not_locked(app, obj)
    if app.ctrl.mode != IDLE or app.stepper.moving() or app.backed_off_at is None or \
            app.stepper.position > app.backed_off_at:
        raise CommandError("state", "tare needs the fixture unloaded: 'release' first (it steps the pressure "
                           "down and backs the plunger off), then tare while it is idle (now %s)"
                           % MODE_NAMES[app.ctrl.mode])
    if app.samples < 4 or not app.safety.trusted():
        raise CommandError("state", "no trusted force reading yet: wait for the load cell")
    cal = dict(app.calib)
    cells = app.cells
    if cells.n == 1:
        cal["tare_counts"] = cells.tare[0] + app.zero_offset + (app.ctrl.f_q4 >> 4)
        cal["span_counts_per_n"] = cells.span[0]
    else:
        bad = [i for i in range(cells.n) if cells.bad_now[i]]
        if bad:
            raise CommandError("sensor", "every load cell must read to tare them: load cell %s gives %s"
                               % (bad[0], REASONS[cells.bad_now[bad[0]]]))
        cal["tare_counts"] = list(app.hx.values)  # each cell's reading now is its zero
        cal["span_counts_per_n"] = list(cells.span)
    shift = app.zero_shift_n(cal["tare_counts"])
    if abs(shift) > app.cfg["tare_max_shift_n"]:
        raise CommandError("loaded", "the load cells read %.1f N from their calibrated zero, and a tare may move it "
                           "by %g N at most (tare_max_shift_n): the fixture is not unloaded. 'release' it; if "
                           "the zero really moved, recalibrate ('stackpress calibrate')"
                           % (shift, app.cfg["tare_max_shift_n"]))
    t = app.board.temperature_c()
    if t is not None:
        cal["tare_temperature_c"] = round(t, 3)  # the zero drift is counted from here
    app.store.save("calib", cal)
    app.calib = cal
    app._calibrate_cells()
    app.cells.retare()  # a load cell left out (a drifted one) is back with its new zero
    app.apply_config()  # also recomputes the zero drift offset from the new reference
    return {"tare_counts": cal["tare_counts"]}


def _text(obj, key, n):
    v = obj.get(key, "")
    if not isinstance(v, str) or len(v) > n:
        raise CommandError("type", "'%s' must be text of at most %d characters" % (key, n))
    return v


def set_calibration(app, obj):
    """Store a calibration measured by the host (`stackpress calibrate`): tare, span, the
    reference it was made against, its date, points and figures of merit."""
    _not_locked(app, obj)
    if app.ctrl.mode != IDLE:
        raise CommandError("state", "a new calibration changes every force reading: only when idle (now %s)"
                           % MODE_NAMES[app.ctrl.mode])
    n = app.cells.n
    if n > 1 and isinstance(obj.get("tare_counts"), list):
        # Each load cell's own zero and span (its certificate, or a calibration of each).
        tares = [int(v) for v in _numbers(obj, "tare_counts", n, -0x800000, 0x7FFFFF, "counts")]
        spans = _numbers(obj, "span_counts_per_n", n, 1.0, 100000.0, "counts/N")
        try:
            LoadCells(n).calibrate(tares, spans)  # refused here, before anything is stored
        except ValueError as e:
            raise CommandError("range", str(e))
        tare_c, span = tares, spans  # type: object, object
    else:
        # One load cell; or several calibrated as one against a reference under the whole
        # stack: numbers for the summed reading (status raw_counts), in channel 0's counts.
        t = _number(obj, "tare_counts", -0x800000 * n, 0x7FFFFF * n, "counts")
        s = _number(obj, "span_counts_per_n", 1.0, 100000.0, "counts/N")
        tare_c, span = app.cells.combined_calibration(t, s) if n > 1 else (int(t), s)
    pts = obj.get("points", [])
    if (not isinstance(pts, list) or len(pts) > 6 or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in p) for p in pts)):
        raise CommandError("type", "'points' must be up to 6 pairs [force_n, counts]")
    cal = {"tare_counts": tare_c, "zero_counts": tare_c, "span_counts_per_n": span,
           "reference": _text(obj, "reference", 60),
           "date": _text(obj, "date", 32), "points": pts}
    for k in ("residual_rms_n", "uncertainty_pct", "tare_temperature_c"):
        if k in obj:
            cal[k] = _number(obj, k, -1000.0, 1000.0, "N" if k == "residual_rms_n" else "%" if k[-3:] == "pct"
                             else "degC")
    app.store.save("calib", cal)
    app.calib = cal
    app._calibrate_cells()
    app.apply_config()
    return {"calibration": cal}


def repl(app, obj):
    """Park and hand the serial line to the MicroPython REPL (for mpremote)."""
    _not_locked(app, obj)
    app.stepper.stop()
    app.save_state()  # a reset then resumes what was running
    app.handover = True
    return {"state": "repl", "resume_on_reset": MODE_NAMES[app.ctrl.mode]}


def reset(app, obj):
    app.stepper.stop()
    app.save_state()
    app.reset_requested = True
    return {"resume": MODE_NAMES[app.ctrl.mode]}


def lock(app, obj):
    """Protect a running test: commands that change pressure are refused until unlock."""
    app.locked = True
    app.save_state()
    return {"locked": True, "state": MODE_NAMES[app.ctrl.mode]}


def unlock(app, obj):
    app.locked = False
    app.save_state()
    return {"locked": False}


def replay(app, obj):
    """Send again the records of this boot from `from_seq` on (telemetry and events, in
    sequence order, after this reply); records older than `oldest_seq` are gone."""
    if "from_seq" not in obj:
        raise CommandError("missing", "'from_seq' (a sequence number of this boot) is required")
    a = obj["from_seq"]
    if isinstance(a, bool) or not isinstance(a, int) or a < 1:
        raise CommandError("type", "'from_seq' must be a whole number >= 1, got %r" % (a,))
    if "boot" in obj and obj["boot"] != app.boot:
        raise CommandError("boot", "records of boot %r are gone: the fixture has restarted since "
                           "(this is boot %d)" % (obj["boot"], app.boot))
    z = obj.get("to_seq", app.seq)
    if isinstance(z, bool) or not isinstance(z, int) or z < a:
        raise CommandError("type", "'to_seq' must be a whole number >= from_seq, got %r" % (z,))
    z = min(z, app.seq)
    oldest = app.hist.oldest_seq()
    first = max(a, oldest)
    app.hist.start(first, z)
    return {"boot": app.boot, "from_seq": first, "to_seq": z, "oldest_seq": oldest,
            "lost": max(0, min(oldest, z + 1) - a)}


def profile_set(app, obj):
    """Store a schedule: `steps` [[mpa, rate_mpa_s, hold_s], ...] (hold -1: until stopped)."""
    _not_locked(app, obj)
    if app.profile.running:
        raise CommandError("profile", "a profile is running: 'profile_stop' before storing another")
    lo, hi = cfgmod.SCHEMA["ramp_rate_mpa_s"][1:3]
    try:
        app.profile.steps = profmod.check(obj.get("steps"), app.max_setpoint_mpa(), lo, hi)
    except profmod.ProfileError as e:
        raise CommandError("range", e.msg)
    app.save_state()
    return profile_status(app, obj)


def profile_run(app, obj):
    _not_locked(app, obj)
    _not_in_fault(app)
    if not app.profile.steps:
        raise CommandError("profile", "no profile stored: 'profile_set' first")
    if app.profile.running:
        raise CommandError("profile", "the profile is running already (step %d)" % (app.profile.index + 1))
    app.profile.start()
    app.profile_step()
    return profile_status(app, obj)


def profile_stop(app, obj):
    """Stop the schedule where it is: the fixture goes on holding the setpoint it had."""
    _not_locked(app, obj)
    if app.profile.running:
        app.profile.stop()
        app.apply_config()
        app.event("profile", stopped=True, step=app.profile.index + 1, setpoint_mpa=app.setpoint_mpa)
        app.save_state()
    return profile_status(app, obj)


def profile_status(app, obj):
    p = app.profile
    return {"steps": p.steps, "running": p.running, "step": p.index + 1 if p.running else None,
            "holding": p.holding if p.running else None, "held_s": p.held_s if p.running else None,
            "remaining_s": p.remaining_s() if p.running else None, "setpoint_mpa": app.setpoint_mpa,
            "state": MODE_NAMES[app.ctrl.mode]}


HANDLERS = {
    "hello": hello, "status": status, "hold": hold, "gap": gap, "idle": idle,
    "release": release, "ack": ack, "jog": jog, "config": config_get, "set": config_set,
    "tare": tare, "repl": repl, "reset": reset, "lock": lock, "unlock": unlock, "replay": replay,
    "profile_set": profile_set, "profile_run": profile_run, "profile_stop": profile_stop,
    "profile": profile_status, "set_calibration": set_calibration,
}
# While a profile runs it owns the setpoint: these would take it away.
BLOCKED_BY_PROFILE = ("hold", "gap", "idle", "release", "jog", "tare", "set_calibration")


def handle(app, obj):
    h = HANDLERS.get(obj["cmd"])
    if h is None:
        raise CommandError("unknown", "unknown command %r; known: %s" % (obj["cmd"], ", ".join(sorted(HANDLERS))))
    if app.profile.running and obj["cmd"] in BLOCKED_BY_PROFILE:
        raise CommandError("profile", "a profile is running (step %d of %d): '%s' would take the setpoint from "
                           "it; 'profile_stop' first" % (app.profile.index + 1, len(app.profile.steps), obj["cmd"]))
    return h(app, obj)
