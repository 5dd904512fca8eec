"""The instrument: the fixture's modes and its control iteration, in one place.

It owns everything that acts on the force: the load cells' fusion, safety, the
controller, the stepper, the dilatometer, the setpoint, the profile and the mode a
fault interrupted. Every change of mode goes through one of its verbs (hold, release,
gap, idle, jog, ack, resume, fault, profile_run, profile_stop, tare, recalibrate,
apply_settings); each checks the physical state it assumes and refuses (Refused: a
code and a message a person can act on) before it changes anything. Arguments are
checked by commands.py; the loop, the serial line, the records and the flash are the
App's.
"""

from math import exp

from stackpress import config as cfgmod
from stackpress.controller import FAULT, GAP, HOLD, IDLE, MODE_NAMES, RAMP, RELEASE, Controller
from stackpress.dilatometer import Dilatometer
from stackpress.history import (
    ALARMS_N,
    CH0_MN,
    FORCE_MN,
    MS_MODE,
    NONE,
    P_10PA,
    PMAX_10PA,
    PMIN_10PA,
    POS_01NM,
    RAW,
    REF_10PA,
    SP_100PA,
    TEMP_MC,
    THK_01NM,
    fix,
)
from stackpress.loadcells import NOMINAL_SPAN_COUNTS_PER_N, REASONS, LoadCells, centre_offset_mm, scale, uniformity_pct
from stackpress.loadcells import ONE as ONE_Q14
from stackpress.profile import Profile
from stackpress.safety import (
    CHANNEL_FAULT,
    END_STOP,
    ESTIMATE_UNCERTAIN,
    ESTOP,
    IN_END_STOP,
    IN_ESTOP,
    NONUNIFORM,
    SENSOR_BAD,
    SENSOR_TIMEOUT,
    TOO_MUCH,
    Safety,
)
from stackpress.stepper import Stepper

THICKNESS_SETTLE_MS = 5000
# Excursions of the held force below this are the hold's own ripple and the readings' noise
# (three load cells at 10 SPS: their peaks over a day reach about 1 N) more than a slide of
# the springs; counted, they made a slowly swelling cell's thickness drift 0.17 um more.
SLIP_DEADBAND_N = 1.0


