"""`stackpress tempco`: the load cells' zero drift per kelvin measured as a lab would, on the
virtual fixture's climate step (unloaded, the room 10 degC warmer), against the model's."""

import json
import time

from conftest import ROOT
from simfixture import RunningSim, pauses, stackpress, start_logger, stop_logger

STEP_AT_S = 300


def _device_span_ms(log):
    if not log.exists():
        return 0
    lines = [ln.split(",") for ln in log.read_text().splitlines() if not ln.startswith("#")]
    if len(lines) < 3:
        return 0
    i = lines[0].index("device_ms")
    ms = [int(r[i]) for r in lines[1:] if len(r) == len(lines[0]) and r[i]]
    return ms[-1] - ms[0] if ms else 0


def test_zero_drift_from_a_logged_temperature_step_matches_the_load_cells(tmp_path):
    sim = RunningSim(
        "--speed",
        "max",
        "--set",
        "scenario.cycling.rest_before_s=1000000000",
        "--set",
        'scenario.events=[{"at_s": %d, "ambient_temperature_c": 35.0}]' % STEP_AT_S,
        *pauses(),  # the log begins before the step
    )
    log = tmp_path / "soak.csv"
    try:
        logger = start_logger(sim.port, log)
        try:
            end = time.monotonic() + 600  # a bound for a broken run; the wait is on device time
            while _device_span_ms(log) < 4 * 3600 * 1000 and logger.poll() is None and time.monotonic() < end:
                time.sleep(0.2)
        finally:
            stop_logger(logger)
        r = stackpress(sim.port, "tempco", str(log), "--apply", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        got = json.loads(r.stdout)
        cfg = json.loads(stackpress(sim.port, "config", "--json").stdout)
    finally:
        sim.stop()
    fx = json.loads((ROOT / "hardware" / "fixture.json").read_text())
    lc = fx["load_cell"]
    n = fx["load_cells"]["count"]["value"]
    true_n_per_k = lc["zero_tc_fs_per_k"]["value"] * lc["capacity_n"]["value"] * n
    print(
        "measured %.4f +- %.4f N/K over %.2f K; the model's %.4f"
        % (got["drift_n_per_k"], got["stderr_n_per_k"], got["delta_t_k"], true_n_per_k)
    )
    assert got["delta_t_k"] > 5 and abs(got["drift_n_per_k"] - true_n_per_k) <= 0.05 * true_n_per_k, got
    assert got["in_use_n_per_k"] == 0.0 and got["applied"] is True
    set_to = cfg.get("config", cfg)["load_cell_zero_n_per_k"]
    assert abs((set_to["value"] if isinstance(set_to, dict) else set_to) - got["new_n_per_k"]) < 1e-3, set_to


def test_a_log_of_a_loaded_fixture_is_refused(tmp_path):
    log = tmp_path / "loaded.csv"
    log.write_text(
        "# stackpress log: x\n"
        "boot,seq,device_ms,state,pressure_mpa,force_n,temperature_c\n"
        + "".join("1,%d,%d,idle,10.0,785.4,%.2f\n" % (i, i * 1000, 25 + i * 0.1) for i in range(60))
    )
    r = stackpress("/dev/null", "tempco", str(log))
    assert r.returncode == 2 and "unloaded" in r.stderr, r.stderr
