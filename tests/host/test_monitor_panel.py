"""The monitor's live panel: it fits an 80x24 terminal with its prompt, its charts keep the
hold's scale through a ramp, and its time axis is the fixture's clock."""

from rich.console import Console

from stackpress.monitor import Traces, _panel

INFO = {"port": "/dev/ttyACM0", "board": "pico", "firmware_version": "0.8.0"}


def _rec(k, state, p, sp=40.0, boot=1):
    return {
        "t": "tel",
        "boot": boot,
        "seq": k,
        "device_ms": k * 10_000,
        "state": state,
        "pressure_mpa": p,
        "setpoint_mpa": sp,
        "force_n": p * 78.54,
        "position_um": 1000.0 + p,
        "thickness_um": 0.001 * k,
        "temperature_c": 25.0,
        "force_ch0_n": 1100.0,
        "force_ch1_n": 1000.0,
        "force_ch2_n": 1041.6,
        "uniformity_pct": 5.04,
        "centre_x_mm": 0.6,
        "centre_y_mm": -0.3,
        "alarms": [],
    }


def _render(traces, last, prompt, size=(80, 24)):
    con = Console(width=size[0], height=size[1], record=True, file=open("/dev/null", "w"))
    con.print(
        _panel(INFO, last, traces, ["#12 mode ramp", "#13 mode hold", "hold refused: too high"], prompt, None, size)
    )
    return con.export_text().rstrip("\n").split("\n")


def test_the_panel_fits_80x24_with_its_prompt_and_every_load_cell():
    tr = Traces()
    recs = [_rec(k, "ramp", 0.5 * k) for k in range(80)] + [
        _rec(k, "hold", 40.0 + 0.001 * (k % 3)) for k in range(80, 240)
    ]
    for r in recs:
        tr.add(r)
    prompt = "new setpoint, MPa (Enter; Esc cancels): 35"
    lines = _render(tr, recs[-1], prompt)
    assert len(lines) <= 24 and max(len(x) for x in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert prompt in text and "1: 1000.0 N" in text and "5.04 %" in text and "hold refused: too high" in text


def test_the_charts_keep_the_holds_scale_and_the_fixtures_time():
    tr = Traces()
    for k in range(60):  # a ramp from 0, then a hold at 40 MPa within 2 kPa
        tr.add(_rec(k, "ramp" if k < 20 else "hold", 2.0 * k if k < 20 else 40.0 + (0.002 if k % 2 else -0.002)))
    lines = _render(tr, _rec(59, "hold", 40.0), "keys")
    chart = [x for x in lines if x.count("│") == 3][:4]  # the pressure chart's rows, inside the borders
    scale = [float(x.split("│")[1].split()[-1]) for x in chart]
    assert 39.98 < min(scale) and max(scale) < 40.02, chart  # the hold's band, not 0..40
    assert "▼" in "".join(chart)  # the ramp's points below it, at the edge
    axis = [x for x in lines if "└" in x][0]
    # 52 columns at 80 wide, points 10 s apart on the fixture's clock: the left end 510 s ago
    assert "-8 min" in axis and "-4 min" in axis and axis.rstrip(" │").endswith("now"), axis


def test_a_reboot_continues_the_time_axis():
    tr = Traces()
    for k in range(1, 31):
        tr.add(_rec(k, "hold", 40.0))
    for k in range(1, 31):  # device_ms starts again at the new boot
        tr.add(_rec(k, "hold", 40.0, boot=2))
    ts = list(tr.t_s)
    assert all(b > a for a, b in zip(ts, ts[1:])), ts
