"""`make soak`: faults, resets, power cuts, a month of running and a hostile serial line.

Each scenario runs the unmodified firmware on the MicroPython unix port (-X
heapsize=192k) in `stackpress sim --speed max`, with faults injected by scenario events
(hardware/README.md lists them) and a host driving it through the serial device as
`stackpress` does. Pass criteria are printed with each scenario. The true pressure
comes from the sim's truth file (every sample), not from what the firmware reports.
`pico_hour` runs the firmware on an emulated Pico instead (emulated_pico.py), where an
image is given, and is skipped with one line saying what is missing where not.
Prints a table and, as its last line, one JSON object with the campaign's figures.
"""

import argparse
import concurrent.futures
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import cycler_link
import emulated_pico
import load_cells
import misuse
from harness import (
    _TIMES,
    BIN,
    OUT,
    ROOT,
    SETPOINT_MPA,
    DeviceError,
    Host,
    LinkError,
    Sim,
    figures_time,
    log,
    scenario,
    settle,
    truth_rows,
)

ALARM_OF = {
    "adc_disconnected": "sensor_timeout",
    "adc_stuck": "stuck_reading",
    "adc_saturated": "adc_saturated",
    "noise_burst": "implausible_jump",
}


def run_sensor_faults(seed):
    # At --speed max a host's wall-clock latency is tens of virtual seconds: generous windows.
    faults = [
        ("adc_disconnected", 300, 20),
        ("adc_stuck", 900, 20),
        ("adc_saturated", 1500, 10),
        ("noise_burst", 2100, 3),
    ]
    ev = [{"at_s": t, "fault": f, "duration_s": d, "noise_n": 300.0} for f, t, d in faults]
    sim = Sim("sensor_faults", scenario("sensor_faults", ev), seed)
    host = Host(sim)
    try:
        settle(sim, host)
        checks = []
        for f, t, d in faults:
            sim.wait_t(t + d + 10, host)
            acked = None
            while sim.t_s() < t + 550:  # ack once the sensor is trusted again, until it holds again
                tel = host.tel()
                if tel and tel[-1]["state"] == "fault":
                    try:
                        host.cmd("ack")
                        acked = acked or sim.t_s()
                    except DeviceError:
                        pass
                elif acked and tel[-1]["state"] == "hold":
                    break
                host.pump(0.01)
            fault_recs = [
                r
                for r in host.tel()
                if r["state"] == "fault" and ALARM_OF[f] in r["alarms"] and t - 5 <= r["device_ms"] / 1000 <= t + d + 10
            ]
            held = len({r["position_um"] for r in fault_recs[1:]}) <= 1
            back = [
                r
                for r in host.tel()
                if t + d < r["device_ms"] / 1000 <= t + 580
                and r["state"] == "hold"
                and abs(r["pressure_mpa"] - SETPOINT_MPA) < 0.4
            ]
            checks.append((f, bool(fault_recs), held, bool(back)))
        ok = all(a and b and c for _, a, b, c in checks)
        detail = "; ".join(
            "%s->%s %s%s%s"
            % (
                f,
                ALARM_OF[f],
                "alarm" if a else "NO ALARM",
                ", position held" if b else " MOVED",
                ", resumed after ack" if c else " NOT RESUMED",
            )
            for f, a, b, c in checks
        )
        return ok, detail, {}
    finally:
        host.close()
        figures_time(sim)


def run_over_pressure(seed):
    limit = 45.0
    ev = [{"at_s": 400, "fault": "cell_expansion", "expansion_um": 300.0, "duration_s": 2.0}]
    sim = Sim("over_pressure", scenario("over_pressure", ev), seed)
    host = Host(sim)
    try:
        host.cmd("set", key="max_pressure_mpa", value=limit)
        try:
            host.cmd("hold", mpa=60.0)
            refused = False
        except DeviceError as e:
            refused = e.code == "range" and "42.75" in e.msg
        settle(sim, host)
        sim.wait_t(500, host)
        alarm = any("over_pressure" in r["alarms"] for r in host.tel())
    finally:
        host.close()
        figures_time(sim)
    rows = [(t, p) for t, p in truth_rows(sim) if t >= 400]
    peak = max(p for _, p in rows)
    over = [t for t, p in rows if p > limit]
    back_s = (max(over) - min(over)) if over else 0.0
    pct = max(0.0, (peak - limit) / limit * 100)
    ok = alarm and refused and back_s < 1.0
    return (
        ok,
        (
            "mistaken setpoint 60 MPa refused: %s; cell +300 um in 2 s: true peak %.3f MPa (limit %.0f), "
            "above it for %.2f s, alarm %s" % (refused, peak, limit, back_s, alarm)
        ),
        {"overpressure_max_pct": pct},
    )


