"""What the soak scenarios share: the virtual fixture they run (Sim), a host driving it as
`stackpress` does (Host), scenario files, the truth file, and the campaign's timing."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "host"))

from stackpress.link import DeviceError, Link, LinkError  # noqa: E402,F401

OUT = ROOT / "soak" / "out"
SETPOINT_MPA = 40.0
FIXTURE = str(ROOT / "hardware" / "fixture.json")
STANDARD = ROOT / "hardware" / "scenarios" / "standard.json"


# A scenario gives up when the fixture's clock stops for this long, never because the
# machine is slow: beside two CPU-bound processes the same device time takes twice the wall
# time, and a 30-day run can take hours.
STALL_WALL_S = 300.0


def wait_device(what, done, now_s, pump, limit_s=None, stall_wall_s=STALL_WALL_S):
    """Wait until done(), calling pump() between looks. Fails when the device time now_s()
    has not moved for stall_wall_s of wall time (a hang), or has passed limit_s (device s)
    without done() (what was awaited did not happen)."""
    last = now_s()
    moved = time.monotonic()
    while not done():
        pump()
        t = now_s()
        if limit_s is not None and t > limit_s:
            raise RuntimeError("%s: not by %.0f s of device time" % (what, limit_s))
        if t > last:
            last, moved = t, time.monotonic()
        elif time.monotonic() - moved > stall_wall_s:
            raise RuntimeError("%s: device time stuck at %.0f s" % (what, t))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def scenario(name, events, cycles=1, rest_s=600, load=None):
    """The standard scenario, its cycling and events (and the load's centre) replaced;
    written beside the logs."""
    sc = json.loads(STANDARD.read_text())
    if load:
        sc["load"] = load
    sc["fixture"] = FIXTURE
    sc["cycling"]["cycles"] = cycles
    sc["cycling"]["rest_before_s"] = rest_s
    sc["events"] = events
    path = OUT / ("%s_scenario.json" % name)
    path.write_text(json.dumps(sc, indent=1))
    return path


class Sim:
    """One `stackpress sim` with a stable port link, a status file and a truth file."""

    def __init__(self, name, scen, seed=1, truth_every=1, speed="max", extra=()):
        self.name = name
        self.link = str(OUT / ("%s.port" % name))
        self.status_path = OUT / ("%s_status.json" % name)
        self.truth = OUT / ("%s_truth.csv" % name)
        self.errlog = open(OUT / ("%s_sim.log" % name), "w")
        args = [
            str(BIN / "stackpress"),
            "sim",
            "--speed",
            str(speed),
            "--seed",
            str(seed),
            "--scenario",
            str(scen),
            "--link",
            self.link,
            "--status",
            str(self.status_path),
            *extra,
        ]
        if truth_every:
            args += ["--truth", str(self.truth), "--truth-every", str(truth_every)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errlog, text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("port: "):
            raise RuntimeError("sim did not start")
        self.wall0 = time.monotonic()

    def status(self):
        for _ in range(50):
            try:
                return json.loads(self.status_path.read_text())
            except (OSError, ValueError):
                time.sleep(0.02)
        return {}

    def t_s(self):
        return self.status().get("t_s", 0.0)

    def wait_t(self, t_s, host=None):
        """Until the model's time reaches t_s, keeping host's records if one is given."""
        pump = (lambda: host.pump(0.01)) if host is not None else (lambda: time.sleep(0.01))
        wait_device(self.name, lambda: self.t_s() >= t_s, self.t_s, pump)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.errlog.close()
        st = json.loads(self.status_path.read_text())
        st["wall_s"] = time.monotonic() - self.wall0
        return st


class Host:
    """The driver: a link that keeps every record, and reconnects if the port drops."""

    def __init__(self, sim):
        self.sim = sim
        self.records = []
        self.seen = set()
        self.expect = {}  # boot -> next seq expected
        self.cont = {}  # boot -> every seq up to this one has been seen
        self.link = None
        self._asked = 0.0
        self._open()

    def add(self, r):
        """Keep each record once; a hole (output dropped while this host was slow) is
        replayed from the fixture's history, as `stackpress log` does."""
        key = (r.get("boot"), r.get("seq"))
        if key in self.seen:
            return
        self.seen.add(key)
        self.records.append(r)
        b, s = key
        if isinstance(s, int):
            self.expect[b] = max(self.expect.get(b, 1), s + 1)
            c = self.cont.get(b, 0)
            while (b, c + 1) in self.seen:
                c += 1
            self.cont[b] = c

    def _holes(self):
        if not self.expect:
            return None
        b = max(self.expect, key=lambda k: k or 0)
        c = self.cont.get(b, 0)
        return (b, c + 1) if c + 1 < self.expect[b] else None

    def _open(self):
        for _ in range(200):
            try:
                self.link = Link(self.sim.link, on_record=self.add)
                self.link.hello()
                return
            except LinkError:
                if self.link is not None:
                    self.link.close()
                self.link = None
                time.sleep(0.05)
        raise RuntimeError("%s: no fixture on %s" % (self.sim.name, self.sim.link))

    def pump(self, wall_s):
        try:
            for r in self.link.records(wall_s):
                self.add(r)
            hole = self._holes()
            if hole and time.monotonic() - self._asked > 0.5:
                self._asked = time.monotonic()
                try:
                    self.link.command("replay", from_seq=hole[1], boot=hole[0])
                except DeviceError:
                    self.expect.pop(hole[0], None)  # that boot's history went with a reset
        except LinkError:
            self.link.close()
            self._open()

    def cmd(self, cmd, **args):
        for _ in range(5):
            try:
                return self.link.command(cmd, **args)
            except LinkError:
                self.link.close()
                self._open()
        raise RuntimeError("%s: '%s' got no reply" % (self.sim.name, cmd))

    def tel(self):
        return sorted((r for r in self.records if r.get("t") == "tel"), key=lambda r: (r["boot"], r["seq"]))

    def events(self, kind=None):
        return [r for r in self.records if r.get("t") == "evt" and (kind is None or r.get("kind") == kind)]

    def close(self):
        self.link.close()


def truth_rows(sim):
    with open(sim.truth) as f:
        return [(float(r["t_s"]), float(r["true_pressure_mpa"])) for r in csv.DictReader(f)]


def settle(sim, host, mpa=SETPOINT_MPA):
    host.cmd("set", key="ramp_rate_mpa_s", value=2.0)
    host.cmd("hold", mpa=mpa)

    def held():
        t = host.tel()
        return bool(t) and t[-1]["state"] == "hold"

    # a 2 MPa/s ramp and its settling take well under ten minutes of device time
    wait_device("%s: hold" % sim.name, held, sim.t_s, lambda: host.pump(0.1), limit_s=sim.t_s() + 600)


# --- scenarios: each returns (passed, details, figures) ---------------------------

_TIMES = {}


def figures_time(sim):
    res = sim.stop()
    _TIMES[sim.name] = res
    return res
