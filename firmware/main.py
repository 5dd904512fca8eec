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
    from stackpress.app import App
    app = App(_board_module().Board())
    # Returns only when the host asked for the REPL; any crash propagates to the
    # REPL after the app has parked the motor.
    app.run()


run()
