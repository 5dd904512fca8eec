# Heap cost of the firmware's control iteration, measured under MicroPython.
# Run: micropython -X heapsize=192k bench/alloc_probe.py FIRMWARE_DIR TEST_DOUBLES_DIR
# Builds the real App on the firmware tests' board double (tests/firmware/plant.py: the
# virtual board's pin-level HX711 and step pulses, a linear plant, a RAM flash), with
# ADC noise so the loop moves, brings it to HOLD, then runs N control iterations with
# gc off and reads gc.mem_alloc() before and after; then runs them again under
# micropython.heap_lock(), where any allocation raises. Prints one JSON line.
import array
import gc
import json
import sys

import micropython

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])

from plant import SPAN, TARE, FakeBoard, Plant, mount_ram_flash  # noqa: E402
from stackpress.app import App  # noqa: E402
from stackpress.controller import HOLD  # noqa: E402

N = 4000


class NoisyPlant(Plant):
    """16 N/um at 12.5 nm per microstep, with +-16 counts of ADC noise (the plant's LCG)."""

    def __init__(self):
        super().__init__(k_n_per_step=0.2, gap_steps=16000)
        self.noise_counts = 16


samples = array.array("i", bytes(4 * N))  # before the app, while the heap is in one piece
gc.collect()
mount_ram_flash("/flash")
board = FakeBoard(NoisyPlant())
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
    app.hx.read()
    samples[i] = app.hx.values[0]


def measure(control, samples):
    # Locals only: a new module-level name would grow the globals dict and count here.
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    n = 0
    try:
        for raw in samples:
            control(raw)
            n += 1
    except MemoryError:  # an allocating loop fills the heap with gc off: report what it did
        pass
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
    return a1 - a0, max(n, 1), locked_ok


VALUES = app.hx.values


def control_on(raw):
    VALUES[0] = raw  # the conversion the driver would have shifted in
    app.control(1)


net, n, locked_ok = measure(control_on, samples)
gc.collect()
print(json.dumps({"iterations": n, "alloc_bytes": net, "alloc_bytes_per_loop": net / n,
                  "heap_lock_ok": locked_ok, "mode": "hold", "heap_alloc_after_bytes": gc.mem_alloc()}))
