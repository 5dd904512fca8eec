# Fuzz target, run under MicroPython: the firmware holding 40 MPa on the test board
# while a batch of inputs (length-prefixed in the file named on the command line)
# arrives on its serial line. After each input it prints one JSON line: the replies
# it got, whether control went on, and whether any state changed.
import json
import sys

# Inputs: a 2-byte length, then the bytes. Read into one buffer allocated first (before
# the firmware's modules load), so the harness does not fragment the heap the firmware
# lives in.
buf = bytearray(8192)
mv = memoryview(buf)
hdr = bytearray(2)
sys.path[:0] = [sys.argv[2], sys.argv[3]]  # firmware/, tests/firmware/
from plant import FakeBoard, mount_ram_flash, replies, run_app  # noqa: E402

from stackpress.app import App  # noqa: E402

mount_ram_flash("/flash")
board = FakeBoard()
board.plant.noise_counts = 12
app = App(board)
run_app(app, 10)
board.command("set", key="ramp_rate_mpa_s", value=10)
run_app(app, 4)
board.command("hold", mpa=40.0)
run_app(app, 1500)
board.frames()


def snapshot():
    return (
        app.instrument.ctrl.mode,
        app.instrument.setpoint_mpa,
        app.locked,
        json.dumps(app.instrument.cfg),
        json.dumps(app.instrument.calib),
        app.instrument.safety.latched,
        json.dumps(app.instrument.profile.state()),
    )


import gc  # noqa: E402

gc.collect()
print(json.dumps({"ready": app.instrument.ctrl.mode == 2, "heap_free": gc.mem_free()}))
with open(sys.argv[1], "rb") as f:
    while f.readinto(hdr) == 2:
        n = hdr[0] | (hdr[1] << 8)
        f.readinto(mv[:n])
        before = snapshot()
        samples = app.samples
        board.rx = mv[:n]
        board._rx_at = 0
        try:
            run_app(app, 24)  # 1.2 s: every byte read, control running meanwhile
            # an unterminated line is completed by the next input's newline; end it here
            board.send(b"\n")
            run_app(app, 4)
            crashed = None
        except Exception as e:  # noqa: BLE001 -- any escape from the loop is a crash
            crashed = repr(e)
        reps = replies(board.frames())
        p = app.instrument.pressure_mpa(app.instrument.net)
        print(
            json.dumps(
                {
                    "crash": crashed,
                    "replies": [{"ok": r["ok"], "err": r.get("err"), "msg": r.get("msg")} for r in reps],
                    "changed": snapshot() != before,
                    "controlling": app.samples > samples and app.instrument.ctrl.mode == 2 and abs(p - 40.0) < 0.4,
                    "p": p,
                }
            )
        )
