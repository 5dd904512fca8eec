"""The instrument: a cooperative superloop paced by the ADC's data-ready.

One pass: read a sample -> safety -> controller -> stepper (the control iteration,
allocation-free) -> housekeeping (events, persistence) -> telemetry when due ->
serial poll (non-blocking, bounded). Time comes from the board, so the virtual
board can run it in virtual time. Nothing a host sends can stop the loop: every
command error becomes an error reply.
"""
import sys
from binascii import hexlify
from os import urandom

import micropython

from stackpress import commands
from stackpress import config as cfgmod
from stackpress.clock import Clock
from stackpress.controller import FAULT, GAP, HOLD, IDLE, MODE_NAMES, RAMP, RELEASE, Controller
from stackpress.dilatometer import Dilatometer
from stackpress.history import (ALARMS_N, CH0_MN, FORCE_MN, MS_MODE, NONE, P_10PA, PMAX_10PA, PMIN_10PA, POS_01NM,
                                RAW, REF_10PA, S, SEQ, SP_100PA, TEL_RECORDS, TEMP_MC, THK_01NM, History)
from stackpress.hx711 import HX711
from stackpress.loadcell import LoadCell
from stackpress.loadcells import REASONS, LoadCells, centre_offset_mm, uniformity_pct
from stackpress.outbox import Outbox
from stackpress.profile import Profile
from stackpress.protocol import FrameError, LineReader, encode, parse, write_frame
from stackpress.safety import (CHANNEL_FAULT, CONFIG_RESET, ESTOP, IN_ESTOP, MOTOR_STALL, NONUNIFORM, SENSOR_BAD,
                               SENSOR_TIMEOUT, TOO_MUCH, WATCHDOG_RESET, Safety)
from stackpress.stepper import Stepper
from stackpress.store import Store

POSITION_SAVE_MS = 60000
# rp2's longest watchdog timeout is 8388 ms; a pass of the loop takes milliseconds.
WATCHDOG_MS = 8000
REPLAY_PER_PASS = 4
REPLAY_ROOM = 700  # bytes free in the outbox before a replayed record is queued
THICKNESS_SETTLE_MS = 5000
# Sent when even an error reply finds no memory; built at import, when there is.
NO_MEMORY = encode({"t": "rep", "id": None, "ok": False, "err": "memory",
                    "msg": "no memory left for this reply: ask again"})
TEMPERATURE_PERIOD_MS = 1000