def run_motor_faults(seed):
    ev = [{"at_s": 400, "fault": "motor_blocked", "duration_s": 400}]
    sim = Sim("motor_faults", scenario("motor_faults", ev), seed)
    host = Host(sim)
    try:
        host.cmd("set", key="travel_limit_um", value=50.0)
        host.cmd("hold", mpa=SETPOINT_MPA)  # the plunger is ~200 um from the cell: the limit comes first
        sim.wait_t(60, host)
        limit = any("travel_limit" in r["alarms"] and r["state"] == "fault" for r in host.tel())
        host.cmd("set", key="travel_limit_um", value=5000.0)
        host.cmd("ack")  # resumes the ramp, now within the travel allowed
        settle(sim, host, 20.0)
        sim.wait_t(410, host)
        host.cmd("hold", mpa=SETPOINT_MPA)  # needs steps: they go nowhere
        sim.wait_t(sim.t_s() + 60, host)
        stall = [r for r in host.tel() if "motor_stall" in r["alarms"]]
        held = len({r["position_um"] for r in stall[1:]}) <= 1
    finally:
        host.close()
        figures_time(sim)
    ok = bool(stall) and held and limit
    return ok, "travel limit -> %s; blocked screw -> motor_stall %s, position held %s" % (limit, bool(stall), held), {}


def run_switches(seed):
    # The e-stop pressed while holding and the cell swelling meanwhile; the end stop
    # opening while holding. Generous windows: at --speed max a host's reply is tens of s.
    ev = [
        {"at_s": 400, "fault": "estop", "duration_s": 600},
        {"at_s": 420, "fault": "cell_expansion", "duration_s": 20, "expansion_um": 20.0},
        {"at_s": 2000, "fault": "end_stop", "duration_s": 300},
    ]
    sim = Sim("switches", scenario("switches", ev), seed)
    host = Host(sim)
    try:
        settle(sim, host)
        sim.wait_t(450, host)
        try:
            host.cmd("ack")
            refused = False
        except DeviceError as e:
            refused = e.code == "estop"
        driver_off = sim.status().get("driver_enabled") is False
        sim.wait_t(1010, host)
        host.cmd("ack")
        resumed = _wait_state(sim, host, "hold", 1900)
        sim.wait_t(2100, host)
        end_fault = any("end_stop" in r["alarms"] and r["state"] == "fault" for r in host.tel())
    finally:
        host.close()
        figures_time(sim)
    with open(sim.truth) as f:
        rows = [(float(r["t_s"]), float(r["drive_um"]), float(r["true_pressure_mpa"])) for r in csv.DictReader(f)]
    still = {round(d, 4) for t, d, _ in rows if 401 <= t <= 1000}
    swell = max(p for t, d, p in rows if 401 <= t <= 1000)
    ok = refused and driver_off and len(still) == 1 and resumed and end_fault
    return (
        ok,
        (
            "e-stop at 400 s: driver off %s, drive still %s (cell swelled to %.2f MPa meanwhile), ack refused "
            "while pressed %s, hold resumed after release and ack %s; end stop at 2000 s -> fault %s"
            % (driver_off, len(still) == 1, swell, refused, resumed, end_fault)
        ),
        {},
    )


def _wait_state(sim, host, state, until_s):
    while sim.t_s() < until_s:
        host.pump(0.05)
        t = host.tel()
        if t and t[-1]["state"] == state:
            return True
    return False


def run_watchdog(seed):
    ev = [{"at_s": 400, "board": "hang"}]
    sim = Sim("watchdog", scenario("watchdog", ev), seed)
    host = Host(sim)
    try:
        settle(sim, host)
        sim.wait_t(600, host)
        boots = [e for e in host.events("boot") if e.get("boot", 0) > 1]
        st = host.cmd("status")
    finally:
        host.close()
        res = figures_time(sim)
    rows = [p for t, p in truth_rows(sim) if 400 <= t <= 500]
    exc = (max(rows) / SETPOINT_MPA - 1) * 100  # the worst, above (+) or below (-) the setpoint
    ok = (
        res["resets"]["watchdog"] == 1
        and boots
        and boots[0]["reset_cause"] == "watchdog"
        and st["state"] == "hold"
        and exc <= 1.0
    )
    return (
        ok,
        (
            "hung loop at 400 s: watchdog resets %d, boot record cause %s, state after %s, worst true pressure "
            "%+.3f %% of setpoint"
            % (res["resets"]["watchdog"], boots[0]["reset_cause"] if boots else None, st["state"], exc)
        ),
        {"resume_max_excursion_pct": exc},
    )


