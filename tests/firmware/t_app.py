import micropython

from plant import FakeBoard, mount_ram_flash, replies, run_app
from stackpress.app import App


def _app(board=None, fresh=True):
    if fresh:
        mount_ram_flash("/flash")
    board = board or FakeBoard()
    return App(board), board


def _command(app, board, cmd, **args):
    board.command(cmd, **args)
    run_app(app, 3)
    r = replies(board.frames())
    assert len(r) == 1, r
    return r[0]


def _hold(app, board, mpa=40.0):
    _command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    r = _command(app, board, "hold", mpa=mpa)
    assert r["ok"], r
    run_app(app, 1500)
    st = _command(app, board, "status")["data"]
    assert st["state"] == "hold", st
    assert abs(st["pressure_mpa"] - mpa) < 0.01 * mpa, st
    return st


def test_status_names_what_it_is():
    app, board = _app()
    run_app(app, 10)
    st = _command(app, board, "status")["data"]
    for k in ("firmware_version", "runtime", "board", "state", "pressure_mpa", "setpoint_mpa", "force_n",
              "position_um", "cell_area_mm2", "alarms", "uptime_s"):
        assert k in st, k
    assert st["runtime"].startswith("micropython") and st["state"] == "idle"


def test_hold_reaches_setpoint_across_the_ticks_wrap():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board)  # the fake board's clock starts 5 s before ticks_ms wraps


def test_bad_input_gets_clear_errors_and_changes_nothing():
    app, board = _app()
    run_app(app, 10)
    before = _hold(app, board, 25.0)
    bad = [
        (b"hello\n", "frame"),
        (b'{"id":9,"cmd":"hold","mpa":60}*00000000\n', "crc"),
        (b"\x03\x03\x01\x04" + b"x" * 600 + b"\n", "frame"),
    ]
    for raw, code in bad:
        board.send(raw)
        run_app(app, 3)
        r = replies(board.frames())
        assert len(r) == 1 and not r[0]["ok"] and r[0]["err"] == code, (raw, r)
    for cmd, args, code in (("jump", {}, "unknown"), ("hold", {"mpa": 500}, "range"),
                            ("hold", {"mpa": "40"}, "type"), ("hold", {}, "missing"),
                            ("set", {"key": "cell_area_mm2", "value": 50}, "locked"),
                            ("set", {"key": "loop_gain", "value": 7}, "range"),
                            ("tare", {}, "state")):
        r = _command(app, board, cmd, **args)
        assert not r["ok"] and r["err"] == code, (cmd, r)
        assert r["msg"], r
    r = _command(app, board, "hold", mpa=500)
    assert "MPa" in r["msg"] and "76" in r["msg"]  # the allowed range is in the message
    run_app(app, 200)
    after = _command(app, board, "status")["data"]
    assert after["state"] == "hold" and after["setpoint_mpa"] == before["setpoint_mpa"]
    assert abs(after["pressure_mpa"] - 25.0) < 0.25


def test_control_iteration_allocates_nothing():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board)
    raws = []
    for _ in range(200):
        board.idle()
        raws.append(app.hx.read())
    micropython.heap_lock()
    try:
        for raw in raws:
            app.control(raw)
    finally:
        micropython.heap_unlock()
    assert app.ctrl.mode in (1, 2)


def test_reset_resumes_hold_from_measured_force_without_a_step():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board)
    # a reset: new firmware instance, same flash and the same physical world
    board2 = FakeBoard(board.plant)
    app2 = App(board2)
    peak = 0.0
    for _ in range(400):
        app2.loop_once()
        peak = max(peak, board2.plant.force_n())
    st = _command(app2, board2, "status")["data"]
    assert st["state"] == "hold" and st["setpoint_mpa"] == 40.0
    assert peak / 78.54 <= 40.0 * 1.01, peak / 78.54
    boot = [f for f in board2.frames() if f.get("kind") == "boot"]
    assert not boot or boot[0]["resume"] == "hold"


def test_sensor_silence_faults_and_holds_position_until_ack():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board, 25.0)
    pos = app.stepper.position
    board.sensor_ok = False
    run_app(app, 200)
    assert app.ctrl.mode == 5 and "sensor_timeout" in app.safety.names()
    assert app.stepper.position == pos  # never moves blind
    board.sensor_ok = True
    run_app(app, 20)
    assert app.ctrl.mode == 5  # latched until acknowledged
    r = _command(app, board, "ack")
    assert r["ok"] and r["data"]["cleared"] == ["sensor_timeout"]
    run_app(app, 300)
    assert app.ctrl.mode == 2
