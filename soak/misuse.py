"""The soak's misuse scenario: what a careless user does to a running fixture, typed at the
CLI as a person types it (`make soak`; a short version is in `make test`).

Passes when:
1. a tare under load (hold 40 MPa, idle, tare) is refused, and the next hold of 40 MPa is
   40 MPa true (the model's), not the 80 a tare under load gave;
2. a stiffness typo (1.6 for 16 N/um) is refused while holding; set in gap (0.5 N/um) it
   is accepted, and the hold that follows raises hold_deviation instead of swinging in
   silence; with the setting put right and `ack`, the fixture holds again;
3. a fixture whose flash was wiped (boot 1 again, the same id) has its records appended
   to its log, not dropped as duplicates, and the log says so; another fixture's log and a
   second logger on one file are refused (exit 2) and the file is left as it was;
5. three `stackpress reset`s during a profile's hold credit it with no more hold time than
   the fixture spent holding (a reset lengthens a hold, never shortens it);
6. a firmware with a syntax error is refused before the fixture is touched, and one that
   can not start is rolled back: either way the fixture goes on holding its setpoint.
"""

import csv
import json
import shutil
import signal
import subprocess
import time

from harness import BIN, OUT, ROOT, Sim, figures_time, log, scenario, wait_device

SETPOINT_MPA = 40.0


def _cli(sim, *args, timeout=300):
    return subprocess.run(
        [str(BIN / "stackpress"), "--port", sim.link, *args], capture_output=True, text=True, timeout=timeout
    )


def _json(sim, *args):
    r = _cli(sim, *args, "--json")
    if r.returncode:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return json.loads(r.stdout)


def _truth_between(sim, t0, t1):
    with open(sim.truth) as f:
        return [float(r["true_pressure_mpa"]) for r in csv.DictReader(f) if t0 <= float(r["t_s"]) <= t1]


def _wait_for(sim, pred, virtual_s, what, command=("status",)):
    """Poll `stackpress COMMAND --json` until pred(reply), on the fixture's clock: fails when
    virtual_s of its time pass without it, or when that clock stands still (a hang)."""
    last = []

    def done():
        last[:] = [_json(sim, *command)]
        return pred(last[0])

    try:
        wait_device(what, done, sim.t_s, lambda: time.sleep(0.05), limit_s=sim.t_s() + virtual_s)
    except RuntimeError as e:
        raise RuntimeError("%s (last reply %s)" % (e, last[0] if last else None)) from None
    return last[0]


def _tare_under_load(sim):
    assert_ok = _cli(sim, "hold", "40", "--wait", "--timeout", "300").returncode == 0
    _cli(sim, "idle")
    r = _cli(sim, "tare")
    refused = r.returncode == 4 and "release" in r.stderr
    _cli(sim, "hold", "40", "--wait", "--timeout", "300")
    t0 = sim.t_s() + 30  # settled: --wait returns within 1 %
    sim.wait_t(t0 + 120)
    true = _truth_between(sim, t0, t0 + 120)
    dev = max(abs(p - SETPOINT_MPA) for p in true)
    ok = assert_ok and refused and dev < 0.4
    return ok, "tare under 3141 N refused %s, next hold true within %.3f MPa of 40" % (refused, dev), dev


def _stiffness_typo(sim):
    cfg = _json(sim, "config")
    k0 = cfg["stiffness_n_per_um"]["value"]
    r = _cli(sim, "config", "stiffness_n_per_um", "1.6")
    refused = r.returncode == 4 and "loop" in r.stderr and _json(sim, "config")["stiffness_n_per_um"]["value"] == k0
    _cli(sim, "gap")
    accepted = _cli(sim, "config", "stiffness_n_per_um", "0.5").returncode == 0
    _cli(sim, "hold", "40")
    try:
        st = _wait_for(
            sim,
            lambda s: "hold_deviation" in s["alarms"] or s["state"] == "fault",
            600,
            "hold_deviation with stiffness 0.5",
        )
        alarm = "hold_deviation" in st["alarms"]
    except RuntimeError:
        alarm = False
    _cli(sim, "gap")
    _cli(sim, "ack")
    _cli(sim, "config", "stiffness_n_per_um", str(k0))
    back = _cli(sim, "hold", "40", "--wait", "--timeout", "300").returncode == 0
    ok = refused and accepted and alarm and back
    return ok, (
        "stiffness 1.6 mid-hold refused %s; 0.5 in gap accepted %s, then hold_deviation %s; put right and "
        "acked, holding again %s" % (refused, accepted, alarm, back)
    )


def _profile_across_resets(seed):
    sim = Sim("misuse_profile", scenario("misuse_profile", [], cycles=1), seed, speed=100)
    try:
        toml = OUT / "misuse_profile.toml"
        toml.write_text(
            'name = "one long hold"\n\n[[step]]\nto_mpa = 40.0\nrate_mpa_s = 2.0\nhold_s = 36000\n\n'
            "[[step]]\nto_mpa = 30.0\nrate_mpa_s = 0.5\nuntil_stopped = true\n"
        )
        r = _cli(sim, "profile", "run", str(toml))
        if r.returncode:
            raise RuntimeError("profile run: %s" % r.stderr)
        p = _wait_for(sim, lambda p: p["running"] and p["holding"], 300, "profile holding", ("profile", "status"))
        t_hold = sim.t_s() - p["held_s"]
        for _ in range(3):
            sim.wait_t(sim.t_s() + 600)
            _cli(sim, "reset")
        sim.wait_t(sim.t_s() + 300)
        p = _json(sim, "profile", "status")
        elapsed = sim.t_s() - t_hold
    finally:
        figures_time(sim)
    # The status file's virtual time lags by up to a quarter second of wall time (25 s at 100x).
    ok = p["step"] == 1 and p["held_s"] <= elapsed + 30 and p["held_s"] >= elapsed - 3 * 120
    return ok, (
        "profile hold across 3 resets: %d s credited for %.0f s since it began holding (each reset may "
        "cost up to a minute's save and the ramp back), still step %s" % (p["held_s"], elapsed, p["step"])
    )


