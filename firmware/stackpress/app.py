"""The fixture's firmware: a cooperative superloop paced by the ADC's data-ready.

One pass: read a sample -> the instrument's control iteration (allocation-free) ->
housekeeping (events, persistence) -> telemetry when due -> serial poll (non-blocking,
bounded). The instrument (instrument.py) owns the modes and the control; the App owns the
loop, the serial line, the records and the flash. Time comes from the board, so the
virtual board can run it in virtual time. Nothing a host sends can stop the loop: every
command error becomes an error reply.
"""

import sys
from binascii import hexlify
from os import urandom

import micropython

from stackpress import commands
from stackpress import config as cfgmod
from stackpress import history as rec
from stackpress.clock import Clock
from stackpress.controller import FAULT, HOLD, RAMP, RELEASE
from stackpress.cyclerlink import FAULT_ALARMS, CyclerLink
from stackpress.hx711 import HX711
from stackpress.instrument import Instrument, Refused
from stackpress.outbox import Outbox
from stackpress.protocol import FrameError, LineReader, encode, parse, write_frame
from stackpress.safety import CONFIG_RESET, MOTOR_STALL, WATCHDOG_RESET
from stackpress.store import Store
from stackpress.version import FIRMWARE_VERSION

POSITION_SAVE_MS = 60000
# rp2's longest watchdog timeout is 8388 ms; a pass of the loop takes milliseconds.
WATCHDOG_MS = 8000
REPLAY_PER_PASS = 4
REPLAY_ROOM = 700  # bytes free in the outbox before a replayed record is queued
# Sent when even an error reply finds no memory; built at import, when there is.
NO_MEMORY = encode(
    {"t": "rep", "id": None, "ok": False, "err": "memory", "msg": "no memory left for this reply: ask again"}
)
TEMPERATURE_PERIOD_MS = 1000
# A start that ran this long counts as good: failed starts before it are forgotten
# (bootfail.json, written by safemode.py), so failures weeks apart never add up.
BOOT_OK_AFTER_S = 60


