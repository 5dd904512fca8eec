# Heap cost of the firmware's control iteration, measured under MicroPython.
# Run: micropython -X heapsize=256k bench/alloc_probe.py FIRMWARE_DIR TEST_DOUBLES_DIR
# FIRMWARE_DIR holds the firmware as flashed (.mpy). Builds the real App (three load
# cells, the reference build) on the firmware tests' board double (tests/firmware/plant.py:
# the virtual board's pin-level HX711s and step pulses, a linear plant, a RAM flash), with
# ADC noise so the loop moves, brings it to HOLD, then runs N control iterations with
# gc off and reads gc.mem_alloc() before and after; then runs them again under
# micropython.heap_lock(), where any allocation raises. Prints one JSON line.
import array
import gc
import json
import sys

import micropython

N = 2000
CELLS = 3  # the reference build
# The recorded conversions, allocated first, while the heap is in one piece.
samples = array.array("i", bytes(4 * CELLS * N))
sink = bytearray(4096)  # the board double's serial line: what the firmware writes, dropped

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])  # bench/: held_app

from held_app import held_app  # noqa: E402  (the firmware's big buffers, then its modules, as main.py)

gc.collect()
app, board = held_app(sink)

for i in range(N):
    board.idle()
    app.hx.read()
    for c in range(CELLS):
        samples[CELLS * i + c] = app.hx.values[c]


def measure(control, n_iter):
    # Locals only: a new module-level name would grow the globals dict and count here.
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    n = 0
    try:
        for i in range(n_iter):
            control(i)
            n += 1
    except MemoryError:  # an allocating loop fills the heap with gc off: report what it did
        pass
    a1 = gc.mem_alloc()
    gc.enable()
    locked_ok = True
    micropython.heap_lock()
    try:
        for i in range(n_iter):
            control(i)
    except MemoryError:
        locked_ok = False
    finally:
        micropython.heap_unlock()
    return a1 - a0, max(n, 1), locked_ok


VALUES = app.hx.values


def control_on(i):
    # The conversions the driver would have shifted in, then the control iteration.
    VALUES[0] = samples[3 * i]
    VALUES[1] = samples[3 * i + 1]
    VALUES[2] = samples[3 * i + 2]
    app.instrument.control(7)


net, n, locked_ok = measure(control_on, N)
gc.collect()
print(
    json.dumps(
        {
            "iterations": n,
            "alloc_bytes": net,
            "alloc_bytes_per_loop": net / n,
            "load_cells": CELLS,
            "heap_lock_ok": locked_ok,
            "mode": "hold",
            "heap_alloc_after_bytes": gc.mem_alloc(),
        }
    )
)
