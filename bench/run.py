"""`make bench`: stackpress against passive clamps, in the virtual fixture.

The standard scenario (hardware/scenarios/standard.json: Ø10 mm Li-metal cell,
2 mAh/cm² at 1C, 5 cycles, one 10 °C ambient step) at 25, 40 and 60 MPa, three ways:
  active  stackpress holds the pressure (the fixture tuned first with `tune`);
  gap     constant gap: the rigid path only (no springs), clamped to the setpoint, then
          the motor never moves;
  spring  spring jig: clamped through the disc springs, then the motor never moves;
and a setpoint step 25 -> 60 -> 25 MPa; and at 40 MPa, active, one load cell of the three
lost (its wire cut) mid-run, the fixture holding on the other two. Each run is the unmodified firmware on the
MicroPython unix port (-X heapsize=192k) in `stackpress sim --speed max`, driven and
logged through the serial device by the same code as `stackpress tune` and `log`. Last,
`stackpress report` on a month of 1 s records against pandas.read_csv (bench/month_report.py).
Errors are of the pressure the load cell reports (telemetry, with the min and max of
every sample between records) and of the model's true pressure (the sim's truth file,
every sample), over the cycling window. Prints a table, writes bench/out/bench.png and
the logs, and prints one JSON object as its last line.
"""

import argparse
import concurrent.futures
import csv
import gzip
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "host"))


import mpy_probe  # noqa: E402  (bench/, beside this script)

from stackpress.link import Link  # noqa: E402
from stackpress.logfile import CsvLog  # noqa: E402
from stackpress.logger import metadata  # noqa: E402
from stackpress.tune import Tuner  # noqa: E402
from stackpress.virtual.params import resolve  # noqa: E402

