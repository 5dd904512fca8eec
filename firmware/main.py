"""Boot entry: pick the board, build the app, run it.

Kept to glue only so that every piece of logic lives in the `stackpress` package and
can be tested on the MicroPython unix port. The board is chosen by `sys.platform`:
the Pico reports "rp2"; the virtual fixture runs the unix port ("linux").
"""

import sys


def _board_module():
    if sys.platform == "rp2":
        from boards import pico as board
    else:
        from boards import virtual as board
    return board


def run():
    board = _board_module()
    # The largest buffers first (the telemetry history, 30 KB, and the output queue, 4 KB):
    # after the firmware's modules are loaded the heap has free room enough but no single
    # block that big.
    from stackpress.history import History

    hist = History(load_cells=board.Board.load_cells)
    out_buf = bytearray(4096)
    from stackpress.app import App

    app = App(board.Board(), hist, out_buf)
    # Returns only when the host asked for the REPL; any crash propagates to the
    # REPL after the app has parked the motor.
    app.run()


run()
