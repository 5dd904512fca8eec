# The app with three load cells on the test board: what it reports, the nonuniform-load
# alarm, a load cell left out and taken back, calibrations per cell, under MicroPython.
import micropython
from plant import SPAN, TARE, FakeBoard, command, mount_ram_flash, run_app

from stackpress.app import App


def _app(shares=None):
    """A three-load-cell app calibrated as each cell's certificate says (each test board cell
    reads TARE counts at 0 N and SPAN counts per N)."""
    mount_ram_flash("/flash")
    board = FakeBoard(load_cells=3)
    if shares:
        board.shares = shares
    app = App(board)
    run_app(app, 10)
    assert command(
        app,
        board,
        "set_calibration",
        tare_counts=[TARE] * 3,
        span_counts_per_n=[SPAN] * 3,
        reference="certificates",
        date="2026-11-30",
    )["ok"]
    return app, board


def _status(app, board):
    return command(app, board, "status")["data"]


def _hold(app, board, mpa=40.0):
    command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    assert command(app, board, "hold", mpa=mpa)["ok"]
    run_app(app, 1500)
    st = _status(app, board)
    assert st["state"] == "hold" and abs(st["pressure_mpa"] - mpa) < 0.4, st
    return st


def test_status_and_telemetry_have_every_load_cell_the_uniformity_and_the_centre():
    app, board = _app([0.40, 0.30, 0.30])  # more on load cell 0 (+x): the centre is off towards +x
    run_app(app, 10)
    st = _hold(app, board)
    assert st["load_cells"] == 3 and len(st["channels"]) == 3 and len(st["raw_counts_channels"]) == 3
    f = [c["force_n"] for c in st["channels"]]
    assert abs(sum(f) - st["force_n"]) < 0.5, (f, st["force_n"])
    assert abs(f[0] / sum(f) - 0.40) < 0.002 and all(c["state"] == "ok" for c in st["channels"]), st
    # 0.40 against a mean of 1/3: 20 %; centre x = r (0.4 - 0.3 cos 60 - 0.3 cos 60) = 0.1 r = 3 mm
    assert abs(st["uniformity_pct"] - 20.0) < 0.3, st["uniformity_pct"]
    assert abs(st["centre_offset_mm"][0] - 3.0) < 0.05 and abs(st["centre_offset_mm"][1]) < 0.05, st
    run_app(app, 20)
    tel = [fr for fr in board.frames() if fr.get("t") == "tel"]
    assert tel and all(
        k in tel[-1]
        for k in ("force_ch0_n", "force_ch1_n", "force_ch2_n", "uniformity_pct", "centre_x_mm", "centre_y_mm")
    )
    assert abs(tel[-1]["centre_x_mm"] - 3.0) < 0.05


def test_an_uneven_load_warns_while_ramping_and_alarms_while_holding():
    app, board = _app([0.5, 0.25, 0.25])  # 50 % against a mean of 33 %: uniformity 50 %
    run_app(app, 10)
    command(app, board, "set", key="ramp_rate_mpa_s", value=2)
    assert command(app, board, "hold", mpa=40.0)["ok"]
    warn = []
    for _ in range(40):
        run_app(app, 50)
        warn += [f for f in board.frames() if f.get("kind") == "warning"]
    assert len(warn) == 1 and warn[0]["alarm"] == "nonuniform_load" and warn[0]["uniformity_pct"] > 45, warn
    st = _status(app, board)
    assert st["state"] == "hold" and "nonuniform_load" in st["alarms"], st  # reported; control goes on


def test_an_even_load_raises_no_alarm():
    app, board = _app()
    _hold(app, board)
    run_app(app, 50)
    st = _status(app, board)
    assert st["alarms"] == [] and st["uniformity_pct"] < 1.0, st


def test_a_load_cell_cut_is_left_out_the_test_goes_on_and_it_comes_back_after_ack():
    app, board = _app([0.36, 0.33, 0.31])
    run_app(app, 10)
    _hold(app, board)
    pos = app.instrument.stepper.position
    board.dead = 2  # load cell 1's wire cut
    board.frames()
    run_app(app, 60)
    frames = board.frames()
    st = _status(app, board)
    assert st["state"] == "hold" and "channel_fault" in st["alarms"], st
    assert st["channels"][1]["state"] == "no_data" and abs(st["pressure_mpa"] - 40.0) < 0.05, st
    ev = [f for f in frames if f.get("kind") == "channel"]
    assert len(ev) == 1 and ev[0]["channel"] == 1 and ev[0]["why"] == "no_data" and ev[0]["left"] == 2, ev
    assert abs(app.instrument.stepper.position - pos) < 2000  # still controlling, not driven away
    r = command(app, board, "ack")
    assert r["ok"] and "channel_fault" in _status(app, board)["alarms"]  # still out, still said
    board.dead = 0
    run_app(app, 5)
    assert command(app, board, "ack")["ok"]
    st = _status(app, board)
    assert st["alarms"] == [] and all(c["state"] == "ok" for c in st["channels"]), st