SETPOINTS_MPA = (25.0, 40.0, 60.0)
KINDS = ("active", "gap", "spring")
LOST_CHANNEL = 1  # the load cell lost mid-run in the `lost` run (40 MPa, active)
LOST_AT_S = 9000  # mid-way through the second cycle
REST_S = 1500  # the cell rests while the fixture is tuned and clamped
TAIL_S = 300  # recorded after the last cycle
STEP_HOLD_S = 240  # each level of the step test
SETTLE_BAND_MPA = 0.02


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- one virtual fixture ---------------------------------------------------------
class Fixture:
    def __init__(self, outdir, name, seed, sets):
        self.truth_path = outdir / ("%s_truth.csv" % name)
        args = [
            str(BIN / "stackpress"),
            "sim",
            "--speed",
            "max",
            "--seed",
            str(seed),
            "--truth",
            str(self.truth_path),
            "--truth-every",
            "1",
        ]
        for s in sets:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("port: "):
            raise RuntimeError("sim did not start: " + first + self.proc.stderr.read())
        self.port = first.split(" ", 1)[1].strip()
        self.t0 = time.monotonic()

    def stop(self):
        """Stop the sim; return (virtual_s, wall_s, dropped_bytes) from its last line."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        for line in err.splitlines():
            if "stopped:" in line:
                # sim: stopped: N samples, V s virtual in W s wall (xS), B boots, D bytes dropped
                words = line.replace(",", "").split()
                virt = float(words[words.index("virtual") - 2])
                wall = float(words[words.index("wall") - 2])
                dropped = int(words[words.index("dropped") - 2])
                return virt, wall, dropped
        raise RuntimeError("sim gave no summary: " + err[-500:])


class Recorder:
    """Write every record to the run's CSV log, in sequence order, and keep the telemetry
    for analysis. Records come two ways: from `link.records()` and, while the bench waits
    for a command's reply, through `on_record`; the second can overtake the rest of a batch
    the first has read, so records are put back in order here (no resets in a bench run:
    one boot). `close()` writes what is still held, each hole noted in the log."""

    def __init__(self, link, path, extra_meta):
        st = link.command("status")
        meta = metadata(link, st)
        meta.update(extra_meta)
        self.log = CsvLog(str(path), meta)
        self.tel = []
        self.events = []
        self.heap = [st["heap_alloc_bytes"]]
        self._next = None  # the sequence number due next
        self._held = {}
        link.on_record = self.add

    def add(self, rec):
        seq = rec.get("seq")
        if self._next is None:
            self._next = seq
        if seq < self._next or seq in self._held:
            return  # had it
        self._held[seq] = rec
        while self._next in self._held:
            self._write(self._held.pop(self._next))
            self._next += 1
        if len(self._held) > 1000:  # a hole that no record will fill: write on
            self.close(keep_open=True)

    def _write(self, rec):
        self.log.write(rec)
        (self.tel if rec.get("t") == "tel" else self.events).append(rec)

    def close(self, keep_open=False):
        for seq in sorted(self._held):
            self._write(self._held.pop(seq))
            self._next = seq + 1
        if not keep_open:
            self.log.close()


def wait_settled(link, mpa, records=20, timeout_s=120):
    """Wait for `records` telemetry records in a row holding (device time, not wall time)."""
    n = 0
    for r in link.records(timeout_s):
        if r.get("t") == "tel":
            n = n + 1 if r["state"] == "hold" else 0
            if n >= records:
                return r
    raise RuntimeError("not holding %.3f MPa after %.0f s" % (mpa, timeout_s))


def follow(link, rec, until_ms, label, heap_every_ms=3600000):
    """Record until device time reaches until_ms; poll the heap footprint now and then."""
    next_heap = 0
    shown = time.monotonic()
    for r in link.records(None):
        rec.add(r)
        if r.get("t") != "tel":
            continue
        now = r["device_ms"]
        if now >= next_heap:
            next_heap = now + heap_every_ms
            rec.heap.append(link.command("status")["heap_alloc_bytes"])
        if time.monotonic() - shown > 15:
            shown = time.monotonic()
            log("  %-14s %5.1f of %.1f h virtual" % (label, now / 3.6e6, until_ms / 3.6e6))
        if now >= until_ms:
            return


def datasheet_compensation():
    """The load cells' creep and span tempco as their datasheet gives them (hardware/
    fixture.json), entered as the firmware's settings: the virtual load cells follow these
    typical figures exactly, a real one only within the datasheet's bounds."""
    fx, _ = resolve()
    lc = fx["load_cell"]
    return {
        "load_cell_span_per_k": lc["span_tc_per_k"],
        "load_cell_creep_per_30min": lc["creep_fs_per_30min"],
        "load_cell_creep_tau_s": lc["creep_tau_s"],
    }


def compensate(link, zero_n_per_k):
    link.command("set", key="load_cell_zero_n_per_k", value=round(zero_n_per_k, 4))
    for k, v in datasheet_compensation().items():
        link.command("set", key=k, value=v)


def cycling_window_s():
    _, sc = resolve()
    cyc = sc["cycling"]
    return REST_S, REST_S + cyc["cycles"] * 2 * 3600.0 / cyc["c_rate"]


def run_tempco(seed, outdir, step_at_s=600, settle_s=6000):
    """The virtual climate chamber: the unloaded fixture, the room 10 degC warmer at
    step_at_s; the load cell's zero drift per kelvin of the frame thermistor, measured as a
    lab would measure it, for the firmware's `load_cell_zero_n_per_k`."""
    sets = [
        "scenario.cycling.rest_before_s=1000000000",
        'scenario.events=[{"at_s": %d, "ambient_temperature_c": 35.0}]' % step_at_s,
    ]
    fx = Fixture(outdir, "tempco", seed, sets)
    try:
        with Link(fx.port, timeout_s=10) as link:
            link.hello()
            rec = Recorder(link, outdir / "tempco.csv", {"bench": "load-cell zero tempco, unloaded, +10 degC"})
            follow(link, rec, (step_at_s + settle_s) * 1000, "tempco")
            rec.close()
    finally:
        virt, wall, dropped = fx.stop()

    def mean(key, t0, t1):
        vals = [r[key] for r in rec.tel if t0 * 1000 <= r["device_ms"] < t1 * 1000]
        return sum(vals) / len(vals)

    t_a, t_b = step_at_s - 300, step_at_s - 10
    t_c, t_d = step_at_s + settle_s - 300, step_at_s + settle_s
    dT = mean("temperature_c", t_c, t_d) - mean("temperature_c", t_a, t_b)
    dF = mean("force_n", t_c, t_d) - mean("force_n", t_a, t_b)
    return {"zero_n_per_k": dF / dT, "delta_t_k": dT, "delta_f_n": dF}


