# Run under `micropython -X heapsize=192k`: the firmware built in main.py's order (the
# telemetry history first) on the tests' board double with the Pico's history size,
# (three load cells, as the reference build) holding 40 MPa for simulated minutes with
# telemetry and commands going; then the heap.
import gc
import json
import sys

import micropython

sys.path[:0] = [sys.argv[1], sys.argv[2]]  # firmware/, tests/firmware/
sink = bytearray(4096)  # the board double's serial line, before the firmware (not on a Pico): a reply fits
from stackpress.history import TEL_RECORDS, History  # noqa: E402

hist = History(TEL_RECORDS, load_cells=3)  # the reference build's three load cells
out_buf = bytearray(4096)
from plant import FakeBoard, run_app  # noqa: E402

from stackpress.app import App  # noqa: E402

board = FakeBoard(load_cells=3)
board.root = sys.argv[3]  # a directory as the flash: on a Pico the filesystem is not in the heap either
board.sink = sink
board.sunk = 0
app = App(board, hist, out_buf)
run_app(app, 10)
gc.collect()
boot_free = gc.mem_free()
board.command("set", key="ramp_rate_mpa_s", value=10)
board.command("hold", mpa=40.0)
for i in range(60):
    run_app(app, 200)  # 60 x 10 s
    board.command(("status", "config", "hello")[i % 3])
    board.sunk = 0  # the host read it (not decoded here: that is not the firmware's heap)
gc.collect()
free = gc.mem_free()
alloc = gc.mem_alloc()

from status_room import status_needs  # noqa: E402  (imported after the figures: its code is not the firmware's)

status_room = status_needs(app, board)
gc.collect()
print(
    json.dumps(
        {
            "holding": (app.instrument.ctrl.mode if hasattr(app, "instrument") else app.ctrl.mode) == 2,
            "boot_free": boot_free,
            "free": free,
            "alloc": alloc,
            "status_answered_with_free": status_room,
            "memory_errors": app.memory_errors,
        }
    )
)
micropython.mem_info()
