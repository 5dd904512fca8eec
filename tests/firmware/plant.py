# Test doubles for the firmware: an in-process fixture (a linear spring in front of a
# gap) behind the virtual board's own pin-level HX711 and step-pulse models, and a
# serial line the test scripts. MicroPython only.
import gc
import json

from boards.virtual import ticks_diff, wire

from stackpress.protocol import frame

SPAN = 429.5
TARE = 40000


class Plant:
    def __init__(self, k_n_per_step=0.0415, gap_steps=2000):
        self.steps = 0
        self.k = k_n_per_step
        self.gap = gap_steps
        self.extra_n = 0.0
        self.blocked = False  # a seized screw or a disabled driver: steps go nowhere
        self.noise_counts = 12  # an HX711 never repeats itself: +-12 counts, uniform
        self._lcg = 12345

    def noise(self):
        self._lcg = (self._lcg * 1103515245 + 12345) & 0x3FFFFFFF
        n = self.noise_counts
        return (self._lcg >> 8) % (2 * n + 1) - n if n else 0

    def force_n(self):
        c = self.steps - self.gap
        return (c * self.k if c > 0 else 0.0) + self.extra_n

    def counts(self):
        return TARE + int(self.force_n() * SPAN) + self.noise()


class FakeBoard:
    name = "fake"
    root = "/flash"
    sample_rate_sps = 10
    history_records = 64

    def __init__(self, plant=None, period_ms=100, load_cells=1):
        self.plant = plant or Plant()
        self.load_cells = load_cells
        wire(self, load_cells)
        self.shares = [1.0 / load_cells] * load_cells  # of the force, per load cell
        self.dead = 0  # load cells (a mask) that give no conversion: a cut wire
        self.t = (1 << 30) - 5000  # start just before the ticks wrap
        self.period_ms = period_ms
        self.rx = bytearray()
        self._rx_at = 0
        self.tx = []  # the last frames written, bounded like a host's input buffer
        self.sensor_ok = True
        self.stuck_at = None  # counts the ADC repeats, when stuck
        self.resets = 0
        self.temp_c = 25.0
        self.line_takes = None  # bytes the serial line takes per write (None: all)
        self.cause = "power_on"
        self.wdt_ms = 0
        self.feeds = 0
        self.sink = None
        self.switches = 0  # inputs(): bit 0 e-stop open, bit 1 end stop open
        self.driver = True
        self.led_on = 0
        self.led_changes = 0
        self.line = None  # the fault line as the firmware last set it (1: ok)

    def ticks_ms(self):
        return self.t

    ticks_diff = staticmethod(ticks_diff)

    def temperature_c(self):
        return self.temp_c

    def idle(self):
        moved = self.step_pulses.advance(self.period_ms * 1000)
        if not self.plant.blocked and self.driver:
            self.plant.steps += moved
        self.t = (self.t + self.period_ms) & ((1 << 30) - 1)
        if self.sensor_ok:
            if self.load_cells == 1:
                c = self.plant.counts() if self.stuck_at is None else self.stuck_at
                self.chip.load(c)
                return
            f = self.plant.force_n()
            for i, chip in enumerate(self.chips):
                if not self.dead & (1 << i):
                    chip.load(TARE + int(f * self.shares[i] * SPAN) + self.plant.noise())

    def fault_line(self, ok):
        self.line = ok

    def serial_read(self, buf):
        if self._rx_at >= len(self.rx):
            if self.rx:
                self.rx = bytearray()
                self._rx_at = 0
            return 0
        buf[0] = self.rx[self._rx_at]
        self._rx_at += 1
        return 1

    def capture(self, size):
        """From now on keep what the firmware writes in one preallocated buffer (a test
        that fragments the heap must not have its board double allocate)."""
        self.sink = bytearray(size)
        self.sunk = 0

    def captured(self):
        """The frames captured since capture() or the last call, decoded."""
        out = []
        mv = memoryview(self.sink)
        a = 0
        while a < self.sunk:
            e = self.sink.find(b"\n", a, self.sunk)
            if e < 0:
                break
            line = bytes(mv[a:e])
            out.append(json.loads(line[: line.rfind(b"*")]))
            a = e + 1
        self.sunk = 0
        return out

    def serial_write(self, b):
        n = len(b) if self.line_takes is None else min(len(b), self.line_takes)
        if n and self.sink is not None:
            if n > len(self.sink) - self.sunk:
                return 0  # full: the line takes nothing until the test reads
            self.sink[self.sunk : self.sunk + n] = b[:n]
            self.sunk += n
        elif n:
            self._partial = getattr(self, "_partial", b"") + bytes(b[:n])
            while b"\n" in self._partial:
                i = self._partial.index(b"\n") + 1
                self.tx.append(self._partial[:i])
                self._partial = self._partial[i:]
                if len(self.tx) > 24:  # decoded at once by frames(): keep a Pico-sized heap
                    self.tx.pop(0)
        return n

    def unique_id(self):
        return "e66038b7137a2f2c"

    def reset_cause(self):
        return self.cause

    def inputs(self):
        return self.switches

    def driver_enable(self, on):
        self.driver = bool(on)

    def led(self, on):
        self.led_changes += on != self.led_on
        self.led_on = on

    def watchdog_start(self, ms):
        self.wdt_ms = ms

    def watchdog_feed(self):
        self.feeds += 1

    def watchdog_park(self):
        self.wdt_ms = 0

    def serial_flush(self):
        pass

    def reset(self):
        self.resets += 1

    # --- helpers for tests ---
    def send(self, raw):
        if not isinstance(self.rx, bytearray):
            self.rx = bytearray(self.rx[self._rx_at :])
            self._rx_at = 0
        self.rx.extend(raw)

    def command(self, cmd, **args):
        self.send(frame(json.dumps(dict(args, id=7, cmd=cmd))))

    def frames(self):
        gc.collect()  # a status reply decodes into a dict of ~50 keys: one 1 KB block on this 64-bit port
        out = [json.loads(line[: line.rfind(b"*")]) for line in self.tx]
        self.tx = []
        return out


