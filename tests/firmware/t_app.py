import gc

import micropython
from plant import SPAN, TARE, FakeBoard, command, mount_ram_flash, replies, run_app

from stackpress.app import App


def _app(board=None, fresh=True):
    if fresh:
        mount_ram_flash("/flash")
    board = board or FakeBoard()
    return App(board), board


def _hold(app, board, mpa=40.0):
    command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    r = command(app, board, "hold", mpa=mpa)
    assert r["ok"], r
    run_app(app, 1500)
    st = command(app, board, "status")["data"]
    assert st["state"] == "hold", st
    assert abs(st["pressure_mpa"] - mpa) < 0.01 * mpa, st
    return st


def test_status_names_what_it_is():
    app, board = _app()
    run_app(app, 10)
    st = command(app, board, "status")["data"]
    for k in (
        "firmware_version",
        "runtime",
        "board",
        "state",
        "pressure_mpa",
        "setpoint_mpa",
        "force_n",
        "position_um",
        "cell_area_mm2",
        "alarms",
        "uptime_s",
    ):
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
    for cmd, args, code in (
        ("jump", {}, "unknown"),
        ("hold", {"mpa": 500}, "range"),
        ("hold", {"mpa": "40"}, "type"),
        ("hold", {}, "missing"),
        ("set", {"key": "cell_area_mm2", "value": 50}, "locked"),
        ("set", {"key": "load_cell_span_per_k", "value": 0.005}, "locked"),
        ("set", {"key": "load_cell_creep_per_30min", "value": 0.005}, "locked"),
        ("set", {"key": "load_cell_zero_n_per_k", "value": 20}, "locked"),
        ("set", {"key": "loop_gain", "value": 7}, "range"),
        ("tare", {}, "state"),
    ):
        r = command(app, board, cmd, **args)
        assert not r["ok"] and r["err"] == code, (cmd, r)
        assert r["msg"], r
    r = command(app, board, "hold", mpa=500)
    assert "MPa" in r["msg"] and "76" in r["msg"]  # the allowed range is in the message
    run_app(app, 200)
    after = command(app, board, "status")["data"]
    assert after["state"] == "hold" and after["setpoint_mpa"] == before["setpoint_mpa"]
    assert abs(after["pressure_mpa"] - 25.0) < 0.25


def test_a_setting_that_can_not_be_saved_is_not_used():
    # `set` changes the settings in place (no copy of all of them): a failed save must put
    # the old value back, or the fixture would run on a value a reset forgets.
    app, board = _app()
    run_app(app, 10)
    rate = app.instrument.cfg["ramp_rate_mpa_s"]
    saved = app.store.save

    def full(name, doc):
        raise OSError(28)  # ENOSPC: the flash is full

    app.store.save = full
    try:
        r = command(app, board, "set", key="ramp_rate_mpa_s", value=rate * 2)
    finally:
        app.store.save = saved
    assert not r["ok"], r
    assert app.instrument.cfg["ramp_rate_mpa_s"] == rate, app.instrument.cfg["ramp_rate_mpa_s"]
    r = command(app, board, "config")
    assert r["data"]["config"]["ramp_rate_mpa_s"]["value"] == rate, r


def test_control_iteration_allocates_nothing():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board)
    raws = []
    for _ in range(200):
        board.idle()
        app.hx.read()
        raws.append(app.hx.values[0])
    micropython.heap_lock()
    try:
        vals = app.hx.values
        for raw in raws:
            vals[0] = raw
            app.instrument.control(1)
    finally:
        micropython.heap_unlock()
    assert app.instrument.ctrl.mode in (1, 2)


def test_a_pass_with_nothing_to_do_allocates_nothing():
    """Most passes of the loop find no conversion, no record due and no byte in: on a Pico
    about a thousand a second. Garbage made there costs a collection every few seconds
    (found on the emulated Pico: 16 bytes a pass, from a bound method taken each time)."""
    app, board = _app()
    run_app(app, 10)
    _hold(app, board)
    board.idle = lambda: None  # the world stands still: no conversion comes, no time passes
    app.loop_once()  # takes the conversion that may be waiting
    micropython.heap_lock()
    try:
        for _ in range(50):
            app.loop_once()
    finally:
        micropython.heap_unlock()
    assert app.memory_errors == 0


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
    st = command(app2, board2, "status")["data"]
    assert st["state"] == "hold" and st["setpoint_mpa"] == 40.0
    assert peak / 78.54 <= 40.0 * 1.01, peak / 78.54
    boot = [f for f in board2.frames() if f.get("kind") == "boot"]
    assert not boot or boot[0]["resume"] == "hold"


def test_sensor_silence_faults_and_holds_position_until_ack():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board, 25.0)
    board.sensor_ok = False
    run_app(app, 20)
    assert app.instrument.ctrl.mode == 5 and "sensor_timeout" in app.instrument.safety.names()
    pos = app.instrument.stepper.position  # a move in flight was cut at the fault: from here, nothing
    run_app(app, 200)
    assert app.instrument.stepper.position == pos and not app.instrument.stepper.moving()  # never moves blind
    board.sensor_ok = True
    run_app(app, 20)
    assert app.instrument.ctrl.mode == 5  # latched until acknowledged
    r = command(app, board, "ack")
    assert r["ok"] and r["data"]["cleared"] == ["sensor_timeout"]
    run_app(app, 300)
    assert app.instrument.ctrl.mode == 2


def _tel(board):
    return [f for f in board.frames() if f.get("t") == "tel"]


