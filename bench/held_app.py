# The firmware's App holding 40 MPa on the firmware tests' board double, for the probes
# under MicroPython (alloc_probe.py: heap; board_probe.py: time). Three load cells, the
# reference build, on tests/firmware/plant.py's pin-level HX711s and step pulses with a
# linear plant and ADC noise; a RAM flash. Import after sys.path holds the firmware (.mpy)
# and tests/firmware, and after the caller's own big buffers.
from plant import SPAN, TARE, FakeBoard, Plant, mount_ram_flash

from stackpress.app import App
from stackpress.controller import HOLD
from stackpress.history import History

CELLS = 3


class NoisyPlant(Plant):
    """16 N/um at 12.5 nm per microstep, with +-16 counts of ADC noise (the plant's LCG)."""

    def __init__(self):
        super().__init__(k_n_per_step=0.2, gap_steps=16000)
        self.noise_counts = 16


def held_app(sink):
    """(app, board): the App built in main.py's order (history, output queue), brought to HOLD
    at 40 MPa; what it writes goes to `sink` and is dropped."""
    mount_ram_flash("/flash")  # the test double's 24 KB RAM disk (a Pico's flash is not in its heap)
    hist = History(64, load_cells=CELLS)
    out_buf = bytearray(4096)
    board = FakeBoard(NoisyPlant(), load_cells=CELLS)
    board.shares = [0.36, 0.33, 0.31]
    board.sink = sink
    board.sunk = 0
    app = App(board, hist, out_buf)
    app.instrument.recalibrate({"tare_counts": [TARE] * CELLS, "span_counts_per_n": [SPAN] * CELLS})
    for _ in range(20):
        app.loop_once()
        board.sunk = 0
    app.instrument.hold(40.0)
    for _ in range(20000):
        app.loop_once()
        board.sunk = 0
        if app.instrument.ctrl.mode == HOLD:
            break
    assert app.instrument.ctrl.mode == HOLD, "never reached hold"
    return app, board