class App:
    def __init__(self, board, hist=None, out_buf=None):
        self.board = board
        self.clock = Clock(board.ticks_ms, board.ticks_diff)
        self.store = Store(board.root)
        self.safety = Safety()
        self.ctrl = Controller()
        # A board may read the ADC its own way (the Pico: PIO); otherwise this driver
        # clocks it through the board's two pins.
        self.hx = getattr(board, "adc", None) or HX711(board.hx_sck, board.hx_dout, irq_off=board.irq_off,
                                                       irq_on=board.irq_on)
        self.cells = LoadCells(self.hx.n)
        self._ch_names = ["force_ch%d_n" % i for i in range(self.hx.n)] if self.hx.n > 1 else []
        self._channels_out = 0  # channels newly left out, for the event
        self._warned = False
        self.stepper = Stepper(board.step_pulses, board.dir_pin, 20000)
        self.lines = LineReader()
        self._byte = bytearray(1)
        self.out = Outbox(board.serial_write, buf=out_buf)
        self.hist = hist or History(getattr(board, "history_records", TEL_RECORDS), load_cells=self.hx.n)
        self.seq = 0
        self.boot = 0
        # The boot count restarts with a wiped flash; this does not repeat: a host keys a
        # boot's records by it, so a new life of the fixture never passes for an old one.
        self.boot_id = hexlify(urandom(4)).decode()
        self.backed_off_at = None  # position when a release last finished backing off
        self.locked = False
        self.reset_cause = board.reset_cause()
        self.raw = 0
        self.net = 0
        self.samples = 0
        self.net_min = 0  # extremes between telemetry records: no excursion goes unreported
        self.net_max = 0
        self.n_since_tel = 0
        self.dil = Dilatometer()
        self.zero_offset = 0  # counts: the load cell's zero drift with temperature, taken out
        self._hold_since = None
        self.setpoint_mpa = 0.0
        self.mode_before_fault = IDLE
        self.handover = False
        self.memory_errors = 0
        self.driver_on = True
        board.driver_enable(True)
        self._led = -1
        self.reset_requested = False
        self.notes = []
        now = board.ticks_ms()
        self._last_sample = now
        self._last_tel = now
        self._last_temp = now
        self._last_save = now
        self._saved_position = 0
        self._reported_mode = -1
        self._reported_alarms = 0
        self.profile = Profile()
        self._load()

    # --- persistence ---
    def _load(self):
        stored, err = self.store.load("config")
        self.cfg, bad = cfgmod.merged(stored)
        if err or bad:
            self.safety.trip(CONFIG_RESET)
            self.notes.append(err or "invalid stored settings reset to defaults: %s" % ", ".join(bad))
        cal, err = self.store.load("calib")
        if err:
            self.notes.append(err)
        self.calib = cal if isinstance(cal, dict) else {}
        if "zero_counts" not in self.calib:  # stored before zeros were kept apart from tares
            self.calib["zero_counts"] = self.calib.get("tare_counts", 0)
        self._calibrate_cells()
        st, err = self.store.load("state")
        if err:
            self.notes.append(err)
        self.resume = st if isinstance(st, dict) else {}  # type: dict | None
        self.stepper.position = int(self.resume.get("position_steps", 0))
        self._saved_position = self.stepper.position
        self.safety.trip(int(self.resume.get("alarms", 0)) & ~(CONFIG_RESET | WATCHDOG_RESET))
        if self.reset_cause == "watchdog":
            self.safety.trip(WATCHDOG_RESET)
        self.dil.restore(self.resume.get("thickness_ref"))
        self.locked = self.resume.get("locked") is True
        lo, hi = cfgmod.SCHEMA["ramp_rate_mpa_s"][1:3]
        self.profile.restore(self.resume.get("profile"), self.max_setpoint_mpa(), lo, hi)
        b = self.resume.get("boot", 0)
        self.boot = (b if isinstance(b, int) else 0) + 1
        self.apply_config()
        self.save_state()  # the boot count, before anything is said under it

    def _calibrate_cells(self):
        """Per channel tare and span from the calibration (numbers for one load cell, lists
        for several); the total is in channel 0's counts, so `cell` converts it."""
        n = self.cells.n
        tares = self.calib.get("tare_counts", 0)
        spans = self.calib.get("span_counts_per_n", LoadCell().span_counts_per_n)
        tares = tares if isinstance(tares, list) else [tares] * n
        spans = spans if isinstance(spans, list) else [spans] * n
        try:
            if len(tares) != n or len(spans) != n:
                raise ValueError("calibration is for %d load cells, the board has %d" % (len(tares), n))
            self.cells.calibrate(tares, spans)
        except (ValueError, TypeError) as e:
            self.notes.append("calibration not used: %s" % e)
            self.cells.calibrate([0] * n, [LoadCell().span_counts_per_n] * n)
        self.cell = LoadCell(0, self.cells.span[0])

    def save_state(self):
        if self.resume is not None:
            # Not taken over yet: keep what is to be resumed, with this boot's count.
            doc = dict(self.resume)
            doc["boot"] = self.boot
            doc["locked"] = self.locked
            self.store.save("state", doc)
            return
        mode = self.ctrl.mode
        self.store.save("state", {
            "mode": MODE_NAMES[mode],
            "mode_before_fault": MODE_NAMES[self.mode_before_fault],
            "setpoint_mpa": self.setpoint_mpa,
            "position_steps": self.stepper.position,
            "alarms": self.safety.latched,
            "thickness_ref": self.dil.as_list(),
            "locked": self.locked,
            "boot": self.boot,
            "profile": self.profile.state(),
        })
        self._saved_position = self.stepper.position

    def zero_shift_n(self, tares=None):
        """How far the tares (`tares`, or those in use) put the zero above the calibrated
        one, N in the summed reading: what a reading is short of the force from that zero."""
        z = self.calib.get("zero_counts", 0)
        t = self.calib.get("tare_counts", 0) if tares is None else tares
        n = self.cells.n
        z = z if isinstance(z, list) and len(z) == n else [z / n] * n
        t = t if isinstance(t, list) and len(t) == n else [t / n] * n
        return sum((t[i] - z[i]) / self.cells.span[i] for i in range(n))

    def apply_config(self):
        c = self.cfg
        span = self.cell.span_counts_per_n
        sps = self.board.sample_rate_sps
        area = c["cell_area_mm2"]
        up, down = c["ramp_rate_mpa_s"], c["release_rate_mpa_s"]
        if self.profile.running:
            up = down = self.profile.step()[1]  # the running step's rate, both ways
        self.ctrl.configure(
            span,
            c["stiffness_n_per_um"] * c["um_per_step"] * span,
            c["loop_gain"],
            up * area * span / sps,
            down * area * span / sps,
            c["max_step_rate_hz"] / sps,
            c["contact_force_n"] * span,
            c["release_backoff_um"] / c["um_per_step"],
        )
        self.stepper.rate_hz = c["max_step_rate_hz"]
        self.safety.configure(c["max_pressure_mpa"] * area * span, c["load_cell_capacity_n"] * span,
                              c["travel_limit_um"] / c["um_per_step"], c["max_jump_n"] * span,
                              c["stuck_samples"], sps, c["stall_force_n"] * span,
                              c["stiffness_n_per_um"] * c["um_per_step"] * span,
                              self.zero_shift_n() * span)
        self.safety.hold_band(c["hold_alarm_band_mpa"] * area * span, c["hold_alarm_after_s"] * sps)
        self.cells.configure(c["max_jump_n"] * span, c["stuck_samples"], c["sample_timeout_ms"] * sps // 1000,
                             c["channel_disagree_n"] * span, c["contact_force_n"] * span)
        self.ctrl.target = self.cell.counts(self.setpoint_mpa * area)
        self.update_zero_offset()

    # --- units at the edges (allocate: never called from the control iteration) ---
    def pressure_mpa(self, net):
        return net / self.cell.span_counts_per_n / self.cfg["cell_area_mm2"]

    def max_setpoint_mpa(self, cfg=None):
        c = cfg or self.cfg
        return 0.95 * min(c["max_pressure_mpa"], self.cells.n * c["load_cell_capacity_n"] / c["cell_area_mm2"])

    def runtime(self):
        v = sys.implementation.version
        return "%s %d.%d.%d" % (sys.implementation.name, v[0], v[1], v[2])

    # --- the loop ---
    def run(self):
        micropython.kbd_intr(-1)  # a stray Ctrl-C on the serial line is just a byte
        try:
            self.event("boot", boot_id=self.boot_id, firmware=commands.FIRMWARE_VERSION, board=self.board.name,
                       reset_cause=self.reset_cause, resume=(self.resume or {}).get("mode", "idle"),
                       setpoint_mpa=(self.resume or {}).get("setpoint_mpa", 0.0), notes=self.notes)
            self.board.watchdog_start(WATCHDOG_MS)
            while not self.handover:
                try:
                    while not self.handover:
                        self.loop_once()
                except MemoryError:
                    # Only the edges allocate (replies, telemetry text), never control():
                    # a heap too fragmented for one of them costs that record, not control.
                    self.memory_errors += 1
            self.board.watchdog_park()  # the REPL is not the control loop: fed by a timer there
        except BaseException as e:
            self.stepper.stop()
            try:
                self.event("crash", error=repr(e))
            finally:
                raise
        finally:
            self.stepper.stop()
            micropython.kbd_intr(3)

    def loop_once(self):
        now = self.clock.update()
        self.board.watchdog_feed()
        ins = self.board.inputs()
        if ins or self.safety.inputs:  # every pass, sample or not: a silent ADC can't hide an e-stop
            self.check_inputs(ins)
        if self.hx.due(now, self.board.ticks_diff, 1500 // self.board.sample_rate_sps):
            self.control(self.hx.read())
            self._last_sample = now
            self.samples += 1
            self.housekeeping(now)
        else:
            if self.board.ticks_diff(now, self._last_sample) > self.cfg["sample_timeout_ms"]:
                if not self.safety.latched & SENSOR_TIMEOUT:
                    self.safety.no_data()
                    self.cells.lost()
                    self.fault()
                    self.housekeeping(now)
            self.board.idle()
        if self.board.ticks_diff(now, self._last_tel) >= self.cfg["telemetry_period_ms"]:
            self._last_tel = now
            self.telemetry()
        self.poll_serial()
        self.out.pump()
        if self.hist.replaying():
            self.pump_replay()

    def control(self, mask):
        """The control iteration, on a conversion of the load cells in `mask`.
        Allocation-free (tests run it under heap_lock)."""
        cells = self.cells
        vals = self.hx.values
        net = cells.update(vals, mask) - self.zero_offset
        self.raw = vals[0] if cells.n == 1 else cells.raw_total
        sf = self.safety
        a = sf.check_sample(cells.bits, cells.healthy, net, net if cells.n == 1 else cells.max_ch)
        if cells.newly:
            self._channels_out |= cells.newly  # one left out: the others carry on, with an alarm
            sf.latched |= CHANNEL_FAULT
        if a & SENSOR_BAD:
            self.fault()  # no trusted force: hold position, never move blind
            return
        self.net = net
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

    def check_inputs(self, ins):
        if self.safety.check_inputs(ins, self.stepper.last_dir()):
            self.fault()
        if ins & IN_ESTOP and self.driver_on:
            self.driver_on = False
            self.board.driver_enable(False)  # unpowered: the self-locking worm holds the load

    def fault(self):
        m = self.ctrl.mode
        if m != FAULT:
            self.mode_before_fault = m
            self.ctrl.set_mode(FAULT)
        self.stepper.stop()

    def profile_tick(self, now):
        p = self.profile
        if p.tick(self.ctrl.mode == HOLD, now, self.board.ticks_diff):
            if p.next():
                self.profile_step()
            else:
                self.apply_config()  # the configured ramp rates again
                self.event("profile", done=True, setpoint_mpa=self.setpoint_mpa)
                self.save_state()

    def profile_step(self):
        """Start the profile's current step: ramp at its rate to its pressure."""
        p = self.profile
        mpa, rate, hold = p.step()
        self.apply_config()
        self.start_hold(mpa)
        self.event("profile", step=p.index + 1, steps=len(p.steps), mpa=mpa, rate_mpa_s=rate, hold_s=hold)
        self.save_state()

    def status_led(self, now):
        """Steady while controlling pressure, a 4 Hz blink in fault, a blip every 2 s
        otherwise (alive, idle). Allocation-free."""
        m = self.ctrl.mode
        if m == FAULT:
            on = 1 if now & 128 else 0
        elif m == RAMP or m == HOLD or m == RELEASE:
            on = 1
        else:
            on = 1 if (now & 2047) < 100 else 0
        if on != self._led:
            self._led = on
            self.board.led(on)

    def housekeeping(self, now):
        self.status_led(now)
        if self.ctrl.backed_off:
            self.ctrl.backed_off = False
            self.backed_off_at = self.stepper.position
        if self.profile.running and self.resume is None:
            self.profile_tick(now)
        if self._channels_out:
            out = self._channels_out
            self._channels_out = 0
            for i in range(self.cells.n):
                if out & (1 << i):
                    self.event("channel", channel=i, excluded=True, why=REASONS[self.cells.why[i]],
                               left=self.cells.left())
        if self.board.ticks_diff(now, self._last_temp) >= TEMPERATURE_PERIOD_MS:
            self._last_temp = now
            self.update_zero_offset()
            if self.cells.n > 1:
                self._check_uniformity()
        if self.resume is not None and self.safety.trusted():
            self._resume()  # the force is known, and believed, before anything moves
        self._dilatometry(now)
        m = self.ctrl.mode
        a = self.safety.latched
        if m != self._reported_mode or a != self._reported_alarms:
            if a & ~self._reported_alarms:
                self.event("alarm", alarms=self.safety.names(a & ~self._reported_alarms))
            if m != self._reported_mode:
                self.event("mode", state=MODE_NAMES[m])
            self._reported_mode = m
            self._reported_alarms = a
            self.save_state()
            self._last_save = now
            if a & MOTOR_STALL:
                self.safety.stall_reset(self.net)
        elif (self.board.ticks_diff(now, self._last_save) >= POSITION_SAVE_MS
              and (self.stepper.position != self._saved_position or self.profile.running)):
            self.save_state()
            self._last_save = now

    def _check_uniformity(self):
        """Once a second, outside the control iteration (floats): an alarm while holding,
        one warning per ramp, when the cells' loads differ too much."""
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
            self.event("warning", alarm="nonuniform_load", uniformity_pct=round(u, 2),
                       limit_pct=self.cfg["max_nonuniformity_pct"])

    def spread(self, f=None):
        """(uniformity %, centre (x, y) mm) of the load cells' forces `f` (now, if None);
        (None, None) below contact, where the split of no load is only noise."""
        f = f or self.cells.forces_n(self.cell.span_counts_per_n)
        if sum(f) <= self.cfg["contact_force_n"]:
            return None, None
        return uniformity_pct(f), centre_offset_mm(f, self.cfg["load_cell_radius_mm"])

    def _resume(self):
        """Take over what was running before the reset, from the force read now."""
        st = self.resume or {}
        self.resume = None
        mode = st.get("mode", "idle")
        sp = st.get("setpoint_mpa", 0.0)
        self.mode_before_fault = MODE_NAMES.index(st.get("mode_before_fault", "idle"))
        if mode in ("ramp", "hold") and isinstance(sp, (int, float)) and 0 < sp <= self.max_setpoint_mpa():
            self.start_hold(sp)
        elif mode == "gap":
            self.ctrl.set_mode(GAP)
        elif mode == "release":
            self.ctrl.release(self.net)
        elif mode == "fault":
            self.ctrl.set_mode(FAULT)

    def _dilatometry(self, now):
        # The reference is taken once the hold has settled: on the way in the springs
        # slide, a stiffness other than the small-signal one used below.
        # The load cells' shares are frozen then too: the reference a drifting one is held to.
        if self.ctrl.mode != HOLD:
            self._hold_since = None
            if self.cells.frozen:
                self.cells.unfreeze()
        elif self._hold_since is None:
            self._hold_since = now
        elif self.board.ticks_diff(now, self._hold_since) >= THICKNESS_SETTLE_MS:
            if not self.cells.frozen:
                self.cells.freeze()
            if self.dil.ref is None:
                self.dil.reference(self.stepper.position, self.cell.force_n(self.net), self.board.temperature_c(),
                                   self.setpoint_mpa)
                self.save_state()

    def update_zero_offset(self):
        """Outside the control iteration (floats): the counts the zero has drifted by."""
        k = self.cfg["load_cell_zero_n_per_k"]
        t = self.board.temperature_c() if k else None
        if t is None:
            self.zero_offset = 0
        else:
            t0 = self.calib.get("tare_temperature_c", 25.0)
            self.zero_offset = int(k * (t - t0) * self.cell.span_counts_per_n)

    def force_filtered_n(self):
        return (self.ctrl.f_q4 >> 4) / self.cell.span_counts_per_n

    def thickness_um(self):
        if self.ctrl.mode != HOLD:
            return None
        c = self.cfg
        # The raw sample, not the display filter: the filter lags, and the noise is
        # 0.05 N / (N/um) -- a few nm.
        return self.dil.thickness_um(self.stepper.position, self.cell.force_n(self.net), self.board.temperature_c(),
                                     c["um_per_step"], c["stiffness_n_per_um"], c["frame_um_per_k"])

    # --- actions used by commands ---
    def start_hold(self, mpa):
        if self.dil.ref is not None and self.dil.ref[3] != mpa:
            self.dil.clear()  # a new setpoint re-compresses springs and frame: a new reference
        self.setpoint_mpa = mpa
        self.ctrl.hold(self.cell.counts(mpa * self.cfg["cell_area_mm2"]), self.net)
        self.safety.stall_reset(self.net)

    # --- output: every record goes through the history, so a replay repeats it exactly ---
    def send(self, obj):
        write_frame(self.out, obj)

    def event(self, kind, **fields):
        self.seq += 1
        fields["t"] = "evt"
        fields["boot"] = self.boot
        fields["seq"] = self.seq
        fields["device_ms"] = self.clock.device_ms()
        fields["kind"] = kind
        frame = encode(fields)
        self.hist.add_event(self.seq, frame)
        self.out.put(frame)

    def telemetry(self):
        self.seq += 1
        n = self.n_since_tel
        self.n_since_tel = 0
        thk = self.thickness_um()
        temp = self.board.temperature_c()
        p = self.pressure_mpa
        h = self.hist.tel
        o = self.hist.slot()
        h[o + SEQ] = self.seq
        h[o + S] = self.clock.s
        h[o + MS_MODE] = self.clock.ms | (self.ctrl.mode << 10)
        h[o + ALARMS_N] = self.safety.latched | (min(n, 0x3FFF) << 16)
        h[o + P_10PA] = _fix(p(self.net), 1e5)
        h[o + SP_100PA] = _fix(self.setpoint_mpa, 1e4)
        h[o + REF_10PA] = _fix(p(self.ctrl.ref_q4 >> 4), 1e5)
        h[o + FORCE_MN] = _fix(self.net / self.cell.span_counts_per_n, 1e3)
        h[o + POS_01NM] = _fix(self.stepper.position * self.cfg["um_per_step"], 1e4)
        h[o + RAW] = self.raw
        h[o + PMIN_10PA] = _fix(p(self.net_min), 1e5) if n else NONE
        h[o + PMAX_10PA] = _fix(p(self.net_max), 1e5) if n else NONE
        h[o + THK_01NM] = NONE if thk is None else _fix(thk, 1e4)
        h[o + TEMP_MC] = NONE if temp is None else _fix(temp, 1e3)
        if self._ch_names:
            f = self.cells.forces_n(self.cell.span_counts_per_n)
            for i in range(self.cells.n):
                h[o + CH0_MN + i] = _fix(f[i], 1e3)
        self.hist.commit()
        write_frame(self.out, self.tel_record(o))

    def tel_record(self, o):
        """The telemetry record of history entry `o` (live and replayed alike)."""
        h = self.hist.tel
        mm = h[o + MS_MODE]
        d = {
            "t": "tel", "boot": self.boot, "seq": h[o + SEQ], "device_ms": h[o + S] * 1000 + (mm & 1023),
            "state": MODE_NAMES[mm >> 10],
            "pressure_mpa": h[o + P_10PA] / 1e5,
            "setpoint_mpa": h[o + SP_100PA] / 1e4,
            "ref_mpa": h[o + REF_10PA] / 1e5,
            "force_n": h[o + FORCE_MN] / 1e3,
            "position_um": h[o + POS_01NM] / 1e4,
            "raw_counts": h[o + RAW],
            "p_min_mpa": _unfix(h[o + PMIN_10PA], 1e5),
            "p_max_mpa": _unfix(h[o + PMAX_10PA], 1e5),
            "n_samples": h[o + ALARMS_N] >> 16,
            "thickness_um": _unfix(h[o + THK_01NM], 1e4),
            "temperature_c": _unfix(h[o + TEMP_MC], 1e3),
            "alarms": self.safety.names(h[o + ALARMS_N] & 0xFFFF),
        }
        if self._ch_names:
            f = [round(h[o + CH0_MN + i] / 1e3, 3) for i in range(self.cells.n)]
            for i in range(self.cells.n):
                d[self._ch_names[i]] = f[i]
            u, c = self.spread(f)
            d["uniformity_pct"] = None if u is None else round(u, 2)
            d["centre_x_mm"] = None if c is None else round(c[0], 3)
            d["centre_y_mm"] = None if c is None else round(c[1], 3)
        return d

    def pump_replay(self):
        out = self.out
        for _ in range(REPLAY_PER_PASS):
            if out.room() < REPLAY_ROOM:
                return
            r = self.hist.next()
            if r is None:
                return
            o, frame = r
            if o is None:
                out.put(frame)
            else:
                write_frame(out, self.tel_record(o))

    # --- input ---
    def poll_serial(self):
        rd = self.board.serial_read
        b = self._byte
        for _ in range(256):  # bounded: a flood of bytes cannot starve control
            if not rd(b):
                return
            line = self.lines.feed(b[0])
            if line is None:
                continue
            if line is False:
                self.send({"t": "rep", "id": None, "ok": False, "err": "frame",
                           "msg": "line longer than %d bytes discarded" % len(self.lines._buf)})
            else:
                self.on_line(line)
            if self.handover:
                return

    def on_line(self, line):
        cid = None
        try:
            obj = parse(line)
            cid = obj["id"]
            data = commands.handle(self, obj)
            self.send({"t": "rep", "id": cid, "ok": True, "data": data})
        except (FrameError, commands.CommandError) as e:
            if cid is None:
                cid = getattr(e, "id", None)
            self.send({"t": "rep", "id": cid, "ok": False, "err": e.code, "msg": e.msg})
        except Exception as e:  # a bug in one command must not stop control
            try:
                self.send({"t": "rep", "id": cid, "ok": False,
                           "err": "memory" if isinstance(e, MemoryError) else "internal", "msg": repr(e)})
            except MemoryError:
                self.out.put(NO_MEMORY)
        if self.reset_requested:
            for _ in range(200):  # the reply first, if the line takes it
                self.out.pump()
                if not self.out.n:
                    break
                self.board.serial_flush()
            self.board.reset()


def _fix(x, scale):
    """A value as an integer in units of 1/scale (a small int on the RP2040 for every
    value the fixture reports: pressure to 10 Pa, force to 1 mN, position to 0.1 nm)."""
    v = x * scale
    return int(v + 0.5) if v >= 0 else -int(0.5 - v)


def _unfix(v, scale):
    return None if v == NONE else v / scale