def run_hold(kind, mpa, seed, outdir, zero_n_per_k=0.0):
    name = "%s_%g" % (kind, mpa)
    sets = ["scenario.cycling.rest_before_s=%d" % REST_S]
    if kind == "gap":
        sets.append("fixture.springs.present=false")
    if kind == "lost":
        _, sc = resolve()
        events = sc.get("events", []) + [{"at_s": LOST_AT_S, "fault": "adc_disconnected", "channel": LOST_CHANNEL}]
        sets.append("scenario.events=%s" % json.dumps(events))
    t_start, t_end = cycling_window_s()
    fx = Fixture(outdir, name, seed, sets)
    try:
        with Link(fx.port, timeout_s=10) as link:
            link.hello()
            compensate(link, zero_n_per_k)
            tune = Tuner(link).run(mpa)
            wait_settled(link, mpa)
            if kind not in ("active", "lost"):
                link.command("gap")  # clamped: from now on the motor never moves
            rec = Recorder(
                link,
                outdir / ("%s.csv" % name),
                {"bench": "%s at %g MPa, seed %d" % (kind, mpa, seed), "model_set": sets},
            )
            follow(link, rec, (t_end + TAIL_S) * 1000, name)
            rec.close()
    finally:
        virt, wall, dropped = fx.stop()
    if rec.tel[0]["device_ms"] > t_start * 1000:
        raise RuntimeError(
            "%s: tuning and clamping ran into the cycling (log starts at %.0f s, cycling at %.0f s)"
            % (name, rec.tel[0]["device_ms"] / 1000, t_start)
        )
    return {
        "kind": kind,
        "setpoint_mpa": mpa,
        "tune": tune,
        "tel": rec.tel,
        "events": rec.events,
        "heap": rec.heap,
        "gaps": rec.log.gaps,
        "virtual_s": virt,
        "wall_s": wall,
        "dropped_bytes": dropped,
        "truth": str(fx.truth_path),
        "window_s": (t_start, t_end),
        "name": name,
    }


def run_step(seed, outdir, zero_n_per_k=0.0):
    lo, hi = SETPOINTS_MPA[0], SETPOINTS_MPA[-1]
    sets = ["scenario.cycling.rest_before_s=1000000"]  # the cell rests: the step alone
    fx = Fixture(outdir, "step", seed, sets)
    try:
        with Link(fx.port, timeout_s=10) as link:
            link.hello()
            compensate(link, zero_n_per_k)
            Tuner(link).run(lo)
            wait_settled(link, lo)
            rec = Recorder(link, outdir / "step.csv", {"bench": "step %g -> %g -> %g MPa" % (lo, hi, lo)})
            marks = []
            for target in (hi, lo):
                st = link.command("status")
                marks.append((st["uptime_s"], target))
                link.command("hold", mpa=target)
                follow(link, rec, (st["uptime_s"] + STEP_HOLD_S) * 1000, "step to %g" % target)
            rec.close()
    finally:
        virt, wall, dropped = fx.stop()
    # The step starts when the firmware took the command (its mode event), not when the
    # host sent it: at full speed a millisecond of host latency is a second of device time.
    starts = [e["device_ms"] / 1000 for e in rec.events if e.get("kind") == "mode" and e.get("state") == "ramp"]
    marks = [(next((t for t in starts if t >= t_sent), t_sent), target) for t_sent, target in marks]
    return {
        "kind": "step",
        "tel": rec.tel,
        "marks": marks,
        "heap": rec.heap,
        "gaps": rec.log.gaps,
        "virtual_s": virt,
        "wall_s": wall,
        "dropped_bytes": dropped,
        "truth": str(fx.truth_path),
    }


