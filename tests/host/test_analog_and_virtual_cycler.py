"""The analog output's check (`stackpress analog fit`) and the virtual cycler that reads it:
its DAC model, its pause on the fault line, its file on the fixture's clock."""

import io

import pandas as pd
import pytest

from stackpress.analog import AnalogError, fit, parse_points
from stackpress.virtual import params
from stackpress.virtual.cycler import CHARGE, DISCHARGE, REST
from stackpress.virtual.model import FixtureModel


def _cycler(*sets):
    fx, sc = params.resolve(sets=list(sets))
    return FixtureModel(fx, sc, seed=1).cycler


def test_fit_finds_the_dacs_ends_and_what_is_left():
    zero, fs = 0.004, 3.31
    points = [(c, zero + c * (fs - zero) / 4096 + bow) for c, bow in ((124, 0.0), (2000, 0.0008), (3900, 0.0))]
    r = fit(points, mpa_per_v=25.0)
    assert r["analog_out_zero_v"] == pytest.approx(zero, abs=5e-4)
    assert r["analog_out_full_scale_v"] == pytest.approx(fs, abs=1e-3)
    assert 0.3 < r["residual_max_mv"] < 0.8 and r["residual_max_mpa"] == pytest.approx(
        r["residual_max_mv"] * 0.025, rel=0.01
    )
    assert parse_points(["621:0.5013", "1862:1.5018"]) == [(621, 0.5013), (1862, 1.5018)]
    for bad in (["621:0.5"], ["621-0.5", "1862:1.5"], ["5000:1.0", "10:0.1"], ["621:x", "10:0.1"]):
        with pytest.raises(AnalogError):
            parse_points(bad)


def test_the_dac_model_has_the_fixtures_errors_and_0_v_before_a_write():
    c = _cycler()
    assert c.dac_volts() == 0.0  # the MCP4725's power-on value: no pressure signal
    c.outputs(2048, True)
    d = c.dac
    ideal = 2048 * d["full_scale_v"] / 4096
    assert c.dac_volts() - ideal == pytest.approx(
        d["offset_v"] + ideal * d["gain_error"] + d["inl_lsb"] * d["full_scale_v"] / 4096, abs=1e-9
    )
    lsb = 2 * c.cfg["aux_range_v"] / 2 ** c.cfg["aux_bits"]
    v = c.aux_volts()
    assert abs(v - c.dac_volts()) < 6 * c.cfg["aux_noise_v_rms"] + lsb and round(v / lsb) * lsb == pytest.approx(v)


def test_the_cycler_pauses_on_the_fault_line_and_the_cell_waits():
    c = _cycler("scenario.cycling.rest_before_s=100")
    out = io.StringIO()
    c.record_to(out)
    c.outputs(100, True)
    for _ in range(1200):  # 120 s: the rest, then charging
        c.advance(0.1)
    assert c.state()[0] == CHARGE and c.current() > 0
    program = c.program_s
    c.outputs(100, False)  # the fixture faults
    for _ in range(600):
        c.advance(0.1)
    assert c.paused and c.current() == 0.0 and c.program_s == pytest.approx(program + 0.2, abs=0.11)
    c.outputs(100, True)  # ack
    for _ in range(90):
        c.advance(0.1)
    assert c.paused  # not before resume_after_s
    for _ in range(20):
        c.advance(0.1)
    assert not c.paused and c.current() > 0
    rows = pd.read_csv(io.StringIO(out.getvalue()))
    assert list(rows.columns) == [
        "datetime",
        "time_s",
        "voltage_v",
        "current_a",
        "cycle",
        "step",
        "aux1_v",
        "ext_ok",
        "paused",
    ]
    assert rows["paused"].sum() >= 6 and (rows.loc[rows["paused"] == 1, "current_a"] == 0).all()
    assert set(rows["step"]) == {REST, CHARGE} and DISCHARGE not in set(rows["step"])
    when = pd.to_datetime(rows["datetime"])
    assert (when.diff().dropna() > pd.Timedelta(0)).all()  # its own clock, from clock_start_utc
