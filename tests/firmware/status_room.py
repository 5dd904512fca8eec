# For heap_probe.py (MicroPython): the heap a status reply needs. The free heap is filled
# down to `room` bytes, status is asked, and it must be answered; the smallest room that
# worked is returned (None: not even the largest).
import gc
import json

from plant import run_app

from stackpress.protocol import frame

ROOMS = (16384, 12288, 10240, 8192, 7168, 6144, 5120, 4096, 3072, 2048, 1024)


def _answered(app, board):
    for _ in range(200):
        try:
            run_app(app, 1)
        except MemoryError:  # as App.run: a record lost, counted
            app.memory_errors += 1
        if board.sink.find(b'"heap_free_bytes"', 0, board.sunk) >= 0:
            return True
        if board.sunk > 3072:  # the host reads: keep the tail, where the marker may be cut
            for i in range(32):
                board.sink[i] = board.sink[board.sunk - 32 + i]
            board.sunk = 32
    return False


def status_needs(app, board):
    ask = frame(json.dumps({"id": 7, "cmd": "status"}))
    for _ in range(300):  # what the full sink held back goes out first
        run_app(app, 1)
        board.sunk = 0
    worked = None
    filler = None
    for room in ROOMS:
        gc.collect()
        try:
            while gc.mem_free() > room:
                filler = [filler, bytearray(16)]
        except MemoryError:
            pass
        board.sunk = 0
        board.send(ask)
        errors = app.memory_errors
        if not _answered(app, board) or app.memory_errors != errors:
            break
        worked = room
    return worked