# --- analysis ---------------------------------------------------------------------
def read_truth(path):
    with open(path) as f:
        rd = csv.reader(f)
        head = next(rd)
        cols = {k: i for i, k in enumerate(head)}
        return [
            (
                float(r[0]),
                float(r[cols["true_pressure_mpa"]]),
                float(r[cols["cell_thickness_um"]]),
                float(r[cols["temperature_c"]]),
                float(r[cols["sensed_force_n"]]),
            )
            for r in rd
        ]


def err_stats(errs):
    if not errs:
        return {"rms_err_mpa": None, "max_err_mpa": None}
    return {"rms_err_mpa": math.sqrt(sum(e * e for e in errs) / len(errs)), "max_err_mpa": max(abs(e) for e in errs)}


def analyse_hold(run):
    sp = run["setpoint_mpa"]
    t0, t1 = run["window_s"]
    tel = [r for r in run["tel"] if t0 * 1000 <= r["device_ms"] <= t1 * 1000]
    errs = [r["pressure_mpa"] - sp for r in tel]
    meas = err_stats(errs)
    extremes = [x - sp for r in tel for x in (r.get("p_min_mpa"), r.get("p_max_mpa")) if x is not None]
    if extremes:
        meas["max_err_mpa"] = max(meas["max_err_mpa"], max(abs(e) for e in extremes))
    meas["records"] = len(tel)
    truth = read_truth(run["truth"])
    tw = [row for row in truth if t0 <= row[0] <= t1]
    true = err_stats([row[1] - sp for row in tw])
    out = {"measured": meas, "true": true}
    if run["kind"] == "lost":
        after = [r for r in tel if r["device_ms"] >= LOST_AT_S * 1000]
        out["after_loss"] = err_stats([r["pressure_mpa"] - sp for r in after])
        ext = [abs(x - sp) for r in after for x in (r.get("p_min_mpa"), r.get("p_max_mpa")) if x is not None]
        if ext:
            out["after_loss"]["max_err_mpa"] = max(out["after_loss"]["max_err_mpa"], max(ext))
        out["after_loss"]["true"] = err_stats([row[1] - sp for row in tw if row[0] >= LOST_AT_S])
        out["channel_events"] = [
            {k: e.get(k) for k in ("channel", "why", "left", "device_ms")}
            for e in run["events"]
            if e.get("kind") == "channel"
        ]
    if run["kind"] in ("active", "lost"):
        by_t = {int(round(row[0] * 10)): row[2] for row in tw}
        pairs = [
            (r["thickness_um"], by_t.get(int(round(r["device_ms"] / 100))))
            for r in tel
            if r.get("thickness_um") is not None
        ]
        pairs = [p for p in pairs if p[1] is not None]
        if pairs:
            f0, m0 = pairs[0]
            out["thickness_err_um"] = max(abs((f - f0) - (m - m0)) for f, m in pairs)
            out["thickness_swing_um"] = max(m for _, m in pairs) - min(m for _, m in pairs)
    run["truth_rows"] = truth[::50]  # kept for the plot
    return out


