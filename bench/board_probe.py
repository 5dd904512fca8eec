# Where a sample's time goes in the firmware, measured under MicroPython (the unix port the
# virtual fixture runs): the App holding 40 MPa with three load cells (held_app.py), then for
# N samples each part of the loop's pass timed with ticks_us:
#   pins       the HX711 driver clocking three chips' 24 bits out of the pin-level models
#   control    the control iteration on those conversions
#   pass       a whole pass of the loop with a conversion waiting (pins, control, the
#              housekeeping, a record when due, the serial poll)
# Run: micropython -X heapsize=256k bench/board_probe.py FIRMWARE_DIR TEST_DOUBLES_DIR
# Prints one JSON line (microseconds a sample, the mean over N).
import json
import sys
import time

N = 3000
sink = bytearray(4096)
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])  # bench/: held_app

from held_app import CELLS, held_app  # noqa: E402

app, board = held_app(sink)
chips = board.chips
ticks_us, ticks_diff = time.ticks_us, time.ticks_diff


def load():
    # A conversion waiting in each chip, as the model's reply leaves them.
    board.idle()
    board.sunk = 0


pins = control = passes = 0
for _ in range(N):
    load()
    t0 = ticks_us()
    mask = app.hx.read()
    t1 = ticks_us()
    app.instrument.control(mask)
    t2 = ticks_us()
    pins += ticks_diff(t1, t0)
    control += ticks_diff(t2, t1)
for _ in range(N):
    load()  # the board double's clock moves a conversion period too
    t0 = ticks_us()
    app.loop_once()
    passes += ticks_diff(ticks_us(), t0)
print(
    json.dumps(
        {
            "load_cells": CELLS,
            "samples": N,
            "pins_us": pins / N,
            "control_us": control / N,
            "pass_us": passes / N,
            "mode": app.instrument.state_name(),
        }
    )
)