def test_thickness_is_the_motor_travel_while_holding_with_the_frame_growth_taken_out():
    app, board = _app()
    run_app(app, 10)
    command(app, board, "set", key="stiffness_n_per_um", value=3.32)  # the plant's stiffness
    _hold(app, board)
    run_app(app, 50)
    assert abs(app.instrument.thickness_um()) < 0.05, app.instrument.thickness_um()
    for _ in range(400):  # the cell swells by 5 um (400 microsteps), slowly
        board.plant.gap -= 1
        run_app(app, 2)
    run_app(app, 300)
    assert abs(app.instrument.thickness_um() - 5.0) < 0.05, app.instrument.thickness_um()
    # The frame warms by 10 K: the column grows 0.97 um against it; not the cell.
    board.temp_c += 10
    board.plant.gap -= int(round(10 * app.instrument.cfg["frame_um_per_k"] / app.instrument.cfg["um_per_step"]))
    run_app(app, 300)
    assert abs(app.instrument.thickness_um() - 5.0) < 0.05, app.instrument.thickness_um()
    board.frames()
    command(app, board, "set", key="telemetry_period_ms", value=100)
    run_app(app, 30)
    tel = _tel(board)
    assert tel and abs(tel[-1]["thickness_um"] - 5.0) < 0.05 and tel[-1]["temperature_c"] == 35.0


def test_thickness_reference_survives_a_reset_and_a_new_setpoint_starts_a_new_one():
    app, board = _app()
    run_app(app, 10)
    command(app, board, "set", key="stiffness_n_per_um", value=3.32)
    _hold(app, board)
    for _ in range(160):
        board.plant.gap -= 1
        run_app(app, 2)
    run_app(app, 300)
    t1 = app.instrument.thickness_um()
    assert abs(t1 - 2.0) < 0.05, t1
    app.save_state()
    board2 = FakeBoard(board.plant)
    app = None  # the board reboots: the old app's RAM is gone
    gc.collect()
    app2 = App(board2)
    run_app(app2, 400)
    assert app2.instrument.ctrl.mode == 2 and abs(app2.instrument.thickness_um() - t1) < 0.05, (
        app2.instrument.thickness_um()
    )
    command(app2, board2, "hold", mpa=30.0)
    run_app(app2, 1500)
    assert app2.instrument.ctrl.mode == 2 and abs(app2.instrument.thickness_um()) < 0.05, app2.instrument.thickness_um()


def test_every_telemetry_record_carries_the_extremes_since_the_last():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board, 25.0)
    board.frames()
    run_app(app, 25)  # ~10 samples per 1 s record at 10 samples/s
    board.plant.extra_n = 40.0  # a 0.5 MPa spike for one sample, between two records
    run_app(app, 2)
    board.plant.extra_n = 0.0
    run_app(app, 40)
    tel = _tel(board)
    assert len(tel) >= 2
    assert all(t["p_min_mpa"] <= t["pressure_mpa"] <= t["p_max_mpa"] for t in tel)
    assert sum(t["n_samples"] for t in tel) >= 30
    assert max(t["p_max_mpa"] for t in tel) > 25.4  # the spike was reported
    assert max(t["pressure_mpa"] for t in tel) < 25.4  # though no record fell on it


def test_jog_moves_only_in_idle_or_gap_and_within_range():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board, 25.0)
    r = command(app, board, "jog", um=1.0)
    assert not r["ok"] and r["err"] == "state", r
    pos = app.instrument.stepper.position
    r = command(app, board, "gap")
    r = command(app, board, "jog", um=0.8)
    assert r["ok"] and r["data"]["steps"] == 64, r
    assert app.instrument.stepper.position == pos + 64
    for um, code in ((500, "range"), ("1", "type")):
        r = command(app, board, "jog", um=um)
        assert not r["ok"] and r["err"] == code, r
    assert app.instrument.stepper.position == pos + 64


def test_load_cell_zero_drift_with_temperature_is_taken_out_when_known():
    app, board = _app()
    run_app(app, 30)
    assert command(
        app,
        board,
        "set_calibration",
        tare_counts=TARE,
        span_counts_per_n=SPAN,
        reference="certificate",
        date="2026-11-30",
        tare_temperature_c=25.0,
    )["ok"]
    assert command(app, board, "release")["ok"]  # unloaded, and shown to be: backed off
    run_app(app, 60)
    f0 = app.instrument.force_n(app.instrument.net)
    board.temp_c = 35.0
    board.plant.extra_n = 5.0  # the load cell's zero drifts 0.5 N/K: +5 N at +10 K
    run_app(app, 40)
    assert abs(app.instrument.force_n(app.instrument.net) - f0 - 5.0) < 0.1  # uncompensated (the default)
    r = command(app, board, "set", key="load_cell_zero_n_per_k", value=0.5)
    assert r["ok"], r
    run_app(app, 200)
    assert abs(app.instrument.force_n(app.instrument.net) - f0) < 0.1, app.instrument.force_n(app.instrument.net) - f0
    r = command(app, board, "tare")  # a tare at 35 degC becomes the new reference
    assert r["ok"], r
    run_app(app, 40)
    assert app.instrument.calib["tare_temperature_c"] == 35.0 and abs(app.instrument.force_n(app.instrument.net)) < 0.1
    board.temp_c = 25.0
    board.plant.extra_n = 0.0
    run_app(app, 40)
    assert abs(app.instrument.force_n(app.instrument.net)) < 0.1, app.instrument.force_n(app.instrument.net)