def analyse_step(run):
    tel = run["tel"]
    truth = read_truth(run["truth"])
    res = {}
    for i, (t_cmd, target) in enumerate(run["marks"]):
        t_next = run["marks"][i + 1][0] if i + 1 < len(run["marks"]) else 1e18
        seg = [r for r in tel if t_cmd * 1000 <= r["device_ms"] < t_next * 1000]
        tseg = [row for row in truth if t_cmd <= row[0] < t_next]
        up = target > (run["marks"][i - 1][1] if i else SETPOINTS_MPA[0])
        if up:
            peak = max(r["p_max_mpa"] or r["pressure_mpa"] for r in seg)
            res["overshoot_pct"] = max(0.0, (peak - target) / target * 100)
            res["true_overshoot_pct"] = max(0.0, (max(row[1] for row in tseg) - target) / target * 100)
        else:
            low = min(r["p_min_mpa"] or r["pressure_mpa"] for r in seg)
            res["step_down_undershoot_pct"] = max(0.0, (target - low) / target * 100)
        settled = None
        for r in reversed(seg):
            if abs(r["pressure_mpa"] - target) > SETTLE_BAND_MPA:
                break
            settled = r["device_ms"]
        res["settle_s" if up else "step_down_settle_s"] = None if settled is None else round(settled / 1000 - t_cmd, 2)
    run["truth_rows"] = truth[::5]
    return res


# --- the plot ---------------------------------------------------------------------
def plot(runs, step, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SETPOINTS_MPA) + 1, 2, figsize=(15, 4 * (len(SETPOINTS_MPA) + 1)))
    colors = {"active": "tab:green", "gap": "tab:red", "spring": "tab:blue"}
    labels = {"active": "stackpress (active)", "gap": "constant gap (rigid)", "spring": "spring jig"}
    for row, sp in enumerate(SETPOINTS_MPA):
        ax, az = axes[row]
        for kind in KINDS:
            r = runs[(kind, sp)]
            t = [x["device_ms"] / 3.6e6 for x in r["tel"]]
            ax.plot(t, [x["pressure_mpa"] for x in r["tel"]], color=colors[kind], lw=0.8, label=labels[kind])
        ax.axhline(sp, color="k", lw=0.5, ls="--")
        ax.set_title("%g MPa: reported pressure, three ways" % sp)
        ax.set_ylabel("pressure (MPa)")
        ax.set_xlabel("time (h)")
        ax.legend(loc="upper left", fontsize=8)
        r = runs[("active", sp)]
        az.plot(
            [x["device_ms"] / 3.6e6 for x in r["tel"]],
            [(x["pressure_mpa"] - sp) * 1000 for x in r["tel"]],
            color="tab:green",
            lw=0.6,
            label="reported (load cells)",
        )
        if ("lost", sp) in runs:
            rl = runs[("lost", sp)]
            az.plot(
                [x["device_ms"] / 3.6e6 for x in rl["tel"]],
                [(x["pressure_mpa"] - sp) * 1000 for x in rl["tel"]],
                color="tab:orange",
                lw=0.6,
                label="reported, load cell %d lost at %.1f h" % (LOST_CHANNEL, LOST_AT_S / 3600),
            )
            az.plot(
                [x[0] / 3600 for x in rl["truth_rows"]],
                [(x[1] - sp) * 1000 for x in rl["truth_rows"]],
                color="tab:brown",
                lw=0.8,
                ls=":",
                label="true, load cell %d lost" % LOST_CHANNEL,
            )
            az.axvline(LOST_AT_S / 3600, color="tab:orange", lw=0.5, ls="--")
        az.plot(
            [x[0] / 3600 for x in r["truth_rows"]],
            [(x[1] - sp) * 1000 for x in r["truth_rows"]],
            color="k",
            lw=0.8,
            label="true (model)",
        )
        az.set_ylim(-120, 120)
        az.set_title("%g MPa, stackpress: error (kPa), reported and true" % sp)
        az.set_ylabel("error (kPa)")
        az.set_xlabel("time (h)")
        az.legend(loc="upper left", fontsize=8)
    ax, az = axes[-1]
    t_cmd = step["marks"][0][0]
    ax.plot(
        [x["device_ms"] / 1000 - t_cmd for x in step["tel"]],
        [x["pressure_mpa"] for x in step["tel"]],
        color="tab:green",
        lw=0.8,
        label="reported",
    )
    ax.plot(
        [x[0] - t_cmd for x in step["truth_rows"]],
        [x[1] for x in step["truth_rows"]],
        color="k",
        lw=0.5,
        ls=":",
        label="true",
    )
    ax.set_title("setpoint step %g -> %g -> %g MPa" % (SETPOINTS_MPA[0], SETPOINTS_MPA[-1], SETPOINTS_MPA[0]))
    ax.set_xlabel("time since the step (s)")
    ax.set_ylabel("pressure (MPa)")
    ax.legend(fontsize=8)
    r = runs[("active", 40.0)] if ("active", 40.0) in runs else runs[("active", SETPOINTS_MPA[0])]
    tel = [x for x in r["tel"] if x.get("thickness_um") is not None]
    t0, _ = r["window_s"]
    if tel:
        by_t = {int(round(x[0] * 10)): x[2] for x in r["truth_rows"]}
        pts = [(x["device_ms"] / 3.6e6, x["thickness_um"]) for x in tel]
        az.plot([p[0] for p in pts], [p[1] for p in pts], color="tab:green", lw=0.8, label="thickness_um (firmware)")
        tr = [(k / 36000, v) for k, v in sorted(by_t.items())]
        k0 = int(round(tel[0]["device_ms"] / 100))
        ref = min(by_t, key=lambda k: abs(k - k0))
        az.plot(
            [p[0] for p in tr],
            [p[1] - by_t[ref] + tel[0]["thickness_um"] for p in tr],
            color="k",
            lw=0.6,
            ls="--",
            label="true thickness change (model)",
        )
    az.set_title("%g MPa: dilatometry, cell thickness change" % r["setpoint_mpa"])
    az.set_xlabel("time (h)")
    az.set_ylabel("thickness change (µm)")
    az.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- main -------------------------------------------------------------------------