class Refused(Exception):
    """A verb or a command refused: nothing changed."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Instrument:
    def __init__(self, board, adc, event, cfg=None):
        self.board = board
        self.adc = adc  # the load cells' ADC: .n channels, .values, read()
        self.event = event  # records what happened (the App's event record)
        self.safety = Safety()
        self.ctrl = Controller()
        self.loadcells = LoadCells(adc.n)
        self.load_cells = adc.n
        self.stepper = Stepper(board.step_pulses, board.dir_pin, 20000)
        self.dil = Dilatometer()
        self.profile = Profile()
        self.cfg = cfg or cfgmod.defaults()
        self.calib = {"zero_counts": 0}  # type: dict
        self.setpoint_mpa = 0.0
        self.interrupted = IDLE  # the mode a fault interrupted: what `ack` resumes
        self.backed_off_at = None  # position when a release last finished backing off
        self.driver_on = True
        board.driver_enable(True)
        self.zero_offset = 0  # counts: the load cells' zero drift and creep, taken out (compensate)
        self.span_g = ONE_Q14  # their span change with temperature, taken out: Q14
        self.creep_n = 0.0
        self.raw = 0
        self.net = 0
        self.net_min = 0  # extremes between telemetry records: no excursion goes unreported
        self.net_max = 0
        self.n_since_tel = 0
        self.channels_out = 0  # load cells newly left out, for the event
        self._warned = False
        self.uncertainty_mpa = None  # with a load cell left out: how far the estimate may be off
        self.slip_hi = 0  # the force's extremes since the thickness reference (the springs'
        self.slip_lo = 0  # friction: dilatometer.py), counts
        self.ramp_p = self.ramp_net = self.ramp_at = 0  # where the ramp's last tenth began
        self._hold_since = None
        self.apply_settings(self.cfg)

    # --- what it is doing (reading these changes nothing) ---
    def state_name(self):
        return MODE_NAMES[self.ctrl.mode]

    # --- units at the edges (allocate: never called from the control iteration) ---
    def pressure_mpa(self, net):
        return net / self.loadcells.span[0] / self.cfg["cell_area_mm2"]

    def force_n(self, net):
        return net / self.loadcells.span[0]

    def force_filtered_n(self):
        return (self.ctrl.f_q4 >> 4) / self.loadcells.span[0]

    def max_setpoint_mpa(self, cfg=None):
        c = self.cfg if cfg is None else cfg
        return 0.95 * min(c["max_pressure_mpa"], self.loadcells.n * c["load_cell_capacity_n"] / c["cell_area_mm2"])

    def slip_um_per_n(self):
        """How much more the springs give per N while they slide than the small-signal
        stiffness says: over the ramp's last tenth of force (the springs slid all the way to
        the hold), signed by the ramp's direction; 0 without such a ramp (after a reset)."""
        dp = (self.stepper.position - self.ramp_p) * self.cfg["um_per_step"]
        df = self.force_n(self.net - self.ramp_net)
        if not self.ramp_at or dp * df <= 0 or abs(df) < 2 * self.cfg["contact_force_n"]:
            return 0.0
        c = dp / df - 1 / self.cfg["stiffness_n_per_um"]
        return (c if df > 0 else -c) if c > 0 else 0.0

    def thickness_um(self):
        if self.ctrl.mode != HOLD:
            return None
        d = self.dil
        if d.ref is not None:
            f0 = self.loadcells.counts(d.ref[1])
            e = self.slip_hi - f0 if d.slip_um_per_n > 0 else f0 - self.slip_lo
            d.excursion_n = max(d.excursion_n, self.force_n(e) - SLIP_DEADBAND_N)
        c = self.cfg
        # The raw sample, not the display filter: the filter lags, and the noise is
        # 0.05 N / (N/um) -- a few nm.
        return self.dil.thickness_um(
            self.stepper.position,
            self.force_n(self.net),
            self.board.temperature_c(),
            c["um_per_step"],
            c["stiffness_n_per_um"],
            c["frame_um_per_k"],
        )

    def spread(self, f=None):
        """(uniformity %, centre (x, y) mm) of the load cells' forces `f` (now, if None);
        (None, None) below contact, where the split of no load is only noise."""
        f = f or self.loadcells.forces_n(self.loadcells.span[0])
        if sum(f) <= self.cfg["contact_force_n"]:
            return None, None
        return uniformity_pct(f), centre_offset_mm(f, self.cfg["load_cell_radius_mm"])

    def describe(self):
        """The instrument's part of `status`: a list of small dicts (commands.status sends
        them as one object: a fragmented heap has no block for one big table)."""
        c = self.cfg
        sf = self.safety
        p = self.profile
        lc = self.loadcells
        d = []
        d.append(
            {
                "state": self.state_name(),
                "pressure_mpa": round(self.pressure_mpa(self.net), 5),
                "setpoint_mpa": round(self.setpoint_mpa, 4),
                "force_n": round(self.force_n(self.net), 3),
                "force_filtered_n": round(self.force_filtered_n(), 3),
                "position_um": round(self.stepper.position * c["um_per_step"], 4),
                "moving": self.stepper.moving(),
                "thickness_um": self.thickness_um(),
                "temperature_c": self.board.temperature_c(),
                "pressure_uncertainty_mpa": self.uncertainty_mpa,
                "thickness_slip_um": None if self.dil.ref is None else round(self.dil.slip_um(), 4),
                "stiffness_n_per_um": c["stiffness_n_per_um"],
                "cell_area_mm2": c["cell_area_mm2"],
            }
        )
        d.append(
            {
                "alarms": sf.names(),
                "sensor_trusted": sf.trusted(),
                "raw_counts": self.raw,
                "estop_open": bool(sf.inputs & IN_ESTOP),
                "end_stop_open": bool(sf.inputs & IN_END_STOP),
                "driver_enabled": self.driver_on,
                "profile_running": p.running,
                "profile_step": p.index + 1 if p.running else None,
                "calibration": self.calib,
                "load_cells": lc.n,
            }
        )
        if lc.n > 1:
            u, ctr = self.spread()
            d.append(
                {
                    "channels": lc.describe(lc.span[0]),
                    "uniformity_pct": None if u is None else round(u, 2),
                    "centre_offset_mm": None if ctr is None else [round(ctr[0], 3), round(ctr[1], 3)],
                    "raw_counts_channels": list(self.adc.values),
                }
            )
        return d

    # --- settings and calibration ---
    def apply_settings(self, cfg):
        """Use settings `cfg` (checked by config.py, and by check_settings while running)."""
        self.cfg = c = cfg
        span = self.loadcells.span[0]
        sps = self.board.sample_rate_sps
        # A running profile step's rate, both ways; otherwise the configured ones.
        self.ctrl.configure(c, span, sps, self.profile.step()[1] if self.profile.running else None)
        self.stepper.rate_hz = c["max_step_rate_hz"]
        self.safety.configure(c, span, sps, self.zero_shift_n() * span)
        self.loadcells.configure(c, span, sps)
        self.ctrl.target = self.loadcells.counts(self.setpoint_mpa * c["cell_area_mm2"])
        self.compensate(0.0)

    def check_settings(self, key, new):
        """Refuse settings `new` (`key` changed) that the running hold can't take."""
        m = self.ctrl.mode
        # The hold loop runs, or a fault interrupted it and `ack` resumes it.
        controlling = (self.interrupted if m == FAULT else m) in (RAMP, HOLD, RELEASE)
        if key in cfgmod.LOCKED_WHILE_CONTROLLING and controlling:
            raise Refused(
                "locked",
                "%s can't change while the fixture controls pressure (%s): "
                "stop with 'gap' or 'idle' first" % (key, self.state_name()),
            )
        if key in cfgmod.LOOP_KEYS and controlling:
            g, r = cfgmod.loop_change(self.cfg, new)
            if g > cfgmod.LOOP_STEP or r > cfgmod.LOOP_STEP:
                raise Refused(
                    "loop",
                    "%s %s %s would make the running hold loop %.3g times as %s (at most %g "
                    "at a time): change it in steps, or go to 'gap' first and hold again"
                    % (
                        key,
                        new[key],
                        cfgmod.spec(key)[3],
                        g if g > cfgmod.LOOP_STEP else r,
                        "aggressive" if g > cfgmod.LOOP_STEP else "fast or slow",
                        cfgmod.LOOP_STEP,
                    ),
                )
        if self.setpoint_mpa > self.max_setpoint_mpa(new):
            raise Refused(
                "range",
                "%s=%s would put the current setpoint %.3f MPa above the allowed maximum"
                % (key, new[key], self.setpoint_mpa),
            )

    def recalibrate(self, calib, tared=False):
        """Use calibration `calib`: per load cell tare and span (numbers for one load
        cell, lists for several; the total is in load cell 0's counts); `tared`: it is a
        new tare (tare()), so a load cell left out (a drifted one) is back with its new
        zero. Returns why it could not be used (then the nominal span is), or None."""
        self.calib = calib
        if "zero_counts" not in calib:  # stored before zeros were kept apart from tares
            calib["zero_counts"] = calib.get("tare_counts", 0)
        lc = self.loadcells
        n = lc.n
        tares = calib.get("tare_counts", 0)
        spans = calib.get("span_counts_per_n", NOMINAL_SPAN_COUNTS_PER_N)
        tares = tares if isinstance(tares, list) else [tares] * n
        spans = spans if isinstance(spans, list) else [spans] * n
        why = None
        try:
            if len(tares) != n or len(spans) != n:
                raise ValueError("calibration is for %d load cells, the board has %d" % (len(tares), n))
            lc.calibrate(tares, spans)
        except (ValueError, TypeError) as e:
            why = "calibration not used: %s" % e
            lc.calibrate([0] * n, [NOMINAL_SPAN_COUNTS_PER_N] * n)
        if tared:
            lc.retare()
        self.apply_settings(self.cfg)  # limits and targets in the new counts
        return why

    def require_idle(self, verb, why):
        """Refuse `verb` unless idle (`why`: what it would do otherwise)."""
        self._no_profile(verb)
        if self.ctrl.mode != IDLE:
            raise Refused("state", "%s: only when idle (now %s)" % (why, self.state_name()))

    def zero_shift_n(self, tares=None):
        """How far the tares (`tares`, or those in use) put the zero above the calibrated
        one, N in the summed reading: what a reading is short of the force from that zero."""
        z = self.calib.get("zero_counts", 0)
        t = self.calib.get("tare_counts", 0) if tares is None else tares
        lc = self.loadcells
        n = lc.n
        z = z if isinstance(z, list) and len(z) == n else [z / n] * n
        t = t if isinstance(t, list) and len(t) == n else [t / n] * n
        return sum((t[i] - z[i]) / lc.span[i] for i in range(n))

    def calibration(self, tare_counts, span_counts_per_n):
        """(tares, spans) to store for a calibration given as lists (each load cell's own)
        or as numbers (the summed reading, in load cell 0's counts: every span scaled
        alike, the zero shift shared); refused if the load cells can't take it."""
        lc = self.loadcells
        if isinstance(tare_counts, list):
            try:
                LoadCells(lc.n).calibrate(tare_counts, span_counts_per_n)  # refused here, before anything is stored
            except ValueError as e:
                raise Refused("range", str(e))
            return tare_counts, span_counts_per_n
        if lc.n > 1:
            return lc.combined_calibration(tare_counts, span_counts_per_n)
        return int(tare_counts), span_counts_per_n

    def tare(self):
        """The calibration with the load cells zeroed at their reading now; only when the
        fixture is demonstrably unloaded: idle and still since a release backed the
        plunger off, and reading within tare_max_shift_n of the calibrated zero (a tare
        under load would make every later hold press harder). Changes nothing: store the
        result, then recalibrate(result, tared=True)."""
        self._no_profile("tare")
        st = self.stepper
        if self.ctrl.mode != IDLE or st.moving() or self.backed_off_at is None or st.position > self.backed_off_at:
            raise Refused(
                "state",
                "tare needs the fixture unloaded: 'release' first (it steps the pressure "
                "down and backs the plunger off), then tare while it is idle (now %s)" % self.state_name(),
            )
        if not self.safety.trusted():
            raise Refused("state", "no trusted force reading yet: wait for the load cell")
        cal = dict(self.calib)
        lc = self.loadcells
        if lc.n == 1:
            cal["tare_counts"] = lc.tare[0] + self.zero_offset + (self.ctrl.f_q4 >> 4)
            cal["span_counts_per_n"] = lc.span[0]
        else:
            bad = [i for i in range(lc.n) if lc.bad_now[i]]
            if bad:
                raise Refused(
                    "sensor",
                    "every load cell must read to tare them: load cell %s gives %s"
                    % (bad[0], REASONS[lc.bad_now[bad[0]]]),
                )
            cal["tare_counts"] = list(self.adc.values)  # each cell's reading now is its zero
            cal["span_counts_per_n"] = list(lc.span)
        shift = self.zero_shift_n(cal["tare_counts"])
        if abs(shift) > self.cfg["tare_max_shift_n"]:
            raise Refused(
                "loaded",
                "the load cells read %.1f N from their calibrated zero, and a tare may move it "
                "by %g N at most (tare_max_shift_n): the fixture is not unloaded. 'release' it; if "
                "the zero really moved, recalibrate ('stackpress calibrate')" % (shift, self.cfg["tare_max_shift_n"]),
            )
        t = self.board.temperature_c()
        if t is not None:
            cal["tare_temperature_c"] = round(t, 3)  # the zero drift is counted from here
        return cal

    def compensate(self, dt_s=1.0):
        """Once a second, outside the control iteration (floats): what the load cells add to
        the force, taken out of every reading that follows (control() applies it in small
        ints). A reading is (F + creep) * (1 + span_tc dT) + zero_tc dT, dT from the
        temperature of the tare, creep following the load as one exponential: F is
        (reading - zero_offset) * span_g / 2**14."""
        c = self.cfg
        t = self.board.temperature_c()
        dt = 0.0 if t is None else t - self.calib.get("tare_temperature_c", 25.0)
        tau = c["load_cell_creep_tau_s"]
        k = c["load_cell_creep_per_30min"] / (1 - exp(-1800 / tau))
        self.creep_n += (k * self.force_n(self.net) - self.creep_n) * (1 - exp(-dt_s / tau))
        span = 1 + c["load_cell_span_per_k"] * dt
        self.span_g = int(ONE_Q14 / span + 0.5)
        self.zero_offset = int((c["load_cell_zero_n_per_k"] * dt + self.creep_n * span) * self.loadcells.span[0])

    # --- verbs: every change of mode is here ---
    def _no_profile(self, verb):
        p = self.profile
        if p.running:  # it owns the setpoint
            raise Refused(
                "profile",
                "a profile is running (step %d of %d): '%s' would take the setpoint from "
                "it; 'profile_stop' first" % (p.index + 1, len(p.steps), verb),
            )

    def _free(self, verb):
        self._no_profile(verb)
        if self.ctrl.mode == FAULT:
            raise Refused(
                "fault", "fixture is in fault (%s): acknowledge with 'ack' first" % ", ".join(self.safety.names())
            )

    def hold(self, mpa):
        """Ramp to `mpa` and hold it."""
        self._free("hold")
        self._hold(mpa)

    def _hold(self, mpa):
        if self.dil.ref is not None and self.dil.ref[3] != mpa:
            self.dil.clear()  # a new setpoint re-compresses springs and frame: a new reference
            self.ramp_at = 0
        self.setpoint_mpa = mpa
        self.ctrl.hold(self.loadcells.counts(mpa * self.cfg["cell_area_mm2"]), self.net)
        self.safety.stall_reset(self.net)

    def gap(self):
        """Hold the position, record the pressure."""
        self._free("gap")
        self.stepper.stop()
        self.ctrl.set_mode(GAP)

    def idle(self):
        self._free("idle")
        self.stepper.stop()
        self.ctrl.set_mode(IDLE)
        self.dil.clear()

    def release(self):
        """Step the pressure down gently, then back the plunger off."""
        self._free("release")
        self.setpoint_mpa = 0.0
        self.ctrl.release(self.net)
        self.dil.clear()

    def jog(self, um):
        """Move the motor by `um` (+ = more compression) while idle or in gap: probing,
        set-up. Returns the steps. A move the travel limit or the end stop forbids
        latches a fault and is refused."""
        self._free("jog")
        if self.ctrl.mode not in (IDLE, GAP):
            raise Refused("state", "jog moves the motor by hand: only in idle or gap (now %s)" % self.state_name())
        st = self.stepper
        if st.moving():
            raise Refused("busy", "the previous move is still running: try again when 'moving' is false")
        steps = int(um / self.cfg["um_per_step"] + (0.5 if um >= 0 else -0.5))
        why = self.safety.check_move(st.position, steps)
        if why == END_STOP:
            self.fault()
            raise Refused(
                "end_stop",
                "the end stop is open and a %.3f um move goes towards it (or which way "
                "reached it is unknown): fault latched; ack, then jog the other way" % um,
            )
        if why:
            self.fault()
            raise Refused(
                "travel_limit",
                "a %.3f um move would leave the travel limit of %g um: fault latched"
                % (um, self.cfg["travel_limit_um"]),
            )
        st.move(steps)
        return steps

    def fault(self):
        """Stop where it is and remember what was interrupted. Allocation-free."""
        m = self.ctrl.mode
        if m != FAULT:
            self.interrupted = m
            self.ctrl.set_mode(FAULT)
        self.stepper.stop()

    def ack(self):
        """Clear the alarms and resume what a fault interrupted. Returns the alarms cleared."""
        sf = self.safety
        if sf.latched & SENSOR_BAD and not sf.trusted():
            why = sf.names(sf.bad) or ["no conversions yet"]
            raise Refused(
                "sensor",
                "the load cell is not trusted yet (%s): control can't resume on it; "
                "check its wiring and the ADC, then ack again" % ", ".join(why),
            )
        if sf.inputs & IN_ESTOP:
            raise Refused("estop", "the e-stop is pressed (or its circuit is open): release it, then ack")
        cleared = sf.names()
        sf.ack()
        self.loadcells.ack()
        if self.loadcells.excluded:
            sf.trip(CHANNEL_FAULT)  # a load cell still bad stays out, and said so
        if not self.driver_on:
            self.driver_on = True
            self.board.driver_enable(True)
        if self.ctrl.mode == FAULT:
            self.resume(self.interrupted, self.setpoint_mpa)
        return cleared

    def resume(self, mode, setpoint_mpa):
        """Take up `mode` again from the force read now: one a fault interrupted, or
        the one running before a reset. A hold with no valid setpoint becomes idle."""
        if mode == RAMP or mode == HOLD:
            if isinstance(setpoint_mpa, (int, float)) and 0 < setpoint_mpa <= self.max_setpoint_mpa():
                self._hold(setpoint_mpa)
            else:
                self.ctrl.set_mode(IDLE)
        elif mode == RELEASE:
            self.ctrl.release(self.net)
        elif mode == GAP or mode == FAULT:
            self.ctrl.set_mode(mode)
        else:
            self.ctrl.set_mode(IDLE)

    def park(self):
        """Stop the motor, whatever the mode (before a reset or a REPL hand-over)."""
        self.stepper.stop()

    def store_profile(self, steps):
        """Keep the schedule `steps` (checked: profile.check) to run later."""
        if self.profile.running:
            raise Refused("profile", "a profile is running: 'profile_stop' before storing another")
        self.profile.steps = steps

    def profile_run(self):
        p = self.profile
        if p.running:
            raise Refused("profile", "the profile is running already (step %d)" % (p.index + 1))
        self._free("profile_run")
        if not p.steps:
            raise Refused("profile", "no profile stored: 'profile_set' first")
        p.start()
        self._profile_step()

    def profile_stop(self):
        """Stop the schedule where it is: the fixture goes on holding the setpoint it had.
        Returns whether one was running."""
        p = self.profile
        if not p.running:
            return False
        p.stop()
        self.apply_settings(self.cfg)
        self.event("profile", stopped=True, step=p.index + 1, setpoint_mpa=self.setpoint_mpa)
        return True

    def profile_status(self):
        p = self.profile
        r = p.running
        return {
            "steps": p.steps,
            "running": r,
            "step": p.index + 1 if r else None,
            "holding": p.holding if r else None,
            "held_s": p.held_s if r else None,
            "remaining_s": p.remaining_s() if r else None,
            "setpoint_mpa": self.setpoint_mpa,
            "state": self.state_name(),
        }

    def profile_tick(self, now):
        """Advance a running profile; returns True when it moved on (a state to keep)."""
        p = self.profile
        if not p.tick(self.ctrl.mode == HOLD, now, self.board.ticks_diff):
            return False
        if p.next():
            self._profile_step()
        else:
            self.apply_settings(self.cfg)  # the configured ramp rates again
            self.event("profile", done=True, setpoint_mpa=self.setpoint_mpa)
        return True

    def _profile_step(self):
        """Start the profile's current step: ramp at its rate to its pressure."""
        p = self.profile
        mpa, rate, hold = p.step()
        self.apply_settings(self.cfg)
        self._hold(mpa)
        self.event("profile", step=p.index + 1, steps=len(p.steps), mpa=mpa, rate_mpa_s=rate, hold_s=hold)

    # --- persistence: what a reset resumes ---
    def state(self):
        return {
            "mode": MODE_NAMES[self.ctrl.mode],
            "mode_before_fault": MODE_NAMES[self.interrupted],
            "setpoint_mpa": self.setpoint_mpa,
            "position_steps": self.stepper.position,
            "alarms": self.safety.latched,
            "thickness_ref": self.dil.as_list(),
            "creep_n": self.creep_n,
            "profile": self.profile.state(),
        }

    def restore(self, st, kept_alarms):
        """What a reset left (state() as stored): position, alarms in `kept_alarms`,
        thickness reference, profile. The mode itself comes back with resume(), once
        the force is read and trusted."""
        self.stepper.position = int(st.get("position_steps", 0))
        self.safety.trip(int(st.get("alarms", 0)) & kept_alarms)
        self.dil.restore(st.get("thickness_ref"))
        c = st.get("creep_n")
        self.creep_n = float(c) if isinstance(c, (int, float)) else 0.0
        if self.dil.ref is not None:
            self.slip_hi = self.slip_lo = self.loadcells.counts(self.dil.ref[1])
        lo, hi = cfgmod.spec("ramp_rate_mpa_s")[1:3]
        self.profile.restore(st.get("profile"), self.max_setpoint_mpa(), lo, hi)

    def take_over(self, st):
        """Resume the mode stored in `st` (state()) from the force read now."""
        names = MODE_NAMES
        b = st.get("mode_before_fault", "idle")
        self.interrupted = names.index(b) if b in names else IDLE
        m = st.get("mode", "idle")
        if m in names and m != "idle":  # idle: nothing to take up (a command may have come first)
            self.resume(names.index(m), st.get("setpoint_mpa", 0.0))

    def record_into(self, h, o, ms):
        """Fill telemetry entry `o` of history array `h` with what the instrument reads now
        (`ms`: the device clock's milliseconds in the second); the samples since the last
        one start a new count."""
        n = self.n_since_tel
        self.n_since_tel = 0
        thk = self.thickness_um()
        temp = self.board.temperature_c()
        p = self.pressure_mpa
        span = self.loadcells.span[0]
        h[o + MS_MODE] = ms | (self.ctrl.mode << 10)
        h[o + ALARMS_N] = self.safety.latched | (min(n, 0x3FFF) << 16)
        h[o + P_10PA] = fix(p(self.net), 1e5)
        h[o + SP_100PA] = fix(self.setpoint_mpa, 1e4)
        h[o + REF_10PA] = fix(p(self.ctrl.ref_q4 >> 4), 1e5)
        h[o + FORCE_MN] = fix(self.net / span, 1e3)
        h[o + POS_01NM] = fix(self.stepper.position * self.cfg["um_per_step"], 1e4)
        h[o + RAW] = self.raw
        h[o + PMIN_10PA] = fix(p(self.net_min), 1e5) if n else NONE
        h[o + PMAX_10PA] = fix(p(self.net_max), 1e5) if n else NONE
        h[o + THK_01NM] = NONE if thk is None else fix(thk, 1e4)
        h[o + TEMP_MC] = NONE if temp is None else fix(temp, 1e3)
        lc = self.loadcells
        if lc.n > 1:
            f = lc.forces_n(span)
            for i in range(lc.n):
                h[o + CH0_MN + i] = fix(f[i], 1e3)

    # --- the control iteration ---
    def control(self, mask):
        """The control iteration, on a conversion of the load cells in `mask`.
        Allocation-free (tests run it under heap_lock)."""
        lc = self.loadcells
        vals = self.adc.values
        net = scale(lc.update(vals, mask) - self.zero_offset, self.span_g)
        self.raw = vals[0] if lc.n == 1 else lc.raw_total
        sf = self.safety
        a = sf.check_sample(lc.bits, lc.healthy, net, net if lc.n == 1 else lc.max_ch)
        if lc.newly:
            self.channels_out |= lc.newly  # one left out: the others carry on, with an alarm
            sf.latched |= CHANNEL_FAULT
        if a & SENSOR_BAD:
            self.fault()  # no trusted force: hold position, never move blind
            return
        self.net = net
        if net > self.slip_hi:
            self.slip_hi = net
        elif net < self.slip_lo:
            self.slip_lo = net
        if self.n_since_tel:
            if net < self.net_min:
                self.net_min = net
            elif net > self.net_max:
                self.net_max = net
        else:
            self.net_min = net
            self.net_max = net
        self.n_since_tel += 1
        if sf.latched & ESTOP:
            return  # the driver is off until ack: nothing moves, the force is still recorded
        steps = self.ctrl.update(net)
        m = self.ctrl.mode
        if m == HOLD:
            sf.check_hold(net, self.ctrl.target)
        else:
            sf.outside = 0
        if a & TOO_MUCH or (m == FAULT and sf.latched & TOO_MUCH and net > sf.backoff_net):
            # Too much force, and a reading to trust: back off now, within this sample.
            self.fault()
            self.stepper.move(self.ctrl.backoff(net, sf.backoff_net))
            return
        if steps:
            if sf.check_move(self.stepper.position, steps):
                self.fault()
                return
            steps = self.stepper.move(steps)
        if m != FAULT and m != IDLE and m != GAP and net > self.ctrl.contact:
            if sf.check_stall(steps, net):
                self.fault()
        else:
            sf.stall_reset(net)

    def no_data(self):
        """No conversion for sample_timeout_ms: fault (once). Returns True when newly."""
        if self.safety.latched & SENSOR_TIMEOUT:
            return False
        self.safety.no_data()
        self.loadcells.lost()
        self.fault()
        return True

    def check_inputs(self, ins):
        if self.safety.check_inputs(ins, self.stepper.last_dir()):
            self.fault()
        if ins & IN_ESTOP and self.driver_on:
            self.driver_on = False
            self.board.driver_enable(False)  # unpowered: the self-locking worm holds the load

    def settle(self, now):
        """Once a sample, outside the control iteration: a finished back-off is noted, a
        load cell newly left out told; once a hold has settled, the load cells' shares are frozen (the reference a
        drifting one is held to) and the thickness reference taken. Returns True when
        a reference was taken (a state to keep)."""
        if self.ctrl.backed_off:
            self.ctrl.backed_off = False
            self.backed_off_at = self.stepper.position
        out = self.channels_out
        if out:  # an event for each load cell newly left out
            self.channels_out = 0
            lc = self.loadcells
            for i in range(lc.n):
                if out & (1 << i):
                    self.event("channel", channel=i, excluded=True, why=REASONS[lc.why[i]], left=lc.left())
        # On the way in the springs slide, a stiffness other than the small-signal one
        # the thickness uses: the reference waits for the hold to settle.
        if self.ctrl.mode != HOLD:
            self._hold_since = None
            if self.loadcells.frozen:
                self.loadcells.unfreeze()
            t = self.ctrl.target
            if self.ctrl.mode == RAMP and not self.ramp_at and -t // 10 <= t - self.net <= t // 10:
                # The ramp's last tenth starts here: the springs slide from it to the hold.
                self.ramp_at = 1
                self.ramp_p = self.stepper.position
                self.ramp_net = self.net
        elif self._hold_since is None:
            self._hold_since = now
        elif self.board.ticks_diff(now, self._hold_since) >= THICKNESS_SETTLE_MS:
            if not self.loadcells.frozen:
                self.loadcells.freeze()
            if self.dil.ref is None:
                self.dil.reference(
                    self.stepper.position,
                    self.force_n(self.net),
                    self.board.temperature_c(),
                    self.setpoint_mpa,
                    self.slip_um_per_n(),
                )
                self.slip_hi = self.slip_lo = self.net
                return True
        return False

    def check_estimate(self):
        """Once a second (floats): with a load cell left out, how far the estimated total may
        be off (pressure_uncertainty_mpa), and the estimate_uncertain alarm beyond
        estimate_alarm_mpa while holding. The cells left see a shift of the load's centre
        across the lost cell's direction, as a change in how they share what they carry,
        but not along it, which is what biases the estimate (with three cells, exactly so):
        the unseen part is taken as twice the seen. With four cells and one lost, the
        opposite pair gives the total (loadcells.update): it is off by as much as the pair
        carried other than half the load when all were read. Never less than 0.1 %."""
        lc = self.loadcells
        self.uncertainty_mpa = None
        if lc.n < 2 or self.net <= self.ctrl.contact:
            return
        f = s = d = used = 0
        lost = -1
        for i in range(lc.n):
            if lc.bad_now[i] or lc.excluded & (1 << i):
                lost = i
            else:
                f += lc.net[i]
                s += lc.share[i]
                used += 1
        if lost < 0 or f <= 0 or s <= 0:
            return
        if used == 3 == lc.n - 1:  # one lost of four
            u = abs(2 * (lc.share[(lost + 1) & 3] + lc.share[(lost + 3) & 3]) / ONE_Q14 - 1)
        else:
            for i in range(lc.n):
                if i != lost and not (lc.bad_now[i] or lc.excluded & (1 << i)):
                    d = max(d, abs(lc.net[i] / f - lc.share[i] / s))
            u = 2 * d
        # Never below 0.1 %: the shares themselves, learned while all cells read, are no
        # better (a lost cell of four, the load still: 0.04 % off in the virtual fixture).
        self.uncertainty_mpa = round(max(u, 0.001) * self.pressure_mpa(self.net), 4)
        if self.ctrl.mode == HOLD and self.uncertainty_mpa > self.cfg["estimate_alarm_mpa"]:
            self.safety.trip(ESTIMATE_UNCERTAIN)

    def check_uniformity(self):
        """Once a second, outside the control iteration (floats): an alarm while holding,
        one warning per ramp, when the load cells' loads differ too much."""
        if self.loadcells.n < 2:
            return
        m = self.ctrl.mode
        if m != RAMP:
            self._warned = False
        if self.net <= self.ctrl.contact:
            return
        u = self.spread()[0]
        if u is None or u <= self.cfg["max_nonuniformity_pct"]:
            return
        if m == HOLD:
            self.safety.trip(NONUNIFORM)
        elif m == RAMP and not self._warned:
            self._warned = True
            self.event(
                "warning",
                alarm="nonuniform_load",
                uniformity_pct=round(u, 2),
                limit_pct=self.cfg["max_nonuniformity_pct"],
            )
