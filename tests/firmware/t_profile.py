# Pressure profiles run by the firmware: ramps and holds, refusals, reset mid-profile.
import gc

from plant import FakeBoard, mount_ram_flash, replies, run_app

from stackpress.app import App
from stackpress.profile import ProfileError, check


def _app(board=None, fresh=True):
    if fresh:
        mount_ram_flash("/flash")
    board = board or FakeBoard()
    app = App(board)
    run_app(app, 10)
    return app, board


def _command(app, board, cmd, **args):
    board.command(cmd, **args)
    run_app(app, 3)
    board.last = board.frames()
    r = replies(board.last)
    assert len(r) == 1, r
    return r[0]


def _events(frames):
    return [f for f in frames if f.get("t") == "evt" and f.get("kind") == "profile"]


def test_bad_schedules_are_refused_with_the_step_and_the_range():
    for steps, words in (
        ([[40, 0.5]], "step 1"),
        ([[40, 0.5, 10], [80, 0.5, 10]], "step 2: 80 MPa out of range"),
        ([[40, 25, 10]], "MPa/s"),
        ([[40, 0.5, -1], [30, 0.5, 10]], "only the last"),
        ([[40, 0.5, 2.5]], "whole number"),
        ([[40, 0.5, float("nan")]], "hold"),
        ([[40, 0.5, 10]] * 25, "1 to 24"),
    ):
        try:
            check(steps, 76.0, 0.001, 20.0)
            raise AssertionError("accepted %r" % (steps,))
        except ProfileError as e:
            assert words in e.msg, (words, e.msg)
    app, board = _app()
    r = _command(app, board, "profile_set", steps=[[40, 0.5, 10], [90, 0.5, 10]])
    assert not r["ok"] and r["err"] == "range" and "step 2" in r["msg"], r
    assert app.instrument.profile.steps == []
    r = _command(app, board, "profile_run")
    assert not r["ok"] and r["err"] == "profile", r


def test_a_profile_ramps_holds_steps_down_and_ends_holding():
    app, board = _app()
    r = _command(app, board, "profile_set", steps=[[30, 5.0, 20], [20, 1.0, 10]])
    assert r["ok"] and r["data"]["steps"] == [[30.0, 5.0, 20], [20.0, 1.0, 10]], r
    assert _command(app, board, "profile_run")["ok"]
    ev = _events(board.last)
    assert ev and ev[0]["step"] == 1 and ev[0]["mpa"] == 30.0, board.last
    r = _command(app, board, "hold", mpa=10.0)  # the profile owns the setpoint
    assert not r["ok"] and r["err"] == "profile", r
    seen = []
    for _ in range(120):  # 120 x 2 s
        run_app(app, 20)
        st = app.instrument.profile
        seen.append(
            (st.running, st.index, app.instrument.ctrl.mode, round(app.instrument.pressure_mpa(app.instrument.net), 1))
        )
    assert any(i == 0 and m == 2 and abs(p - 30) < 0.5 for r, i, m, p in seen), seen
    assert any(i == 1 and m == 2 and abs(p - 20) < 0.5 for r, i, m, p in seen), seen
    assert not app.instrument.profile.running and app.instrument.ctrl.mode == 2 and app.instrument.setpoint_mpa == 20.0
    assert abs(app.instrument.pressure_mpa(app.instrument.net) - 20.0) < 0.3
    # the down-step at 1 MPa/s: from 30 to 20 took >= 10 s (5 passes of 2 s)
    down = [k for k, (r, i, m, p) in enumerate(seen) if i == 1 and 20.5 < p < 29.5]
    assert len(down) >= 4, seen


def test_a_reset_mid_hold_resumes_the_step_with_the_hold_time_done():
    app, board = _app()
    assert _command(app, board, "profile_set", steps=[[30, 5.0, 600], [20, 1.0, -1]])["ok"]
    assert _command(app, board, "profile_run")["ok"]
    run_app(app, 2 * 10 * 200)  # 200 s: ramp, then well into the 600 s hold
    held = app.instrument.profile.held_s
    assert app.instrument.profile.index == 0 and held > 100, held
    run_app(app, 2 * 10 * 61)  # past a periodic save
    saved = app.instrument.profile.held_s
    app = None  # noqa: F841 -- the reset: the old firmware's heap is gone
    gc.collect()
    app2 = App(board)  # a new App on the same flash and plant
    run_app(app2, 40)
    assert app2.instrument.profile.running and app2.instrument.profile.index == 0, app2.instrument.profile.state()
    assert app2.instrument.profile.held_s >= saved - 61, (saved, app2.instrument.profile.held_s)
    assert app2.instrument.ctrl.mode == 2 and abs(app2.instrument.pressure_mpa(app2.instrument.net) - 30) < 0.5
    st = _command(app2, board, "profile")["data"]
    assert st["running"] and st["step"] == 1 and 0 < st["remaining_s"] < 600 - 100, st


def test_hold_time_does_not_count_in_fault_and_stop_keeps_the_setpoint():
    app, board = _app()
    assert _command(app, board, "profile_set", steps=[[30, 5.0, 100], [20, 1.0, 10]])["ok"]
    assert _command(app, board, "profile_run")["ok"]
    run_app(app, 2 * 10 * 30)  # reached and holding
    assert app.instrument.profile.holding
    board.sensor_ok = False
    run_app(app, 2 * 10 * 50)  # 50 s in fault
    h = app.instrument.profile.held_s
    run_app(app, 2 * 10 * 50)
    assert app.instrument.profile.held_s == h and app.instrument.ctrl.mode == 5
    board.sensor_ok = True
    run_app(app, 40)
    assert _command(app, board, "ack")["ok"]
    run_app(app, 2 * 10 * 20)
    assert app.instrument.profile.index == 0 and app.instrument.profile.held_s > h
    r = _command(app, board, "profile_stop")
    assert r["ok"] and r["data"]["running"] is False and r["data"]["setpoint_mpa"] == 30.0, r
    run_app(app, 2 * 10 * 200)
    assert app.instrument.ctrl.mode == 2 and app.instrument.setpoint_mpa == 30.0 and not app.instrument.profile.running
    assert _command(app, board, "hold", mpa=25.0)["ok"]  # the setpoint is the user's again