def run_power_cuts(seed, n_cuts):
    rng = random.Random(seed)
    ev, t = [], 300.0
    for i in range(n_cuts):
        t += rng.uniform(25, 45)
        if i % 3 == 2:
            ev.append(
                {
                    "at_s": round(t, 1),
                    "board": "flash_write_cut",
                    "after_writes": rng.randint(1, 10),
                    "off_s": round(rng.uniform(0.2, 2), 2),
                }
            )
        else:
            ev.append({"at_s": round(t, 1), "board": "power_cut", "off_s": round(rng.uniform(0.2, 5), 2)})
    end_s = t + 120
    sim = Sim("power_cuts", scenario("power_cuts", ev, cycles=1), seed)
    host = Host(sim)
    gains = (0.25, 0.26)
    try:
        settle(sim, host)
        k = 0
        while sim.t_s() < end_s:
            try:
                host.link.command("set", key="loop_gain", value=gains[k % 2])  # a config write
                k += 1
            except (LinkError, DeviceError):
                host.pump(0.05)
            host.pump(0.02)
        st = host.cmd("status")
        cfg = host.cmd("config")["config"]
    finally:
        host.close()
        res = figures_time(sim)
    lines = (OUT / "power_cuts_sim.log").read_text().splitlines()
    cuts = [float(line.split("t=")[1].split()[0]) for line in lines if "power cut at t=" in line]
    cuts_w = [float(line.split("t=")[1].split()[0]) for line in lines if "during a flash write at t=" in line]
    truth = truth_rows(sim)
    exc = -100.0
    i = 0
    for tc in sorted(cuts + cuts_w):  # the worst true pressure within 60 s of each cut
        while i < len(truth) and truth[i][0] < tc:
            i += 1
        j = i
        while j < len(truth) and truth[j][0] <= tc + 60:
            exc = max(exc, (truth[j][1] / SETPOINT_MPA - 1) * 100)
            j += 1
    boots = host.events("boot")
    bad_notes = [b["notes"] for b in boots if b.get("notes")]
    resumed = [b for b in boots if b.get("boot", 0) > 1]
    ok = (
        len(cuts) == n_cuts
        and not bad_notes
        and cfg["loop_gain"]["value"] in gains
        and st["calibration"].get("reference")
        and st["state"] == "hold"
        and exc <= 1.0
        and all(b["resume"] in ("hold", "ramp") for b in resumed)
    )
    return (
        ok,
        (
            "%d cuts, %d more during a flash write, %d config writes; boot notes %s; config %s; "
            "calibration kept %s; worst true pressure after a cut %+.3f %% of setpoint"
            % (
                len(cuts),
                res["resets"]["flash_write_cut"],
                k,
                bad_notes[:2] or "none",
                "intact" if cfg["loop_gain"]["value"] in gains else "CORRUPT",
                bool(st["calibration"].get("reference")),
                exc,
            )
        ),
        {"power_cuts": len(cuts) + len(cuts_w), "resume_max_excursion_pct": exc},
    )


def run_long(seed, days):
    ev = [{"at_s": 86400 * d + 3600 * 14, "ambient_temperature_c": 25 + 3 * (d % 3)} for d in range(int(days))]
    end_s = days * 86400
    cycles = int((end_s - 1800) / 7200)
    sim = Sim("long_run", scenario("long_run", ev, cycles=cycles, rest_s=1800), seed, truth_every=0)
    host = Host(sim)
    try:
        host.cmd("set", key="telemetry_period_ms", value=60000)
        settle(sim, host)
        sim.wait_t(end_s, host)
        st = host.cmd("status")
    finally:
        host.close()
        res = figures_time(sim)
    tel = [r for r in host.tel() if r["device_ms"] > 3600_000]
    ms = [r["device_ms"] for r in host.tel()]
    monotonic = all(b > a for a, b in zip(ms, ms[1:]))
    worst = max(max(abs(r["p_max_mpa"] - SETPOINT_MPA), abs(r["p_min_mpa"] - SETPOINT_MPA)) for r in tel)
    alarms = sorted({a for r in tel for a in r["alarms"]})
    states = sorted({r["state"] for r in tel})
    ok = (
        monotonic
        and states == ["hold"]
        and not alarms
        and worst < 0.4
        and res["boots"] == 1
        and st["uptime_s"] >= end_s - 86400 * 0.01
    )
    return (
        ok,
        (
            "%.1f days, ticks_ms wrapped %d times, uptime %.2f d, device time monotonic %s, states %s, alarms "
            "%s, worst sample %.3f MPa off, boots %d"
            % (
                res["t_s"] / 86400,
                int(res["t_s"] * 1000) >> 30,
                st["uptime_s"] / 86400,
                monotonic,
                states,
                alarms or "none",
                worst,
                res["boots"],
            )
        ),
        {},
    )


