"""`stackpress tune` on two different fixtures, and dilatometry, on the virtual fixture."""

import json
import time

import pytest
from simfixture import RunningSim, stackpress, start_logger, stop_logger


@pytest.mark.parametrize(
    "sets, k_lo, k_hi",
    [
        ((), 14.0, 18.5),  # disc springs, stuck while holding: ~16.5 N/um
        (("--set", "fixture.springs.present=false"), 63.0, 72.0),  # rigid path alone: 71 in series with 1500
    ],
)
def test_tune_measures_the_fixture_and_then_holds(sets, k_lo, k_hi):
    sim = RunningSim("--speed", "max", "--seed", "4", *sets)
    try:
        r = stackpress(sim.port, "tune", "--mpa", "40", "--json")
        assert r.returncode == 0, r.stderr
        t = json.loads(r.stdout)
        assert k_lo < t["stiffness_n_per_um"] < k_hi, t
        assert abs(t["probe_um"] / 0.8 - round(t["probe_um"] / 0.8)) < 1e-9  # whole electrical cycles
        st = json.loads(stackpress(sim.port, "status", "--json").stdout)
        assert st["stiffness_n_per_um"] == t["stiffness_n_per_um"]
        cfg = json.loads(stackpress(sim.port, "config", "--json").stdout)
        assert cfg["loop_gain"]["value"] == 0.25 and cfg["ramp_rate_mpa_s"]["value"] == 1.0  # restored
        assert st["state"] in ("ramp", "hold") and abs(st["pressure_mpa"] - 40) < 0.4, st
    finally:
        sim.stop()


def _wait_for_device_span(log, span_ms, proc, timeout_s=600):
    """True once the CSV log's rows with a thickness span `span_ms` of device time (polled:
    the condition is in the fixture's time, whatever the wall clock does)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        if log.exists():
            lines = [ln.split(",") for ln in log.read_text().splitlines() if not ln.startswith("#")]
            if len(lines) > 1:
                head = lines[0]
                ms = [
                    int(r[head.index("device_ms")])
                    for r in lines[1:]
                    if len(r) == len(head) and r[head.index("thickness_um")]
                ]
                if ms and ms[-1] - ms[0] >= span_ms:
                    return True
        time.sleep(0.2)
    return False


def test_thickness_follows_the_model_while_the_cell_charges(tmp_path):
    truth = tmp_path / "truth.csv"
    sim = RunningSim(
        "--speed",
        "max",
        "--seed",
        "5",
        "--truth",
        str(truth),
        "--truth-every",
        "1",
        "--set",
        "scenario.cycling.rest_before_s=300",
    )
    try:
        assert stackpress(sim.port, "hold", "40", "--wait").returncode == 0
        log = tmp_path / "run.csv"
        # Logged until the fixture's own clock has run 30 min with a thickness (the cell swells
        # meanwhile): device time, so a busy machine only makes it take longer.
        logger = start_logger(sim.port, log)
        try:
            assert _wait_for_device_span(log, 1_800_000, logger), "the log never spanned 30 device minutes"
        finally:
            err = stop_logger(logger)
        assert logger.returncode == 0, err
    finally:
        sim.stop()
    rows = [ln.split(",") for ln in log.read_text().splitlines() if not ln.startswith("#")]
    head = rows[0]
    rows = [r for r in rows[1:] if r[head.index("state")] == "hold"]
    col = {k: head.index(k) for k in ("device_ms", "thickness_um", "p_min_mpa", "p_max_mpa", "pressure_mpa")}
    rows = [r for r in rows if r[col["thickness_um"]]]
    assert len(rows) > 100, len(rows)
    for r in rows:
        assert float(r[col["p_min_mpa"]]) <= float(r[col["pressure_mpa"]]) <= float(r[col["p_max_mpa"]])
    true = {}
    with truth.open() as f:
        th = f.readline().strip().split(",")
        for line in f:
            v = line.split(",")
            true[round(float(v[0]), 1)] = float(v[th.index("cell_thickness_um")])
    pairs = [(float(r[col["thickness_um"]]), true[round(int(r[col["device_ms"]]) / 1000, 1)]) for r in rows]
    (f0, m0), (f1, m1) = pairs[0], pairs[-1]
    assert abs(m1 - m0) > 0.5 and abs(f1 - f0) > 0.5, pairs[-1]  # the cell swelled meanwhile, and it was seen
    assert max(abs((f - f0) - (m - m0)) for f, m in pairs) < 0.3