def test_two_load_cells_cut_at_once_fault_and_hold_position():
    app, board = _app()
    run_app(app, 10)
    _hold(app, board)
    board.dead = 5  # load cells 0 and 2
    run_app(app, 5)
    pos = app.instrument.stepper.position
    board.plant.extra_n += 300.0  # the cell swells meanwhile: nothing may move on one load cell
    run_app(app, 100)
    st = _status(app, board)
    assert st["state"] == "fault" and "sensor_timeout" in st["alarms"], st
    assert app.instrument.stepper.position == pos
    assert not command(app, board, "ack")["ok"]  # refused: not trusted


def test_tare_zeroes_every_load_cell_and_takes_a_left_out_one_back():
    app, board = _app()
    assert command(app, board, "release")["ok"]  # unloaded, and shown to be: backed off
    run_app(app, 60)
    board.plant.extra_n = 0.0
    app.instrument.loadcells.excluded = 4  # as if load cell 2 had been outvoted
    app.instrument.loadcells.why[2] = 5
    r = command(app, board, "tare")
    assert r["ok"] and len(r["data"]["tare_counts"]) == 3, r
    assert all(abs(t - TARE) < 40 for t in r["data"]["tare_counts"]), r
    assert app.instrument.loadcells.excluded == 0
    board.dead = 1
    run_app(app, 30)
    r = command(app, board, "tare")
    assert not r["ok"] and r["err"] == "sensor" and "load cell 0" in r["msg"], r


def test_calibration_per_load_cell_or_for_their_sum():
    app, board = _app()
    run_app(app, 10)
    r = command(
        app,
        board,
        "set_calibration",
        tare_counts=[TARE, TARE, TARE],
        span_counts_per_n=[SPAN] * 2,
        reference="x",
        date="d",
    )
    assert not r["ok"] and r["err"] == "type" and "3" in r["msg"], r
    r = command(
        app,
        board,
        "set_calibration",
        tare_counts=[TARE] * 3,
        span_counts_per_n=[SPAN, SPAN, SPAN * 3],
        reference="x",
        date="d",
    )
    assert not r["ok"] and r["err"] == "range", r
    r = command(
        app,
        board,
        "set_calibration",
        tare_counts=[TARE + 10, TARE, TARE],
        span_counts_per_n=[SPAN, SPAN * 1.01, SPAN],
        reference="certificates",
        date="2026-11-24",
    )
    assert r["ok"] and r["data"]["calibration"]["span_counts_per_n"][1] == SPAN * 1.01, r
    # the sum calibrated against a reference: every span scaled alike, the zero shift shared
    total_tare = app.instrument.loadcells.combined_tare()
    r = command(
        app,
        board,
        "set_calibration",
        tare_counts=total_tare + 30,
        span_counts_per_n=SPAN * 1.02,
        reference="reference cell",
        date="2026-11-24",
    )
    cal = r["data"]["calibration"]
    assert r["ok"] and abs(cal["span_counts_per_n"][0] - SPAN * 1.02) < 1e-6, r
    assert abs(cal["span_counts_per_n"][1] / cal["span_counts_per_n"][0] - 1.01) < 1e-9
    assert abs(app.instrument.loadcells.combined_tare() - (total_tare + 30)) < 2


def test_control_with_three_load_cells_allocates_nothing_even_when_one_is_left_out():
    app, board = _app([0.4, 0.3, 0.3])
    run_app(app, 10)
    _hold(app, board)
    run_app(app, 100)
    vals = app.hx.values
    good = list(vals)
    micropython.heap_lock()
    try:
        for i in range(50):
            vals[0] = good[0] + (i & 3)
            vals[1] = good[1] - (i & 1)
            vals[2] = good[2] + (i & 2)
            app.instrument.control(7)
        for _ in range(20):
            app.instrument.control(3)  # load cell 2 silent: estimated, then left out
        vals[1] = 0x7FFFFF
        app.instrument.control(3)  # and one more gone: too few, not trusted
    finally:
        micropython.heap_unlock()
    assert app.instrument.loadcells.excluded == 4 and app.instrument.ctrl.mode == 5
