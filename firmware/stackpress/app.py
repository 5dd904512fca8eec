"""The instrument: a cooperative superloop paced by the ADC's data-ready.

One pass: read a sample -> safety -> controller -> stepper (the control iteration,
allocation-free) -> housekeeping (events, persistence) -> telemetry when due ->
serial poll (non-blocking, bounded). Time comes from the board, so the virtual
board can run it in virtual time. Nothing a host sends can stop the loop: every
command error becomes an error reply.
"""
import sys

import micropython

from stackpress import commands
from stackpress import config as cfgmod
from stackpress.clock import Clock
from stackpress.controller import FAULT, GAP, HOLD, IDLE, MODE_NAMES, Controller
from stackpress.dilatometer import Dilatometer
from stackpress.hx711 import HX711
from stackpress.loadcell import LoadCell
from stackpress.protocol import FrameError, LineReader, encode, parse
from stackpress.safety import CONFIG_RESET, SENSOR_TIMEOUT, Safety
from stackpress.stepper import Stepper
from stackpress.store import Store

# Samples read before a resumed mode takes over: force is known before any move.
SETTLE_SAMPLES = 4
POSITION_SAVE_MS = 60000
THICKNESS_SETTLE_MS = 5000
TEMPERATURE_PERIOD_MS = 1000