def run_link(seed, away_s=3600):
    ev = [{"at_s": 900, "board": "unplug", "for_s": 30.0}]
    sim = Sim("link", scenario("link", ev, cycles=2), seed, truth_every=0)
    out = OUT / "link_log.csv"
    if out.exists():
        out.unlink()
    host = Host(sim)
    # An hour away fits the history (368 records with three load cells) at 12 s a record,
    # with the time before it (the unplug at 900 s, if the logger has not caught up on it yet).
    host.cmd("set", key="telemetry_period_ms", value=12000)
    settle(sim, host)
    host.close()

    def logger():
        return subprocess.Popen(
            [str(BIN / "stackpress"), "--port", sim.link, "log", "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=open(OUT / "link_logger.log", "a"),
        )

    lg = logger()
    try:
        sim.wait_t(1500)
        lg.send_signal(signal.SIGSTOP)  # the host away: the port open, nothing read
        sim.wait_t(1500 + away_s)
        lg.send_signal(signal.SIGCONT)
        sim.wait_t(1500 + away_s + 600)
        lg.kill()  # SIGKILL, mid-write or not
        lg.wait()
        sim.wait_t(1500 + away_s + 900)
        lg = logger()  # the same file: resumed
        sim.wait_t(1500 + away_s + 1800)
    finally:
        lg.send_signal(signal.SIGCONT)
        lg.send_signal(signal.SIGTERM)  # (SIGINT is ignored by a job started in the background)
        lg.wait(timeout=60)
        res = figures_time(sim)
    keys = []
    for line in out.read_text().splitlines():
        if line and not line.startswith("#") and not line.startswith("boot,"):
            b, s = line.split(",")[:2]
            keys.append((int(b), int(s)))
    distinct = set(keys)
    # every record of the boot from the first one logged (1 here: the logger starts early)
    expected = (max(s for _, s in distinct) - min(s for _, s in distinct) + 1) if distinct else 0
    lost = expected - len(distinct)
    dup = len(keys) - len(distinct)
    ordered = keys == sorted(keys)
    ok = lost == 0 and dup == 0 and ordered and res["unplugs"] == 1 and res["boots"] == 1
    return (
        ok,
        (
            "unplug 30 s, host away %.0f s (port held, unread), logger SIGKILLed and resumed: %d records "
            "expected, %d logged, %d lost, %d duplicated, in order %s"
            % (away_s, expected, len(distinct), lost, dup, ordered)
        ),
        {
            "records_expected": expected,
            "records_logged": len(distinct),
            "records_lost": lost,
            "records_duplicated": dup,
        },
    )


def run_fuzz(examples):
    count = OUT / "fuzz_counts.txt"
    if count.exists():
        count.unlink()
    env = dict(os.environ, FUZZ_EXAMPLES=str(examples), FUZZ_COUNT_FILE=str(count))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / "firmware" / "test_fuzz_protocol.py"),
        ],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
    )
    n = crashes = 0
    first_crash = None
    if count.exists():
        for line in count.read_text().splitlines():
            a, b, what = line.split(" ", 2)
            n += int(a)
            crashes += int(b)
            first_crash = first_crash or (json.loads(what) or [None])[0]
    ok = p.returncode == 0 and n >= examples * 50 and crashes == 0
    (OUT / "fuzz_pytest.txt").write_text(p.stdout + p.stderr)
    return (
        ok,
        "%d hostile inputs (hypothesis), %d crashes%s, pytest %s"
        % (
            n,
            crashes,
            "" if not first_crash else " (first: %s)" % first_crash,
            "passed" if p.returncode == 0 else "FAILED (soak/out/fuzz_pytest.txt)",
        ),
        {"fuzz_inputs": n, "crashes": crashes},
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30.0, help="length of the long run, simulated days")
    ap.add_argument("--cuts", type=int, default=110, help="power cuts in the power-cut scenario")
    ap.add_argument("--fuzz", type=int, default=200, help="fuzz batches of 50 inputs")
    ap.add_argument("--away-s", type=float, default=3600.0, help="how long the host is away, simulated s")
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="scenarios at once (each sim spins two processes in lockstep: on 2 cores, 1 is fastest)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--channel-fault-s", type=float, default=120.0, help="how long each load-cell fault lasts, s")
    ap.add_argument("--pico-s", type=float, default=3600.0, help="how long the emulated Pico holds, its own s")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = {
        "long_run": lambda: run_long(a.seed, a.days),
        "sensor_faults": lambda: run_sensor_faults(a.seed),
        "over_pressure": lambda: run_over_pressure(a.seed),
        "motor_faults": lambda: run_motor_faults(a.seed),
        "switches": lambda: run_switches(a.seed),
        "watchdog": lambda: run_watchdog(a.seed),
        "power_cuts": lambda: run_power_cuts(a.seed, a.cuts),
        "link": lambda: run_link(a.seed, a.away_s),
        "fuzz": lambda: run_fuzz(a.fuzz),
        "load_cells": lambda: load_cells.run_load_cells(a.seed, a.channel_fault_s),
        "cycler_link": lambda: cycler_link.run_cycler_link(a.seed),
        "misuse": lambda: misuse.run_misuse(a.seed),
        "pico_hour": lambda: emulated_pico.run_pico_hour(a.seed, a.pico_s),
    }
    if a.only:
        jobs = {k: v for k, v in jobs.items() if k in a.only.split(",")}
    why = emulated_pico.unavailable()
    if why and "pico_hour" in jobs:
        del jobs["pico_hour"]
        log("[SKIP] pico_hour: emulated Pico: %s" % why)
    t0 = time.monotonic()
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        futs = {ex.submit(fn): name for name, fn in jobs.items()}
        for fut in concurrent.futures.as_completed(futs):
            name = futs[fut]
            try:
                results[name] = fut.result()
            except Exception as e:  # a scenario that breaks is a failed scenario, with its reason
                results[name] = (False, "error: %r" % e, {})
            log("[%s] %s: %s" % ("PASS" if results[name][0] else "FAIL", name, results[name][1]))
    figs = {}
    for _, _, f in results.values():
        for k, v in f.items():
            worst = k.endswith(("_pct", "_mpa", "_mm"))  # a worst case; counts add up
            figs[k] = max(figs.get(k, -100.0), v) if worst else figs.get(k, 0) + v
    sim_s = sum(r["t_s"] for r in _TIMES.values())
    print("%-14s %-5s %s" % ("scenario", "pass", "what was seen"))
    for name in jobs:
        ok, detail, _ = results[name]
        print("%-14s %-5s %s" % (name, "yes" if ok else "NO", detail))
    summary = {
        "scenarios": len(results),
        "passed": sum(1 for r in results.values() if r[0]),
        "power_cuts": figs.get("power_cuts", 0),
        "resume_max_excursion_pct": round(figs.get("resume_max_excursion_pct", 0.0), 4),
        "overpressure_max_pct": round(figs.get("overpressure_max_pct", 0.0), 4),
        "fuzz_inputs": figs.get("fuzz_inputs", 0),
        "crashes": figs.get("crashes", 0),
        "records_expected": figs.get("records_expected", 0),
        "records_logged": figs.get("records_logged", 0),
        "records_lost": figs.get("records_lost", 0),
        "records_duplicated": figs.get("records_duplicated", 0),
        "one_channel_failed_max_err_mpa": round(figs.get("one_channel_failed_max_err_mpa", 0.0), 4),
        "one_channel_failed_true_dev_mpa": round(figs.get("one_channel_failed_true_dev_mpa", 0.0), 4),
        "eccentric_centre_err_mm": round(figs.get("eccentric_centre_err_mm", 0.0), 4),
        "eccentric_uniformity_err_pct": round(figs.get("eccentric_uniformity_err_pct", 0.0), 4),
        "cycler_aux_max_err_mpa": round(figs.get("cycler_aux_max_err_mpa", 0.0), 4),
        "simulated_days": round(sim_s / 86400, 2),
        "longest_run_days": round(max((r["t_s"] for r in _TIMES.values()), default=0) / 86400, 2),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0 if summary["passed"] == summary["scenarios"] else 1


if __name__ == "__main__":
    sys.exit(main())