def compress(paths):
    """Keep the truth files (one row per sample, ~25 MB a run) gzip'd once analysed."""
    for path in paths:
        with open(path, "rb") as src, gzip.open(path + ".gz", "wb", compresslevel=3) as dst:
            shutil.copyfileobj(src, dst)
        os.unlink(path)


def month_report(outdir):
    """bench/month_report.py's figures, measured from a process of its own: a child forked
    from this one would count this process's memory in its peak."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "month_report.py"), "--out", str(outdir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if r.returncode not in (0, 1):  # 1: measured, over the limits (said in the figures)
        raise RuntimeError("bench/month_report.py failed (%d)" % r.returncode)
    return json.loads(r.stdout.splitlines()[-1])


def sample_profile():
    """bench/sample_profile.py's figures (where a sample's wall time goes), from a process of
    its own, alone on the machine."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "sample_profile.py")], stdout=subprocess.PIPE, text=True)
    if r.returncode:
        raise RuntimeError("bench/sample_profile.py failed (%d)" % r.returncode)
    return json.loads(r.stdout.splitlines()[-1])


def fmt(x, spec="%.4f"):
    return "-" if x is None else spec % x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fixtures run at once (default: cores)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    a = ap.parse_args(argv)
    outdir = Path(a.out)
    outdir.mkdir(parents=True, exist_ok=True)
    for f in list(outdir.glob("*.csv")) + list(outdir.glob("*.csv.gz")):
        f.unlink()
    t_wall = time.monotonic()
    jobs = [(k, sp) for sp in SETPOINTS_MPA for k in KINDS] + [("lost", 40.0)]
    log("bench: %d runs of the standard scenario + a step test, %d at a time, in %s" % (len(jobs), a.jobs, outdir))
    runs = {}
    probe = mpy_probe.probe("alloc_probe.py")  # first: seconds, and nothing long runs if it fails
    per_sample = sample_profile()  # alone on the machine, before the fixtures run
    tc = run_tempco(a.seed + 200, outdir)
    zc = tc["zero_n_per_k"]
    log(
        "load cell zero drift: %+.3f N over %+.2f K: %.4f N/K (entered as load_cell_zero_n_per_k)"
        % (tc["delta_f_n"], tc["delta_t_k"], zc)
    )
    with concurrent.futures.ProcessPoolExecutor(max_workers=a.jobs) as ex:
        futs = {ex.submit(run_hold, k, sp, a.seed + i, outdir, zc): (k, sp) for i, (k, sp) in enumerate(jobs)}
        fstep = ex.submit(run_step, a.seed + 100, outdir, zc)
        for n, fut in enumerate(concurrent.futures.as_completed(list(futs) + [fstep]), 1):
            r = fut.result()
            if r["kind"] == "step":
                step = r
            else:
                runs[(r["kind"], r["setpoint_mpa"])] = r
            log(
                "[%d/%d] %s done: %.0f s virtual in %.1f s wall (x%.0f)"
                % (n, len(futs) + 1, r.get("name", "step"), r["virtual_s"], r["wall_s"], r["virtual_s"] / r["wall_s"])
            )

    month = month_report(outdir)  # alone on the machine: the fixtures are done
    results = {key: analyse_hold(r) for key, r in runs.items()}
    st = analyse_step(step)
    print()
    print(
        "%-8s %-7s %12s %12s %12s %12s %10s %9s"
        % ("setpoint", "way", "rms err MPa", "max err MPa", "true rms", "true max", "k N/um", "thk err")
    )
    for sp in SETPOINTS_MPA:
        for k in KINDS:
            res = results[(k, sp)]
            print(
                "%-8g %-7s %12s %12s %12s %12s %10.2f %9s"
                % (
                    sp,
                    k,
                    fmt(res["measured"]["rms_err_mpa"]),
                    fmt(res["measured"]["max_err_mpa"]),
                    fmt(res["true"]["rms_err_mpa"]),
                    fmt(res["true"]["max_err_mpa"]),
                    runs[(k, sp)]["tune"]["stiffness_n_per_um"],
                    fmt(res.get("thickness_err_um"), "%.3f"),
                )
            )
    lost = results[("lost", 40.0)]
    print(
        "%-8g %-7s %12s %12s %12s %12s %10.2f %9s   <- load cell %d lost at %.1f h: after it, max err %s MPa, "
        "true max %s"
        % (
            40.0,
            "lost",
            fmt(lost["measured"]["rms_err_mpa"]),
            fmt(lost["measured"]["max_err_mpa"]),
            fmt(lost["true"]["rms_err_mpa"]),
            fmt(lost["true"]["max_err_mpa"]),
            runs[("lost", 40.0)]["tune"]["stiffness_n_per_um"],
            fmt(lost.get("thickness_err_um"), "%.3f"),
            LOST_CHANNEL,
            LOST_AT_S / 3600,
            fmt(lost["after_loss"]["max_err_mpa"]),
            fmt(lost["after_loss"]["true"]["max_err_mpa"]),
        )
    )
    print(
        "step %g -> %g MPa: overshoot %.3f %% (true %.3f %%), settled within %.0f kPa after %s s; "
        "step down undershoot %.3f %%, settled after %s s"
        % (
            SETPOINTS_MPA[0],
            SETPOINTS_MPA[-1],
            st["overshoot_pct"],
            st["true_overshoot_pct"],
            SETTLE_BAND_MPA * 1000,
            st["settle_s"],
            st["step_down_undershoot_pct"],
            st["step_down_settle_s"],
        )
    )

    print(
        "a month of 1 s records (%d, %.0f MB of CSV): stackpress report %.1f s and %d MB peak; "
        "pandas.read_csv alone %.1f s and %d MB (x%.2f the time, x%.2f the memory)"
        % (
            month["records"],
            month["file_mb"],
            month["report_s"],
            month["report_peak_mb"],
            month["pandas_read_csv_s"],
            month["pandas_read_csv_peak_mb"],
            month["time_vs_pandas"],
            month["memory_vs_pandas"],
        )
    )

    parts = per_sample["per_sample_us"]
    print(
        "a sample at full speed, three load cells (x%.0f, %.1f us): %s"
        % (
            per_sample["speed_vs_realtime"],
            per_sample["per_sample_wall_us"],
            ", ".join("%s %.1f" % (k[: -len("_us")].replace("_", " "), v) for k, v in parts.items()),
        )
    )

    def worst(kind, which):
        vals = [results[(kind, sp)][which] for sp in SETPOINTS_MPA]
        return {
            "rms_err_mpa": round(max(v["rms_err_mpa"] for v in vals), 6),
            "max_err_mpa": round(max(v["max_err_mpa"] for v in vals), 6),
        }

    all_runs = list(runs.values()) + [step]
    png = outdir / "bench.png"
    plot(runs, step, png)
    summary = {
        "setpoints_mpa": list(SETPOINTS_MPA),
        "active": worst("active", "measured"),
        "gap": worst("gap", "measured"),
        "spring": worst("spring", "measured"),
        "true_active": worst("active", "true"),
        "ramp_overshoot_pct": round(st["overshoot_pct"], 4),
        "settle_s": st["settle_s"],
        "thickness_err_um": round(max(results[("active", sp)]["thickness_err_um"] for sp in SETPOINTS_MPA), 4),
        "alloc_bytes_per_loop": probe["alloc_bytes_per_loop"],
        "heap_peak_bytes": max(h for r in all_runs for h in r["heap"]),
        "speed_vs_realtime": round(min(r["virtual_s"] / r["wall_s"] for r in runs.values()), 1),
        "sample_rate_sps": 10,
        "spring_over_active_max_err": None,
        "gap_over_active_max_err": None,
        "step_down_undershoot_pct": round(st["step_down_undershoot_pct"], 4),
        "one_load_cell_lost": {
            "setpoint_mpa": 40.0,
            "channel": LOST_CHANNEL,
            "at_s": LOST_AT_S,
            "max_err_mpa": round(lost["measured"]["max_err_mpa"], 6),
            "after_loss_max_err_mpa": round(lost["after_loss"]["max_err_mpa"], 6),
            "after_loss_rms_err_mpa": round(lost["after_loss"]["rms_err_mpa"], 6),
            "after_loss_true_max_err_mpa": round(lost["after_loss"]["true"]["max_err_mpa"], 6),
            "active_true_max_err_mpa_40": round(results[("active", 40.0)]["true"]["max_err_mpa"], 6),
            "channel_events": lost["channel_events"],
        },
        "heap_size_bytes": 192 * 1024,
        "load_cell_zero_n_per_k_measured": round(zc, 4),
        "heap_lock_ok": probe["heap_lock_ok"],
        "log_gaps": sum(r["gaps"] for r in all_runs),
        "dropped_bytes": sum(r["dropped_bytes"] for r in all_runs),
        "virtual_h": round(sum(r["virtual_s"] for r in all_runs) / 3600, 1),
        "month_report": month,
        "per_sample": per_sample,
        "wall_s": round(time.monotonic() - t_wall, 1),
        "plot": str(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png),
    }
    summary["spring_over_active_max_err"] = round(
        summary["spring"]["max_err_mpa"] / summary["active"]["max_err_mpa"], 1
    )
    summary["gap_over_active_max_err"] = round(summary["gap"]["max_err_mpa"] / summary["active"]["max_err_mpa"], 1)
    (outdir / "summary.json").write_text(json.dumps(summary, indent=1))
    compress(r["truth"] for r in all_runs)
    print("plot: %s; logs and the model's truth files (gzip): %s" % (summary["plot"], outdir))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