def _flash_failures(sim, tmp):
    before = _json(sim, "status")
    broken = tmp / "fw_broken"
    shutil.copytree(ROOT / "firmware", broken)
    (broken / "main.py").write_text((broken / "main.py").read_text() + "\ndef (:\n")
    r1 = _cli(sim, "flash", "--firmware", str(broken))
    after1 = _json(sim, "status")
    refused = r1.returncode == 5 and "nothing was changed" in r1.stderr and after1["boot"] == before["boot"]
    nostart = tmp / "fw_nostart"
    shutil.copytree(ROOT / "firmware", nostart)
    (nostart / "stackpress" / "store.py").write_text("raise ImportError('a module that can not load')\n")
    v = nostart / "stackpress" / "version.json"
    d = json.loads(v.read_text())
    v.write_text(json.dumps(dict(d, firmware_version="9.9.9-broken+" + d["firmware_version"])))
    r2 = _cli(sim, "flash", "--firmware", str(nostart))
    st = _wait_for(sim, lambda s: s["state"] == "hold", 600, "hold after the rollback")
    rolled = (
        r2.returncode == 5
        and "runs firmware %s again" % before["firmware_version"] in r2.stderr
        and st["firmware_version"] == before["firmware_version"]
        and st["setpoint_mpa"] == SETPOINT_MPA
    )
    ok = refused and rolled
    return ok, (
        "flash of a main.py that does not compile refused before parking %s; one that can not start rolled "
        "back, holding %.3f MPa on firmware %s %s" % (refused, st["pressure_mpa"], st["firmware_version"], rolled)
    )


def _rows(path):
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return [(int(r["boot"]), int(r["seq"]), r["boot_id"]) for r in csv.DictReader(lines)]


def _logger(sim, out):
    return subprocess.Popen(
        [str(BIN / "stackpress"), "--port", sim.link, "log", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(lg):
    lg.send_signal(signal.SIGTERM)
    return lg.communicate(timeout=60)[1]


def _wiped_flash(seed, tmp):
    flash = tmp / "misuse_flash.img"
    out = OUT / "misuse_log.csv"
    for p in (flash, out):
        if p.exists():
            p.unlink()
    sc = scenario("misuse_wipe", [], cycles=1)
    a = Sim("misuse_life1", sc, seed, truth_every=0, extra=["--flash", str(flash)])
    try:
        lg = _logger(a, out)
        a.wait_t(a.t_s() + 600)
        _stop(lg)
    finally:
        figures_time(a)
    first = len(_rows(out))
    flash.unlink()  # a fresh flash: the same chip (the same id), its boot count from 1 again
    b = Sim("misuse_life2", sc, seed + 1, truth_every=0, extra=["--flash", str(flash)])
    other = Sim("misuse_other", sc, seed + 2, truth_every=0)
    try:
        lg = _logger(b, out)
        b.wait_t(b.t_s() + 600)
        size = out.stat().st_size
        r_other = _cli(other, "log", "--out", str(out), "--duration", "5")  # another fixture, same file
        locked = "another stackpress logger" in r_other.stderr
        err = _stop(lg)
        r_mixed = _cli(other, "log", "--out", str(out), "--duration", "5")  # and once the first has stopped
    finally:
        figures_time(b)
        figures_time(other)
    rows = _rows(out)
    second = len(rows) - first
    keys = [(bid, s) for b_, s, bid in rows]
    text = out.read_text()
    ok = (
        first > 50
        and second > 50
        and len(keys) == len(set(keys))
        and "boot count restarted" in text
        and r_other.returncode == 2
        and locked
        and r_mixed.returncode == 2
        and "log of fixture" in r_mixed.stderr
        and out.stat().st_size >= size
        and "Traceback" not in err
    )
    return ok, (
        "wiped flash: %d records of the first life, %d of the second appended (boot count restart noted %s, "
        "each once %s); a second logger on the file refused %s, another fixture's resume refused %s%s"
        % (
            first,
            second,
            "boot count restarted" in text,
            len(keys) == len(set(keys)),
            r_other.returncode == 2 and locked,
            r_mixed.returncode == 2,
            "" if "Traceback" not in err else "; the logger's traceback: " + err[-300:],
        )
    )


def run_misuse(seed):
    tmp = OUT / "misuse_tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    results = []
    sim = Sim("misuse", scenario("misuse", [], cycles=2), seed)
    try:
        ok1, d1, dev = _tare_under_load(sim)
        log("[misuse] 1: %s" % d1)
        results.append((ok1, "1. " + d1))
        ok2, d2 = _stiffness_typo(sim)
        log("[misuse] 2: %s" % d2)
        results.append((ok2, "2. " + d2))
        ok6, d6 = _flash_failures(sim, tmp)
        log("[misuse] 6: %s" % d6)
        results.append((ok6, "6. " + d6))
    finally:
        figures_time(sim)
    ok3, d3 = _wiped_flash(seed, tmp)
    log("[misuse] 3: %s" % d3)
    results.append((ok3, "3. " + d3))
    ok5, d5 = _profile_across_resets(seed)
    log("[misuse] 5: %s" % d5)
    results.append((ok5, "5. " + d5))
    return all(ok for ok, _ in results), "; ".join(d for _, d in results), {"tare_refused_true_dev_mpa": dev}
