"""The soak's cycler scenario: the virtual cycler records the fixture's analog pressure
output on its auxiliary input and its fault line on its external input, in its own file on
its own clock (`stackpress sim --cycler-out`), as a lab wires a BioLogic or an Arbin.

The check a lab does first, then the run:
1. with the fixture idle, `analog_test` holds three test voltages; the cycler's readings
   of them give the DAC's two ends (`stackpress analog fit`), which are set;
2. the fixture holds 40 MPa while the cell charges; a load cell's ADC goes silent for 20 s
   (a sensor fault), the firmware faults, its fault line opens, the cycler pauses; once the
   ADC reads again the host acknowledges, the line closes, the cycler goes on.

Passes when:
- the pressure in the cycler's file (its aux volts through the fixture's scale) matches the
  fixture's own records at the same device time within BUDGET_MPA (the calibrated budget:
  hardware/README.md), while holding;
- the line opened within a second of the fault and the cycler paused (no current) until
  after the ack; the charge ended late by at least the pause.
"""

import csv

from harness import OUT, DeviceError, Host, Sim, figures_time, scenario, settle, wait_device

from stackpress.analog import fit

BUDGET_MPA = 0.05  # calibrated: the DAC's nonlinearity left after a line fit, its step, the input's
TEST_V = (0.5, 1.5, 2.8)
FAULT_AT_S = 1500.0
FAULT_S = 20.0
END_S = 4400.0
REST_S = 300.0


def _rows(path):
    with open(path) as f:
        return [{k: float(v) if k != "datetime" else v for k, v in r.items()} for r in csv.DictReader(f)]


def _wait_events(sim, host, kind, n):
    wait_device(
        "%s: %d '%s' events" % (sim.name, n, kind),
        lambda: len(host.events(kind)) >= n,
        sim.t_s,
        lambda: host.pump(0.05),
        limit_s=sim.t_s() + 600,
    )


def run_cycler_link(seed):
    ev = [{"at_s": FAULT_AT_S, "fault": "adc_disconnected", "duration_s": FAULT_S}]
    cycler_csv = OUT / "cycler_link_cycler.csv"
    sim = Sim(
        "cycler_link",
        scenario("cycler_link", ev, cycles=1, rest_s=REST_S),
        seed,
        extra=("--cycler-out", str(cycler_csv)),
    )
    host = Host(sim)
    try:
        # 1. the check: test voltages while idle, read by the cycler
        codes = []
        for i, v in enumerate(TEST_V):
            codes.append(host.cmd("analog_test", v=v, s=30)["code"])
            _wait_events(sim, host, "analog_test", i + 1)
        rows = _rows(cycler_csv)
        points = []
        for code, v in zip(codes, TEST_V):
            seen = sorted(r["aux1_v"] for r in rows if abs(r["aux1_v"] - v) < 0.05)
            points.append((code, seen[len(seen) // 2]))
        cfg = host.cmd("config")["config"]
        notice_s = cfg["sample_timeout_ms"]["value"] / 1000 + 1.0  # the ADC's silence noticed, a sample, the debounce
        scale = cfg["analog_out_mpa_per_v"]["value"]
        offset = cfg["analog_out_offset_v"]["value"]
        z, fs = cfg["analog_out_zero_v"]["value"], cfg["analog_out_full_scale_v"]["value"]
        uncalibrated_mv = max(abs(1000 * (v - (z + c * (fs - z) / 4096))) for c, v in points)
        f = fit(points, scale)
        for key in ("analog_out_zero_v", "analog_out_full_scale_v"):
            host.cmd("set", key=key, value=f[key])
        # 2. the run: hold, a sensor fault, ack when the sensor reads again
        settle(sim, host)
        faulted = acked = None
        while sim.t_s() < END_S:
            host.pump(0.02)
            tel = host.tel()
            if tel and tel[-1]["state"] == "fault":
                faulted = faulted or tel[-1]["device_ms"] / 1000
                if tel[-1]["device_ms"] / 1000 > FAULT_AT_S + FAULT_S + 5:
                    try:
                        host.cmd("ack")
                        acked = acked or tel[-1]["device_ms"] / 1000
                    except DeviceError:
                        pass
    finally:
        host.close()
        figures_time(sim)

    rows = _rows(cycler_csv)
    tel = [r for r in host.tel() if r["state"] == "hold" and not r["alarms"]]
    # the pressure the cycler recorded, against the fixture's record at the same device time
    by_s = {round(r["device_ms"] / 1000): r["pressure_mpa"] for r in tel}
    errs = []
    for r in rows:
        p = by_s.get(round(r["time_s"]))
        after_fault = FAULT_AT_S - 5 <= r["time_s"] <= (acked or END_S) + 60  # the hold coming back
        if p is not None and r["ext_ok"] == 1 and not after_fault and abs(p - 40.0) < 0.05:
            errs.append((r["aux1_v"] - offset) * scale - p)
    err_max = max(abs(e) for e in errs) if errs else float("inf")
    opened = [r["time_s"] for r in rows if r["ext_ok"] == 0 and r["time_s"] > FAULT_AT_S - 1]
    paused = [r for r in rows if r["paused"] == 1 and r["time_s"] > FAULT_AT_S - 1]
    resumed = [r["time_s"] for r in rows if r["paused"] == 0 and paused and r["time_s"] > paused[-1]["time_s"]]
    charge_end = next((r["time_s"] for r in rows if r["step"] == 3), None)
    pause_s = (resumed[0] - paused[0]["time_s"]) if paused and resumed else 0.0
    checks = {
        "pressure in the cycler's file within %.2f MPa (%d rows, max %.4f)" % (BUDGET_MPA, len(errs), err_max): len(
            errs
        )
        > 50
        and err_max <= BUDGET_MPA,
        "line opened within %.1f s of the fault" % notice_s: bool(opened) and opened[0] - FAULT_AT_S <= notice_s,
        "cycling paused, no current": bool(paused) and all(r["current_a"] == 0 for r in paused),
        "resumed after the ack": bool(acked) and bool(resumed) and resumed[0] > acked,
        "the charge ended late by the pause": charge_end is not None and charge_end >= REST_S + 3600 + pause_s - 1,
    }
    ok = all(checks.values())
    detail = "; ".join(("" if v else "NOT: ") + k for k, v in checks.items())
    detail += "; calibration: %.2f mV off before the fit, %.2f mV after (%d points)" % (
        uncalibrated_mv,
        f["residual_max_mv"],
        f["points"],
    )
    figures = {"cycler_aux_max_err_mpa": err_max if errs else -1.0, "cycler_pause_s": pause_s}
    return ok, detail, figures
