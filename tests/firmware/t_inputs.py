# The e-stop and end-stop inputs, and the status LED, on the firmware tests' board double.
from plant import FakeBoard, command, mount_ram_flash, run_app

from stackpress.app import App


def _app():
    mount_ram_flash("/flash")
    board = FakeBoard()
    app = App(board)
    run_app(app, 10)
    return app, board


def _hold(app, board, mpa=40.0):
    command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    assert command(app, board, "hold", mpa=mpa)["ok"]
    run_app(app, 1500)
    assert app.instrument.ctrl.mode == 2


def test_estop_stops_switches_the_driver_off_and_holds_until_released_and_acked():
    app, board = _app()
    _hold(app, board)
    board.plant.extra_n += 100.0  # the cell swells: holding would need the motor
    board.switches = 1
    run_app(app, 2)
    assert app.instrument.ctrl.mode == 5 and "estop" in app.instrument.safety.names(), app.instrument.safety.names()
    assert board.driver is False
    pos = app.instrument.stepper.position
    run_app(app, 300)
    assert app.instrument.stepper.position == pos and not app.instrument.stepper.moving()
    r = command(app, board, "ack")
    assert not r["ok"] and r["err"] == "estop" and "release" in r["msg"], r
    assert app.instrument.ctrl.mode == 5 and board.driver is False
    st = command(app, board, "status")["data"]
    assert st["estop_open"] is True and st["driver_enabled"] is False and "estop" in st["alarms"], st
    board.switches = 0
    run_app(app, 5)
    assert app.instrument.ctrl.mode == 5  # latched: released is not acknowledged
    r = command(app, board, "ack")
    assert r["ok"] and "estop" in r["data"]["cleared"], r
    assert board.driver is True
    run_app(app, 600)
    assert app.instrument.ctrl.mode == 2 and abs(app.instrument.pressure_mpa(app.instrument.net) - 40.0) < 0.4


def test_estop_trips_with_the_adc_silent_too():
    app, board = _app()
    _hold(app, board)
    board.sensor_ok = False
    board.switches = 1
    run_app(app, 1)
    assert "estop" in app.instrument.safety.names() and board.driver is False


def test_end_stop_refuses_moves_towards_it_and_allows_moves_away():
    app, board = _app()
    assert command(app, board, "jog", um=20.0)["ok"]
    run_app(app, 2)
    board.switches = 2  # reached while moving forward
    run_app(app, 2)
    assert app.instrument.ctrl.mode == 5 and "end_stop" in app.instrument.safety.names()
    assert command(app, board, "ack")["ok"]
    run_app(app, 20)
    r = command(app, board, "jog", um=5.0)
    assert not r["ok"] and r["err"] == "end_stop", r
    assert command(app, board, "ack")["ok"]
    run_app(app, 20)
    pos = app.instrument.stepper.position
    r = command(app, board, "jog", um=-5.0)
    assert r["ok"], r
    run_app(app, 20)
    assert app.instrument.stepper.position == pos - 400
    board.switches = 0
    run_app(app, 2)
    assert command(app, board, "jog", um=5.0)["ok"]


def test_end_stop_open_at_boot_refuses_every_move():
    mount_ram_flash("/flash")
    board = FakeBoard()
    board.switches = 2
    app = App(board)
    run_app(app, 10)
    assert "end_stop" in app.instrument.safety.names()
    assert command(app, board, "ack")["ok"]
    run_app(app, 3)
    for um in (5.0, -5.0):
        r = command(app, board, "jog", um=um)
        assert not r["ok"] and r["err"] == "end_stop", r
        command(app, board, "ack")
        run_app(app, 3)


def test_the_led_says_holding_idle_or_fault():
    app, board = _app()
    board.led_changes = 0
    run_app(app, 100)  # idle, 10 s: a blip every 2 s
    assert 6 <= board.led_changes <= 12, board.led_changes
    _hold(app, board)
    board.led_changes = 0
    run_app(app, 100)
    assert board.led_on == 1 and board.led_changes == 0  # steady while holding
    board.switches = 1
    run_app(app, 100)  # fault: 4 Hz
    assert board.led_changes >= 30, board.led_changes
