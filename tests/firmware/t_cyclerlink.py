# What a cycler's inputs see: the analog pressure output (scaled in integers, allocation-
# free) and the fault line (ok only while the fixture is in control). MicroPython only.
import micropython
from plant import FakeBoard, command, mount_ram_flash, run_app

from stackpress.app import App


def _app():
    mount_ram_flash("/flash")
    board = FakeBoard()
    app = App(board)
    run_app(app, 60)  # the force trusted, the fixture in control: the line says ok
    return app, board


def _volts_code(app, v):
    c = app.instrument.cfg
    return (v - c["analog_out_zero_v"]) / (c["analog_out_full_scale_v"] - c["analog_out_zero_v"]) * 4096


def _events(board, kind):
    return [f for f in board.frames() if f.get("t") == "evt" and f.get("kind") == kind]


def test_the_code_follows_the_pressure_by_the_settings_to_one_code():
    app, board = _app()
    link, ins = app.link, app.instrument
    c = ins.cfg
    counts_per_mpa = 1 / ins.pressure_mpa(1)
    for mpa in (0.0, 1.0, 12.5, 25.0, 40.0, 60.0, 75.0):
        want = _volts_code(app, c["analog_out_offset_v"] + mpa / c["analog_out_mpa_per_v"])
        got = link.code_of(int(mpa * counts_per_mpa))
        assert abs(got - want) <= 1.0, (mpa, got, want)
    assert link.code_of(-int(10 * counts_per_mpa)) == 0  # never below the DAC's range ...
    assert link.code_of(int(500 * counts_per_mpa)) == 4095  # ... nor above it
    # another scale, and the check's measured ends, take effect at once
    for key, value in (("analog_out_mpa_per_v", 10.0), ("analog_out_full_scale_v", 3.31), ("analog_out_zero_v", 0.004)):
        assert command(app, board, "set", key=key, value=value)["ok"]
    want = _volts_code(app, c["analog_out_offset_v"] + 20.0 / 10.0)
    assert abs(link.code_of(int(20.0 * counts_per_mpa)) - want) <= 1.0


def test_the_output_allocates_nothing_at_every_sample():
    app, board = _app()
    link = app.link
    k = int(1 / app.instrument.pressure_mpa(1))
    micropython.heap_lock()
    try:
        for i in range(400):
            link.update(k * (i % 70), i % 3 != 0)
    finally:
        micropython.heap_unlock()
    assert link.dac_ok and board.dac.code == link.code_of(k * (399 % 70))


def test_the_output_is_the_held_pressure_and_the_line_ok_while_in_control():
    app, board = _app()
    assert board.line == 1
    command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    assert command(app, board, "hold", mpa=40.0)["ok"]
    run_app(app, 1500)
    st = command(app, board, "status")["data"]
    assert st["state"] == "hold" and st["fault_line"] == "ok" and st["analog_out_ok"] is True
    assert abs(st["analog_out_v"] - (0.1 + 40.0 / 25.0)) < 0.003, st["analog_out_v"]


def test_a_sensor_fault_opens_the_line_until_ack():
    app, board = _app()
    assert board.line == 1
    board.sensor_ok = False  # the ADC goes silent: sensor_timeout, fault
    run_app(app, 40)
    assert board.line == 0
    assert command(app, board, "status")["data"]["fault_line"] == "fault"
    board.sensor_ok = True
    run_app(app, 40)
    assert board.line == 0  # latched: the cycler stays paused until a person acknowledges
    assert command(app, board, "ack")["ok"]
    run_app(app, 5)
    assert board.line == 1


def test_a_dac_that_stops_answering_is_said_opens_the_line_and_is_retried():
    app, board = _app()
    dac = board.dac
    write = dac.write
    dac.write = lambda code: False
    command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    command(app, board, "hold", mpa=10.0)  # the code changes: a write, which fails
    run_app(app, 30)
    assert board.line == 0 and not app.link.dac_ok
    warn = [e for e in _events(board, "warning") if "DAC" in e["msg"]]
    assert len(warn) == 1, warn
    dac.write = write
    run_app(app, 30)  # retried once a second
    assert app.link.dac_ok and board.line == 1


def test_a_test_voltage_only_while_not_controlling_and_it_ends():
    app, board = _app()
    command(app, board, "set", key="ramp_rate_mpa_s", value=10)
    command(app, board, "hold", mpa=20.0)
    run_app(app, 300)
    r = command(app, board, "analog_test", v=2.0, s=2)
    assert not r["ok"] and r["err"] == "state" and "cycler" in r["msg"], r
    assert command(app, board, "gap")["ok"]
    r = command(app, board, "analog_test", v=9.0)
    assert not r["ok"] and r["err"] == "range", r
    r = command(app, board, "analog_test", v=2.0, s=2)
    assert r["ok"] and r["data"]["code"] == round(_volts_code(app, 2.0)), r
    run_app(app, 3)
    assert board.dac.code == r["data"]["code"]
    board.frames()
    run_app(app, 40)  # 4 s
    assert board.dac.code != r["data"]["code"]
    assert _events(board, "analog_test")