def replies(frames):
    return [f for f in frames if f.get("t") == "rep"]


_RAM_DISK = []


def mount_ram_flash(path="/flash"):
    """A freshly formatted littlefs at `path`. One RAM disk is reused: a new 64 KB one
    per test would fragment a Pico-sized heap."""
    import vfs

    class RAMBlockDev:
        def __init__(self, block_size=512, num_blocks=48):
            self.bs = block_size
            self.data = bytearray(block_size * num_blocks)
            self.erased = b"\xff" * block_size  # made once: a fragmented heap may have no room then

        def readblocks(self, n, buf, off=0):
            a = n * self.bs + off
            buf[:] = memoryview(self.data)[a : a + len(buf)]  # a slice would copy the block

        def writeblocks(self, n, buf, off=None):
            a = n * self.bs + (off or 0)
            self.data[a : a + len(buf)] = buf

        def ioctl(self, op, arg):
            if op == 4:
                return len(self.data) // self.bs
            if op == 5:
                return self.bs
            if op == 6:
                a = arg * self.bs
                self.data[a : a + self.bs] = self.erased
            return 0

    try:
        vfs.umount(path)
    except OSError:
        pass
    if not _RAM_DISK:
        _RAM_DISK.append(RAMBlockDev())
    bd = _RAM_DISK[0]
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), path)
    return bd


def run_app(app, n):
    for _ in range(n):
        app.loop_once()


def command(app, board, cmd, **args):
    """Send one command, run the app until it has answered; its one reply."""
    board.command(cmd, **args)
    run_app(app, 3)
    r = replies(board.frames())
    assert len(r) == 1, r
    return r[0]