class App:
    def __init__(self, board, hist=None, out_buf=None):
        self.board = board
        self.clock = Clock(board.ticks_ms, board.ticks_diff)
        self.store = Store(board.root)
        # A board may read the ADC its own way (the Pico: PIO); otherwise this driver
        # clocks it through the board's two pins.
        self.hx = getattr(board, "adc", None) or HX711(
            board.hx_sck, board.hx_dout, irq_off=board.irq_off, irq_on=board.irq_on
        )
        self.lines = LineReader()
        self._byte = bytearray(1)
        # Taken once: `board.serial_read` taken in each pass is a new bound method, 16
        # bytes of garbage a pass, about a thousand passes a second on a Pico.
        self._serial_read = board.serial_read
        self.out = Outbox(board.serial_write, buf=out_buf)
        self.hist = hist or rec.History(getattr(board, "history_records", rec.TEL_RECORDS), load_cells=self.hx.n)
        self.seq = 0
        self.boot = 0
        # The boot count restarts with a wiped flash; this does not repeat: a host keys a
        # boot's records by it, so a new life of the fixture never passes for an old one.
        self.boot_id = hexlify(urandom(4)).decode()
        # The settings first: read from flash once (config.py), before the instrument is built.
        stored, err = self.store.load("config")
        cfg, bad = cfgmod.merged(stored)
        self.instrument = Instrument(board, self.hx, self.event, cfg)
        self.link = CyclerLink(board)  # the analog pressure output and the fault line
        self._link_errors = 0
        self.locked = False
        self.reset_cause = board.reset_cause()
        self.samples = 0
        self.handover = False
        self.memory_errors = 0
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
        self._load(err, bad)

    # --- persistence ---
    def _load(self, err, bad):
        ins = self.instrument
        if err or bad:
            ins.safety.trip(CONFIG_RESET)
            self.notes.append(err or "invalid stored settings reset to defaults: %s" % ", ".join(bad))
        cal, err = self.store.load("calib")
        if err:
            self.notes.append(err)
        why = ins.recalibrate(cal if isinstance(cal, dict) else {})
        if why:
            self.notes.append(why)
        self.bootfail = self.store.load("bootfail") != (None, None)
        if self.bootfail:
            self.notes.append("started after failed starts (bootfail.json)")
        st, err = self.store.load("state")
        if err:
            self.notes.append(err)
        self.resume = st if isinstance(st, dict) else {}  # type: dict | None
        if self.resume.pop("deliberate_reset", False) and self.reset_cause == "watchdog":
            self.reset_cause = "soft"
        ins.restore(self.resume, ~(CONFIG_RESET | WATCHDOG_RESET))
        self._saved_position = ins.stepper.position
        if self.reset_cause == "watchdog":
            ins.safety.trip(WATCHDOG_RESET)
        self.locked = self.resume.get("locked") is True
        b = self.resume.get("boot", 0)
        self.boot = (b if isinstance(b, int) else 0) + 1
        ins.apply_settings(ins.cfg)  # a restored profile's step rate
        self.scale_link()
        self.save_state()  # the boot count, before anything is said under it

    def save_state(self):
        if self.resume is not None:
            # Not taken over yet: keep what is to be resumed, with this boot's count.
            doc = dict(self.resume)
        else:
            doc = self.instrument.state()
            self._saved_position = self.instrument.stepper.position
        doc["boot"] = self.boot
        doc["locked"] = self.locked
        if self.reset_requested or self.handover:
            # On the RP2040 machine.reset() goes through the watchdog and MicroPython reports
            # WDT_RESET (micropython#19409): the next boot reads this to tell them apart.
            doc["deliberate_reset"] = True
        self.store.save("state", doc)

    def save_settings(self, key, value):
        """Keep and use setting `key` = `value` (checked). Changed in place: a new table of
        every setting would need a block of heap a fragmented one may not have."""
        cfg = self.instrument.cfg
        old = cfg[key]
        cfg[key] = value
        try:
            self.store.save("config", cfg)
        except BaseException:
            cfg[key] = old  # not kept, so not used
            raise
        self.instrument.apply_settings(cfg)
        self.scale_link()

    def save_calibration(self, cal, tared=False):
        """Keep and use calibration `cal` (checked; `tared`: a new tare)."""
        self.store.save("calib", cal)
        self.instrument.recalibrate(cal, tared)
        self.scale_link()

    def scale_link(self):
        ins = self.instrument
        self.link.apply(ins.cfg, ins.pressure_mpa(1))

    def runtime(self):
        v = sys.implementation.version
        return "%s %d.%d.%d" % (sys.implementation.name, v[0], v[1], v[2])

    # --- the loop ---
    def run(self):
        micropython.kbd_intr(-1)  # a stray Ctrl-C on the serial line is just a byte
        try:
            self.event(
                "boot",
                boot_id=self.boot_id,
                firmware=FIRMWARE_VERSION,
                board=self.board.name,
                reset_cause=self.reset_cause,
                resume=(self.resume or {}).get("mode", "idle"),
                setpoint_mpa=(self.resume or {}).get("setpoint_mpa", 0.0),
                notes=self.notes,
            )
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
            self.instrument.park()
            self.link.off()
            try:
                self.event("crash", error=repr(e))
            finally:
                raise
        finally:
            self.instrument.park()
            self.link.off()  # no control: the cycler sees a fault
            micropython.kbd_intr(3)

    def loop_once(self):
        now = self.clock.update()
        self.board.watchdog_feed()
        ins = self.instrument
        inputs = self.board.inputs()
        if inputs or ins.safety.inputs:  # every pass, sample or not: a silent ADC can't hide an e-stop
            ins.check_inputs(inputs)
        if self.hx.due(now, self.board.ticks_diff, 1500 // self.board.sample_rate_sps):
            ins.control(self.hx.read())
            self._last_sample = now
            self.samples += 1
            self.housekeeping(now)
        else:
            if self.board.ticks_diff(now, self._last_sample) > ins.cfg["sample_timeout_ms"] and ins.no_data():
                self.housekeeping(now)
            self.board.idle()
        if self.board.ticks_diff(now, self._last_tel) >= ins.cfg["telemetry_period_ms"]:
            self._last_tel = now
            self.telemetry()
        self.poll_serial()
        self.out.pump()
        if self.hist.replaying():
            self.pump_replay()

    def status_led(self, now):
        """Steady while controlling pressure, a 4 Hz blink in fault, a blip every 2 s
        otherwise (alive, idle). Allocation-free."""
        m = self.instrument.ctrl.mode
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
        ins = self.instrument
        self.status_led(now)
        # What the cycler sees: this sample's pressure, and ok only while in control.
        healthy = self.resume is None and ins.ctrl.mode != FAULT and not ins.safety.latched & FAULT_ALARMS
        self.link.update(ins.net, healthy)
        keep = False
        if ins.profile.running and self.resume is None:
            keep = ins.profile_tick(now)
        if self.board.ticks_diff(now, self._last_temp) >= TEMPERATURE_PERIOD_MS:
            self._last_temp = now
            ins.compensate()
            ins.check_uniformity()
            ins.check_estimate()
            self.check_link()
            if self.bootfail and self.clock.s >= BOOT_OK_AFTER_S:
                self.bootfail = False
                self.store.remove("bootfail")
        if self.resume is not None and ins.safety.trusted():
            st = self.resume  # the force is known, and believed, before anything moves
            self.resume = None
            ins.take_over(st)
        if ins.settle(now):
            keep = True
        m = ins.ctrl.mode
        a = ins.safety.latched
        if m != self._reported_mode or a != self._reported_alarms:
            if a & ~self._reported_alarms:
                self.event("alarm", alarms=ins.safety.names(a & ~self._reported_alarms))
            if m != self._reported_mode:
                self.event("mode", state=ins.state_name())
            self._reported_mode = m
            self._reported_alarms = a
            keep = True
            if a & MOTOR_STALL:
                ins.safety.stall_reset(ins.net)
        elif self.board.ticks_diff(now, self._last_save) >= POSITION_SAVE_MS and (
            ins.stepper.position != self._saved_position or ins.profile.running
        ):
            keep = True
        if keep:
            self.save_state()
            self._last_save = now

    def check_link(self):
        """Once a second: a test voltage that has run out ends; a DAC that stopped answering
        is said once and tried again."""
        link = self.link
        if link.test_code >= 0 and self.clock.s >= link.test_until_s:
            link.test_code = -1
            self.event("analog_test", state="ended")
        if link.errors != self._link_errors:
            self._link_errors = link.errors
            self.event(
                "warning",
                msg="the analog output's DAC does not answer: the cycler's pressure "
                "signal is lost and the fault line says fault (retried every second)",
            )
        link.retry()

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
        hist = self.hist
        o = hist.slot()
        h = hist.tel
        h[o + rec.SEQ] = self.seq
        h[o + rec.S] = self.clock.s
        self.instrument.record_into(h, o, self.clock.ms)
        hist.commit()
        write_frame(self.out, self.tel_record(o))

    def tel_record(self, o):
        """The telemetry record of history entry `o` (live and replayed alike)."""
        ins = self.instrument
        return self.hist.record(o, self.boot, ins.safety.names, ins.spread)

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
        rd = self._serial_read
        b = self._byte
        for _ in range(256):  # bounded: a flood of bytes cannot starve control
            if not rd(b):
                return
            line = self.lines.feed(b[0])
            if line is None:
                continue
            if line is False:
                self.send(
                    {
                        "t": "rep",
                        "id": None,
                        "ok": False,
                        "err": "frame",
                        "msg": "line longer than %d bytes discarded" % len(self.lines._buf),
                    }
                )
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
        except (FrameError, Refused) as e:
            if cid is None:
                cid = getattr(e, "id", None)
            self.send({"t": "rep", "id": cid, "ok": False, "err": e.code, "msg": e.msg})
        except Exception as e:  # a bug in one command must not stop control
            try:
                self.send(
                    {
                        "t": "rep",
                        "id": cid,
                        "ok": False,
                        "err": "memory" if isinstance(e, MemoryError) else "internal",
                        "msg": repr(e),
                    }
                )
            except MemoryError:
                self.out.put(NO_MEMORY)
        if self.reset_requested:
            for _ in range(200):  # the reply first, if the line takes it
                self.out.pump()
                if not self.out.n:
                    break
                self.board.serial_flush()
            self.board.reset()