class App:
    def __init__(self, board):
        self.board = board
        self.clock = Clock(board.ticks_ms, board.ticks_diff)
        self.store = Store(board.root)
        self.safety = Safety()
        self.ctrl = Controller()
        self.hx = HX711(board.hx_sck, board.hx_dout, irq_off=board.irq_off, irq_on=board.irq_on)
        self.stepper = Stepper(board.step_pulses, board.dir_pin, 20000)
        self.lines = LineReader()
        self._byte = bytearray(1)
        self.seq = 0
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
        self.cell = LoadCell(self.calib.get("tare_counts", 0),
                             self.calib.get("span_counts_per_n", LoadCell().span_counts_per_n))
        st, err = self.store.load("state")
        if err:
            self.notes.append(err)
        self.resume = st if isinstance(st, dict) else {}  # type: dict | None
        self.stepper.position = int(self.resume.get("position_steps", 0))
        self._saved_position = self.stepper.position
        self.safety.trip(int(self.resume.get("alarms", 0)) & ~CONFIG_RESET)
        self.dil.restore(self.resume.get("thickness_ref"))
        self.apply_config()

    def save_state(self):
        mode = self.ctrl.mode
        self.store.save("state", {
            "mode": MODE_NAMES[mode],
            "mode_before_fault": MODE_NAMES[self.mode_before_fault],
            "setpoint_mpa": self.setpoint_mpa,
            "position_steps": self.stepper.position,
            "alarms": self.safety.latched,
            "thickness_ref": self.dil.as_list(),
        })
        self._saved_position = self.stepper.position

    def apply_config(self):
        c = self.cfg
        span = self.cell.span_counts_per_n
        sps = self.board.sample_rate_sps
        area = c["cell_area_mm2"]
        self.ctrl.configure(
            span,
            c["stiffness_n_per_um"] * c["um_per_step"] * span,
            c["loop_gain"],
            c["ramp_rate_mpa_s"] * area * span / sps,
            c["release_rate_mpa_s"] * area * span / sps,
            c["max_step_rate_hz"] / sps,
            c["contact_force_n"] * span,
            c["release_backoff_um"] / c["um_per_step"],
        )
        self.stepper.rate_hz = c["max_step_rate_hz"]
        self.safety.configure(min(c["max_pressure_mpa"] * area, c["load_cell_capacity_n"]) * span,
                              c["travel_limit_um"] / c["um_per_step"])
        self.ctrl.target = self.cell.counts(self.setpoint_mpa * area)
        self.update_zero_offset()

    # --- units at the edges (allocate: never called from the control iteration) ---
    def pressure_mpa(self, net):
        return net / self.cell.span_counts_per_n / self.cfg["cell_area_mm2"]

    def max_setpoint_mpa(self, cfg=None):
        c = cfg or self.cfg
        return 0.95 * min(c["max_pressure_mpa"], c["load_cell_capacity_n"] / c["cell_area_mm2"])

    def runtime(self):
        v = sys.implementation.version
        return "%s %d.%d.%d" % (sys.implementation.name, v[0], v[1], v[2])

    # --- the loop ---
    def run(self):
        micropython.kbd_intr(-1)  # a stray Ctrl-C on the serial line is just a byte
        try:
            self.event("boot", firmware=commands.FIRMWARE_VERSION, board=self.board.name,
                       resume=(self.resume or {}).get("mode", "idle"), notes=self.notes)
            while not self.handover:
                self.loop_once()
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
        if self.hx.ready():
            self.control(self.hx.read())
            self._last_sample = now
            self.samples += 1
            self.housekeeping(now)
        else:
            if self.board.ticks_diff(now, self._last_sample) > self.cfg["sample_timeout_ms"]:
                if not self.safety.latched & SENSOR_TIMEOUT:
                    self.safety.trip(SENSOR_TIMEOUT)
                    self.fault()
                    self.housekeeping(now)
            self.board.idle()
        if self.board.ticks_diff(now, self._last_tel) >= self.cfg["telemetry_period_ms"]:
            self._last_tel = now
            self.telemetry()
        self.poll_serial()

    def control(self, raw):
        """The control iteration. Allocation-free (tests run it under heap_lock)."""
        self.raw = raw
        net = raw - self.cell.tare_counts - self.zero_offset
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
        if self.safety.check_sample(raw, net):
            self.fault()
        steps = self.ctrl.update(net)
        if steps:
            if self.safety.check_move(self.stepper.position, steps):
                self.fault()
            else:
                self.stepper.move(steps)

    def fault(self):
        m = self.ctrl.mode
        if m != FAULT:
            self.mode_before_fault = m
            self.ctrl.set_mode(FAULT)
        self.stepper.stop()

    def housekeeping(self, now):
        if self.board.ticks_diff(now, self._last_temp) >= TEMPERATURE_PERIOD_MS:
            self._last_temp = now
            self.update_zero_offset()
        if self.resume is not None and self.samples >= SETTLE_SAMPLES:
            self._resume()
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
        elif (self.board.ticks_diff(now, self._last_save) >= POSITION_SAVE_MS
              and self.stepper.position != self._saved_position):
            self.save_state()
            self._last_save = now

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
        if self.ctrl.mode != HOLD:
            self._hold_since = None
        elif self.dil.ref is None:
            if self._hold_since is None:
                self._hold_since = now
            elif self.board.ticks_diff(now, self._hold_since) >= THICKNESS_SETTLE_MS:
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

    # --- output ---
    def send(self, obj):
        self.board.serial_write(encode(obj))

    def event(self, kind, **fields):
        self.seq += 1
        fields["t"] = "evt"
        fields["seq"] = self.seq
        fields["device_ms"] = self.clock.device_ms()
        fields["kind"] = kind
        self.send(fields)

    def telemetry(self):
        self.seq += 1
        span = self.cell.span_counts_per_n
        n = self.n_since_tel
        self.n_since_tel = 0
        thk = self.thickness_um()
        temp = self.board.temperature_c()
        self.send({
            "t": "tel", "seq": self.seq, "device_ms": self.clock.device_ms(),
            "state": MODE_NAMES[self.ctrl.mode],
            "pressure_mpa": round(self.pressure_mpa(self.net), 5),
            "setpoint_mpa": round(self.setpoint_mpa, 4),
            "ref_mpa": round(self.pressure_mpa(self.ctrl.ref_q4 >> 4), 5),
            "force_n": round(self.net / span, 3),
            "position_um": round(self.stepper.position * self.cfg["um_per_step"], 4),
            "raw_counts": self.raw,
            "p_min_mpa": round(self.pressure_mpa(self.net_min), 5) if n else None,
            "p_max_mpa": round(self.pressure_mpa(self.net_max), 5) if n else None,
            "n_samples": n,
            "thickness_um": None if thk is None else round(thk, 4),
            "temperature_c": None if temp is None else round(temp, 3),
            "alarms": self.safety.names(),
        })

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
            self.send({"t": "rep", "id": cid, "ok": False, "err": e.code, "msg": e.msg})
        except Exception as e:  # a bug in one command must not stop control
            self.send({"t": "rep", "id": cid, "ok": False, "err": "internal", "msg": repr(e)})
        if self.reset_requested:
            self.board.serial_flush()
            self.board.reset()
