"""Boot entry: pick the board, build the app, run it; if that fails, the safe boot.

Kept to glue only so that every piece of logic lives in the `stackpress` package and
can be tested on the MicroPython unix port. The board is chosen by `sys.platform`:
the Pico reports "rp2"; the virtual fixture runs the unix port ("linux"). Whatever
the firmware raises goes to stackpress/safemode.py, never to the REPL: it keeps the
error, resets to retry, and after repeated failures answers `status` with the error.
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
    # Returns only when the host asked for the REPL; a crash propagates (after the app
    # has parked the motor) to start(), which hands it to the safe boot.
    app.run()


def forget():
    """Unload the firmware's modules: what a failed start built becomes garbage, so the safe
    mode, and the REPL after it, get the heap back."""
    for name in list(sys.modules):
        if name.startswith("stackpress") or name.startswith("boards"):
            del sys.modules[name]
    import gc

    gc.collect()


def start():
    import os

    try:
        os.stat("bootfail.json")  # only there after a failed start (safemode.py)
    except OSError:
        pass
    else:
        from stackpress import safemode

        retry = safemode.retry()
        forget()
        if not retry:
            return  # the host asked for the REPL
    try:
        run()
    except Exception as e:
        forget()
        from stackpress import safemode

        safemode.failed(e)  # returns only when the host asked for the REPL
        forget()


start()
