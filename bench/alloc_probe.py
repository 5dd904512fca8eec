# Heap cost of the firmware's control iteration, measured under MicroPython.
# Run: micropython -X heapsize=192k bench/alloc_probe.py FIRMWARE_DIR
# Builds the real App on a minimal board (the virtual board's pin-level HX711 and
# step pulses, a linear plant), brings it to HOLD, then runs N control iterations
# with gc off and reads gc.mem_alloc() before and after; then runs them again under
# micropython.heap_lock(), where any allocation raises. Prints one JSON line.
import array
import gc
import json
import sys

import micropython

sys.path.insert(0, sys.argv[1])

from boards.virtual import ticks_diff, wire  # noqa: E402
from stackpress.app import App  # noqa: E402
from stackpress.controller import HOLD  # noqa: E402

N = 4000
TARE = 42950
SPAN = 429.5


class ProbeBoard:
    name = "probe"
    root = "/probe"
    sample_rate_sps = 10

    def __init__(self):
        wire(self)
        self.t = 0
        self.steps = 0
        self.noise = 0

    def counts(self):
        c = self.steps - 16000
        f = c * 0.2 if c > 0 else 0.0  # 16 N/um at 12.5 nm per microstep
        self.noise = (self.noise * 1103515245 + 12345) & 0x7FFFFFFF
        return TARE + int(f * SPAN) + (self.noise >> 26) - 16

    def ticks_ms(self):
        return self.t

    ticks_diff = staticmethod(ticks_diff)

    def temperature_c(self):
        return 25.0

    def idle(self):
        self.steps += self.step_pulses.advance(100000)
        self.t = (self.t + 100) & ((1 << 30) - 1)
        self.chip.load(self.counts())

    def serial_read(self, buf):
        return 0

    def serial_write(self, b):
        pass

    def serial_flush(self):
        pass

    def reset(self):
        pass


def mount():
    import vfs

    class RAMBlockDev:
        def __init__(self, bs=512, n=48):
            self.bs = bs
            self.data = bytearray(bs * n)

        def readblocks(self, n, buf, off=0):
            a = n * self.bs + off
            buf[:] = self.data[a:a + len(buf)]

        def writeblocks(self, n, buf, off=None):
            a = n * self.bs + (off or 0)
            self.data[a:a + len(buf)] = buf

        def ioctl(self, op, arg):
            if op == 4:
                return len(self.data) // self.bs
            if op == 5:
                return self.bs
            if op == 6:
                self.data[arg * self.bs:(arg + 1) * self.bs] = b"\xff" * self.bs
            return 0

    bd = RAMBlockDev()
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), "/probe")


samples = array.array("i", bytes(4 * N))  # before the app, while the heap is in one piece
gc.collect()
mount()
board = ProbeBoard()
app = App(board)
app.calib = {"tare_counts": TARE, "span_counts_per_n": SPAN}
app.cell.tare_counts = TARE
for _ in range(20):
    app.loop_once()
app.start_hold(40.0)
for _ in range(20000):
    app.loop_once()
    if app.ctrl.mode == HOLD:
        break
assert app.ctrl.mode == HOLD, "never reached hold"

for i in range(N):
    board.idle()
    samples[i] = app.hx.read()


def measure(control, samples):
    # Locals only: a new module-level name would grow the globals dict and count here.
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for raw in samples:
        control(raw)
    a1 = gc.mem_alloc()
    gc.enable()
    locked_ok = True
    micropython.heap_lock()
    try:
        for raw in samples:
            control(raw)
    except MemoryError:
        locked_ok = False
    finally:
        micropython.heap_unlock()
    return a1 - a0, locked_ok


net, locked_ok = measure(app.control, samples)
gc.collect()
print(json.dumps({"iterations": N, "alloc_bytes": net, "alloc_bytes_per_loop": net / N,
                  "heap_lock_ok": locked_ok, "mode": "hold", "heap_alloc_after_bytes": gc.mem_alloc()}))
