"""The `stackpress` command line. Exit codes: 0 ok, 1 ended short of its goal (a wait timed
out, a logger stopped early), 2 usage, 3 fixture (or broker) unreachable, 4 the fixture
refused (the message says why and what is allowed), 5 flashing failed (the message says
what to do), 130 interrupted."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .connect import open_link
from .link import DeviceError, LinkError
from .progress import Progress
from .protocol import BadValue, frame

if TYPE_CHECKING:
    from stackpress.connect import FixtureLink

EXAMPLES = {
    "sim": "stackpress sim --speed 50 --seed 1 --set fixture.adc.rate_sps=80",
    "status": "stackpress --port /dev/ttyACM0 status --json",
    "hold": "stackpress hold 40 --wait",
    "release": "stackpress release",
    "gap": "stackpress gap",
    "idle": "stackpress idle",
    "ack": "stackpress ack",
    "lock": "stackpress lock     # a test runs: hold/release/set/... refused until unlock",
    "unlock": "stackpress unlock",
    "tare": "stackpress tare",
    "config": "stackpress config ramp_rate_mpa_s 0.5   (or: config pull fixture1.toml, config diff|push fixture1.toml)",
    "log": "stackpress log --out run1.csv    (or: log --all --out /data/stackpress/ --rotate daily)",
    "monitor": "stackpress monitor",
    "repl": "stackpress repl   # then: mpremote connect PORT resume fs ls",
    "reset": "stackpress reset",
    "demo": "stackpress demo --speed 50",
    "tune": "stackpress tune --mpa 40",
    "jog": "stackpress jog -- -0.8",
    "profile": "stackpress profile run host/profiles/form-then-cycle.toml",
    "report": "stackpress report run1.csv --cycler cycler_export.csv",
    "flash": "stackpress --port /dev/ttyACM0 flash",
    "list": "stackpress list --json",
    "serve": "stackpress serve --out /var/lib/stackpress/ --rotate daily --group lab --mqtt mqtt://rack3@broker.lab",
    "fleet": "stackpress fleet --mqtt mqtt://broker.lab   (or: --once --json)",
    "note": "stackpress note 'cell 7: electrolyte refilled, cycling resumed'",
    "calibrate": "stackpress calibrate --at 500,2000,4000 --reference 'HBM C10 s/n 123, cert 2026-10-01'",
    "tempco": "stackpress tempco soak.csv --apply",
}


SPEED_RANGE = (0.001, 1e6)
# Commands that reach one fixture: they take --port after the command too.
AT_A_PORT = (
    "status", "hold", "release", "gap", "idle", "ack", "tare", "lock", "unlock", "config", "tune", "jog",
    "monitor", "repl", "profile", "calibrate", "flash", "reset", "note",
)  # fmt: skip


def _finite(what: str) -> Callable[[str], float]:
    """An argparse type: a finite number (NaN and infinity refused, exit 2), for `what`."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%s takes a number, got %r" % (what, text)) from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError("%s takes a finite number, got %r" % (what, text))
        return v

    return parse


def _pause_times(text: str) -> list[float]:
    """An argparse type: virtual times in seconds, comma-separated, none negative."""
    parse = _finite("--pause-at (s)")
    times = [parse(t) for t in text.split(",") if t.strip()]
    if any(t < 0 for t in times):
        raise argparse.ArgumentTypeError("--pause-at takes times of 0 s or more, got %r" % text)
    return times


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("speed takes a number (times real time) or 'max', got %r" % text) from None
    if not SPEED_RANGE[0] <= v <= SPEED_RANGE[1]:  # also nan and inf
        raise argparse.ArgumentTypeError(
            "speed must be %g to %g times real time, or 'max'; got %s" % (SPEED_RANGE[0], SPEED_RANGE[1], text)
        )
    return v


def _notify_options(s: argparse.ArgumentParser, when: str) -> None:
    """serve's and fleet's ways to tell people (notify.py)."""
    s.add_argument(
        "--notify-command",
        metavar="CMD",
        help="run this %s, and when it is over: the notification as JSON on its stdin, its subject in "
        "$STACKPRESS_SUBJECT (e.g. 'mail -s \"$STACKPRESS_SUBJECT\" lab@example.org')" % when,
    )
    s.add_argument("--notify-url", metavar="URL", help="POST each notification as JSON to this webhook (chat)")
    s.add_argument(
        "--notify-offline-s",
        type=_finite("--notify-offline-s (s)"),
        default=300.0,
        metavar="S",
        help="how long a fixture is offline before telling (default 300 s)",
    )


def _versions() -> str:
    from . import __version__
    from .firmware import FIRMWARE, versions

    fw, protocol = versions()
    return "stackpress %s (host), firmware %s (protocol %d) from %s" % (__version__, fw, protocol, FIRMWARE)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stackpress", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--port",
        default=os.environ.get("STACKPRESS_PORT"),
        help="serial device of the fixture (default: $STACKPRESS_PORT)",
    )
    p.add_argument("--version", action="version", version=_versions(), help="this host's and its firmware's versions")
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, help_):
        s = sub.add_parser(name, help=help_, description=help_, epilog="example: " + EXAMPLES[name])
        if name in AT_A_PORT:  # also after the command: `stackpress status --port P`
            s.add_argument("--port", default=argparse.SUPPRESS, help="serial device of the fixture")
        return s

    s = add("sim", "run the virtual fixture; prints 'port: PATH' first, runs until Ctrl-C")
    s.add_argument("--speed", type=_speed, default=1.0, help="times real time, or 'max' (default 1)")
    s.add_argument("--seed", type=int, default=0, help="random seed of the model (default 0)")
    s.add_argument("--scenario", help="scenario file (default hardware/scenarios/standard.json)")
    s.add_argument("--fixture", help="fixture parameter file (default: the one the scenario names)")
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model parameter, e.g. fixture.springs.present=false or scenario.cycling.cycles=1 (repeatable)",
    )
    s.add_argument("--flash", help="keep the board's flash image in this file between runs")
    s.add_argument("--truth", help="write the model's true state to this CSV")
    s.add_argument("--truth-every", type=int, default=8, help="one truth row per N samples (default 8)")
    s.add_argument("--heap", default="192k", help="board heap size (default 192k, as a Pico)")
    s.add_argument("--firmware", help="the firmware tree the board runs (default: this checkout's firmware/)")
    s.add_argument("--duration", type=_finite("--duration (s)"), help="stop after this many seconds of wall time")
    s.add_argument(
        "--link",
        help="keep a symlink to the port at this path (it survives a USB unplug, as /dev/serial/by-id/... does)",
    )
    s.add_argument("--status", help="rewrite this JSON file with the virtual time, boots and resets")
    s.add_argument(
        "--board",
        choices=["unix", "pico"],
        default="unix",
        help="the board: MicroPython's unix port (default), or an emulated RP2040 running the"
        " official Pico image given by --uf2 (needs Node.js; see README)",
    )
    s.add_argument("--uf2", help="with --board pico: the MicroPython image (default $STACKPRESS_RP2_UF2)")
    s.add_argument("--bootrom", help="with --board pico: the RP2040 bootrom (default $STACKPRESS_RP2_BOOTROM)")
    s.add_argument(
        "--pause-at",
        type=_pause_times,
        default=[],
        metavar="S[,S...]",
        help="hold the virtual world still at these times (s) until a host next writes to the port;"
        " 0 waits for the first host (for tests that read the fixture at a chosen time)",
    )

    s = add("status", "show the fixture's state")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("hold", "ramp to a pressure at the configured rate, then hold it")
    s.add_argument("mpa", type=_finite("the setpoint (MPa)"), help="setpoint in MPa")
    s.add_argument("--wait", action="store_true", help="return once holding within 1 %% of the setpoint")
    s.add_argument(
        "--timeout", type=_finite("--timeout (s)"), default=600, help="seconds to wait with --wait (default 600)"
    )
    s.add_argument("--json", action="store_true", help="the reply (with --wait, the status once holding) as JSON")
    s = add("release", "ramp the pressure down gently, back off, then idle")
    s.add_argument("--wait", action="store_true", help="return once the fixture is idle (released)")
    s.add_argument(
        "--timeout", type=_finite("--timeout (s)"), default=600, help="seconds to wait with --wait (default 600)"
    )
    s.add_argument("--json", action="store_true", help="the reply (with --wait, the status once idle) as JSON")
    for name, help_ in (
        ("gap", "hold the motor's position and record the pressure"),
        ("idle", "stop moving (the self-locking drive keeps the load)"),
        ("ack", "acknowledge latched alarms; a fault resumes what it interrupted"),
        ("tare", "zero the load cell (fixture unloaded and idle)"),
        ("lock", "protect a running test: commands that change pressure are refused until 'unlock'"),
        ("unlock", "end the protection of 'lock'"),
    ):
        add(name, help_).add_argument("--json", action="store_true", help="the fixture's reply as JSON")
    s = add("tune", "measure the fixture's stiffness with a small probing move and set the loop's gain")
    s.add_argument(
        "--mpa",
        type=_finite("--mpa (MPa)"),
        required=True,
        help="working pressure to probe at (MPa); it holds there after",
    )
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("jog", "move the motor by hand (idle or gap only), in um; + = more compression")
    s.add_argument("um", type=_finite("the move (um)"))
    s = add(
        "config",
        "show the fixture's settings, set one, or keep them in a TOML file: pull FILE writes "
        "it, diff FILE compares, push FILE sets what differs",
    )
    s.add_argument("key", nargs="?", help="a setting's name, or pull, push, diff")
    s.add_argument("value", nargs="?", help="the new value (in the setting's unit), or the TOML file")
    s.add_argument("--json", action="store_true")
    s = add(
        "log",
        "record every telemetry record and event of one fixture or many, to CSV or SQLite; an existing file is resumed",
    )
    s.add_argument(
        "--out",
        required=True,
        help="the file (.csv, or .sqlite for long runs), or a directory "
        "ending in / for several fixtures (a file per fixture id)",
    )
    s.add_argument(
        "--port",
        dest="ports",
        action="append",
        default=[],
        metavar="PORT",
        help="a fixture to log (repeatable; default: the global --port)",
    )
    s.add_argument(
        "--all",
        action="store_true",
        help="every fixture found (Picos on USB, running 'stackpress sim'), and any that turns up later",
    )
    s.add_argument(
        "--format", choices=["csv", "sqlite"], help="for --out DIR/ (default csv; for a file, its extension decides)"
    )
    s.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="daily|SIZE",
        type=_rotate,
        help="a fresh file each UTC day ('daily') or at a size ('100MB'); files are named "
        "OUT-stem.START_UTC.ext (repeatable: daily and a size)",
    )
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to record (default: until Ctrl-C)")
    s.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TEXT",
        help="an operator's note for the log, at its start (repeatable; 'stackpress note' adds one later)",
    )
    s.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_meta,
        help="a line for the log's header: the cell, the operator, the test (e.g. cell=NMC811-07, "
        "operator=alice; repeatable)",
    )
    s.add_argument("--json", action="store_true", help="at the end, what was written as one JSON object")
    s = add(
        "serve",
        "own every fixture given or found: log each (as log --all does) and serve the other "
        "stackpress programs on this computer (status, hold, monitor, ... while it logs)",
    )
    s.add_argument("--out", required=True, help="directory for the logs, a file per fixture id (ends in /)")
    s.add_argument(
        "--port",
        dest="ports",
        action="append",
        default=[],
        metavar="PORT",
        help="a fixture to serve (repeatable; default: every fixture found, and any plugged in later)",
    )
    s.add_argument("--format", choices=["csv", "sqlite"], default="csv", help="log format (default csv)")
    s.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="daily|SIZE",
        type=_rotate,
        help="a fresh file each UTC day or at a size, as log --rotate",
    )
    s.add_argument(
        "--group",
        help="a group whose members may use the fixtures through this service "
        "(its sockets are the user's and this group's; default: the user's only)",
    )
    s.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_meta,
        help="a line for every log's header (repeatable)",
    )
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to run (default: until stopped)")
    s.add_argument("--json", action="store_true", help="at the end, what was written as one JSON object")
    s.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish every fixture to this broker: mqtt://[USER@]HOST[:PORT] or mqtts://... (TLS); the "
        "password from STACKPRESS_MQTT_PASSWORD (topics: README, 'A lab of fixtures')",
    )
    s.add_argument("--mqtt-ca", metavar="FILE", help="for mqtts://: the lab CA's certificate (default: the system's)")
    s.add_argument(
        "--mqtt-control",
        action="store_true",
        help="take commands from the broker's users (hold, gap, idle, release, ack, profile run/stop; "
        "never lock, unlock, settings or flashing); off by default",
    )
    _notify_options(s, "for an alarm, a fixture out of this PC's reach, or a hold error")
    s.add_argument(
        "--notify-error-mpa",
        type=_finite("--notify-error-mpa (MPa)"),
        metavar="MPA",
        help="tell when a hold's pressure stays further than this from its setpoint for 30 s",
    )
    s = add(
        "fleet",
        "every fixture the lab's MQTT broker knows, live: name, host, state, pressure vs setpoint, alarms",
    )
    s.add_argument("--mqtt", metavar="URL", required=True, help="the broker, as serve --mqtt")
    s.add_argument("--mqtt-ca", metavar="FILE", help="for mqtts://: the lab CA's certificate (default: the system's)")
    s.add_argument("--once", action="store_true", help="print the fleet once and end (for scripts: with --json)")
    s.add_argument("--json", action="store_true", help="one JSON object: the fixtures by id")
    s.add_argument(
        "--wait",
        type=_finite("--wait (s)"),
        default=3.0,
        metavar="S",
        help="with --once: how long to listen for fixtures (default 3 s)",
    )
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to watch (default: until Ctrl-C)")
    _notify_options(s, "when a fixture is offline on the broker (its PC or network gone: what its serve can't tell)")
    s = add("note", "write an operator's note into the log of a fixture being logged (by log or serve)")
    s.add_argument("text", help="the note")
    s = add(
        "monitor",
        "live view of the fixture. Keys: a acknowledges latched alarms; s asks for a new setpoint "
        "(type MPa, Enter, then y to confirm; Esc cancels); q quits. Without a terminal it prints "
        "plain lines, and keys can be piped in",
    )
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to run (default: until Ctrl-C)")
    s = add(
        "profile",
        "a pressure schedule the fixture runs itself: run FILE, status, stop, or check FILE (no fixture needed)",
    )
    s.add_argument("action", choices=["run", "status", "stop", "check"])
    s.add_argument("file", nargs="?", help="the schedule (TOML), for run and check")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add(
        "calibrate",
        "tare, then the span against a reference load cell at forces the fixture applies; "
        "stored on the fixture with its date and reference",
    )
    s.add_argument("--at", required=True, help="forces to calibrate at, N, comma-separated (e.g. 500,2000,4000)")
    s.add_argument(
        "--reference",
        required=True,
        help="what the reference is (model, serial, certificate), kept with the calibration (60 characters)",
    )
    s.add_argument("--yes", action="store_true", help="store without asking")
    s.add_argument("--json", action="store_true", help="the result as one JSON object")
    s = add(
        "flash",
        "put this firmware on the fixture: only changed files, verified by hash; it parks, "
        "then resumes after the reset",
    )
    s.add_argument("--firmware", help="firmware tree to flash (default: this checkout's firmware/)")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("report", "plots (PNG) and a summary of a logged run, with a cycler's export on the same time axis")
    s.add_argument(
        "log",
        nargs="+",
        help="a log written by 'stackpress log' (.csv or .sqlite), or all the files of a rotating one (RUN.*.csv)",
    )
    s.add_argument(
        "--out",
        help="directory for report.png, hold.png, summary.txt, summary.json "
        "(default: beside the log, run1.csv -> run1_csv_report/)",
    )
    s.add_argument("--cycler", help="a cycler's CSV export: a time column and voltage, current, cycle")
    s.add_argument(
        "--cycler-start",
        help="UTC time (ISO 8601) of the cycler's time 0, when its times are seconds (default: the log's first record)",
    )
    s.add_argument("--json", action="store_true", help="the summary as one JSON object")
    s = add(
        "tempco",
        "the load cells' zero drift per K, from a log of the unloaded fixture through a temperature change",
    )
    s.add_argument("log", help="a log written by 'stackpress log' while the fixture was released and idle")
    s.add_argument("--apply", action="store_true", help="set load_cell_zero_n_per_k on the fixture (needs --port)")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("list", "the fixtures attached to this computer (Picos on USB, running 'stackpress sim's)")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    add("repl", "park the fixture and hand the serial line to the MicroPython REPL (for mpremote)")
    add("reset", "restart the fixture's firmware (it resumes what it was doing)")
    s = add("demo", "start the virtual fixture, hold 40 MPa, and watch it live")
    s.add_argument("--speed", type=_speed, default=50.0, help="times real time (default 50)")
    s.add_argument("--mpa", type=_finite("--mpa (MPa)"), default=40.0, help="setpoint (default 40)")
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to run (default: until Ctrl-C)")
    return p


def _print_status(st: dict[str, Any]) -> None:
    if st.get("safe_mode"):
        print("fixture   SAFE MODE on %s (firmware %s, %s)" % (st["board"], st["firmware_version"], st["runtime"]))
        print("          the firmware failed to start %d times; the motor is stopped" % st["failed_starts"])
        print("error     %s" % st["boot_error"].strip().replace("\n", "\n          "))
        print("next      'stackpress reset' tries again; 'stackpress flash' replaces the firmware")
        return
    print(
        "fixture   %s on %s (firmware %s, %s)"
        % (st["state"].upper(), st["board"], st["firmware_version"], st["runtime"])
    )
    print("pressure  %.4f MPa   setpoint %.3f MPa" % (st["pressure_mpa"], st["setpoint_mpa"]))
    print("force     %.2f N     cell area %.2f mm2" % (st["force_n"], st["cell_area_mm2"]))
    print("position  %.4f um    uptime %.1f s" % (st["position_um"], st["uptime_s"]))
    print("alarms    %s" % (", ".join(st["alarms"]) or "none"))


def cmd_sim(a: argparse.Namespace) -> int:
    from pathlib import Path

    from .firmware import FIRMWARE
    from .virtual.params import resolve
    from .virtual.sim import Sim

    try:
        fixture, scenario = resolve(a.scenario, a.fixture, a.set)
    except (OSError, ValueError, KeyError) as e:
        print("stackpress sim: %s" % (e.args[0] if isinstance(e, KeyError) else e), file=sys.stderr)
        return 2
    firmware = Path(a.firmware) if a.firmware else FIRMWARE
    if not (firmware / "main.py").is_file():
        print("stackpress sim: %s is not a firmware tree (it has no main.py)" % firmware, file=sys.stderr)
        return 2
    pico_files = None
    if a.board == "pico":
        from .virtual import pico

        try:
            pico_files = pico.check(a.uf2, a.bootrom)
            pico.check_load_cells(firmware, int(fixture["load_cells"]["count"]))
        except pico.PicoUnavailable as e:
            print("stackpress sim --board pico: %s" % e, file=sys.stderr)
            return 2
    elif a.uf2 or a.bootrom:
        print("stackpress sim: --uf2 and --bootrom are for --board pico", file=sys.stderr)
        return 2
    sim = Sim(
        speed=a.speed,
        seed=a.seed,
        fixture=fixture,
        scenario=scenario,
        flash=a.flash,
        heap=a.heap,
        truth=a.truth,
        truth_every=a.truth_every,
        link=a.link,
        status=a.status,
        label=_scenario_label(a),
        pause_at_s=a.pause_at,
        pico_files=pico_files,
        firmware=firmware,
    )
    port = sim.start()
    print("port: %s" % (a.link or port), flush=True)
    sim.run(a.duration)
    return 0


def _scenario_label(a: argparse.Namespace) -> str:
    """'standard.json, seed 0, fixture.adc.rate_sps=80': enough to run the same model again."""
    parts = [os.path.basename(a.scenario or "standard.json"), "seed %d" % a.seed]
    if a.fixture:
        parts.append("fixture " + os.path.basename(a.fixture))
    return ", ".join(parts + list(a.set))


def cmd_status(a: argparse.Namespace, link: FixtureLink) -> int:
    st = link.command("status")
    if a.json:
        print(json.dumps(st))
    else:
        _print_status(st)
    return 0


def _wait_for(
    link: FixtureLink, timeout_s: float, done: Callable[[dict[str, Any]], bool], line: Callable[[dict[str, Any]], str]
) -> tuple[dict[str, Any], int]:
    """Status until `done` (0), a fault (4) or timeout_s (1), with progress on a terminal."""
    progress = Progress()
    end = time.monotonic() + timeout_s
    try:
        while True:
            st = link.command("status")
            progress.show(line(st))
            if done(st):
                return st, 0
            if st["state"] == "fault":
                progress.end()
                print("fault: %s" % ", ".join(st["alarms"]), file=sys.stderr)
                return st, 4
            if time.monotonic() > end:
                return st, 1
            time.sleep(0.25)
    finally:
        progress.end()


def cmd_hold(a: argparse.Namespace, link: FixtureLink) -> int:
    r = link.command("hold", mpa=a.mpa)
    if not a.wait:
        print(json.dumps(r) if a.json else "ramping to %.3f MPa" % r["setpoint_mpa"])
        return 0
    if not a.json:
        print("ramping to %.3f MPa" % r["setpoint_mpa"])

    def holding(st):
        return st["state"] == "hold" and abs(st["pressure_mpa"] - a.mpa) <= 0.01 * a.mpa

    def line(st):
        return "%-7s %8.3f / %.3f MPa" % (st["state"], st["pressure_mpa"], a.mpa)

    st, code = _wait_for(link, a.timeout, holding, line)
    if code == 1:
        print("not holding within 1 %% after %.0f s" % a.timeout, file=sys.stderr)
    elif code == 0:
        print(json.dumps(st) if a.json else "holding %.3f MPa" % st["pressure_mpa"])
    return code


def cmd_release(a: argparse.Namespace, link: FixtureLink) -> int:
    r = link.command("release")
    if not a.wait:
        print(json.dumps(r) if a.json else _SAID["release"](r))
        return 0
    if not a.json:
        print(_SAID["release"](r))

    def line(st):
        return "%-7s %8.3f MPa" % (st["state"], st["pressure_mpa"])

    st, code = _wait_for(link, a.timeout, lambda st: st["state"] == "idle", line)
    if code == 1:
        print("not idle after %.0f s (state %s)" % (a.timeout, st["state"]), file=sys.stderr)
    elif code == 0:
        print(json.dumps(st) if a.json else "released: idle at %.3f MPa" % st["pressure_mpa"])
    return code


# What each simple command did, in a sentence (its reply's fields: firmware/stackpress/PROTOCOL.md).
_SAID: dict[str, Callable[[dict[str, Any]], str]] = {
    "release": lambda r: (
        "releasing: stepping the pressure down at release_rate_mpa_s, then backing off to idle "
        "('release --wait' waits for it)"
    ),
    "gap": lambda r: "holding the motor's position (gap): the pressure is recorded, not controlled",
    "idle": lambda r: "idle: the motor stands still; the self-locking drive keeps the load",
    "ack": lambda r: (
        "acknowledged %s; the fixture is in %s" % (", ".join(r["cleared"]), r["state"])
        if r.get("cleared")
        else "no alarm was latched; the fixture is in %s" % r.get("state")
    ),
    "tare": lambda r: "tared: the load cells read zero at %s counts" % ", ".join(str(c) for c in r["tare_counts"]),
    "lock": lambda r: (
        "locked: commands that change pressure are refused until 'stackpress unlock' (the fixture is in "
        "%s)" % r.get("state")
    ),
    "unlock": lambda r: "unlocked: commands that change pressure are taken again",
}


def _simple(name: str) -> Callable[[argparse.Namespace, FixtureLink], int]:
    def run(a, link):
        r = link.command(name)
        print(json.dumps(r) if a.json else _SAID[name](r))
        return 0

    return run


def cmd_config(a: argparse.Namespace, link: FixtureLink) -> int:
    if a.key in ("pull", "push", "diff"):
        from .fixtureconfig import ConfigFileError, config_file

        if not a.value:
            print("stackpress config %s: give the TOML file" % a.key, file=sys.stderr)
            return 2
        try:
            return config_file(link, a.key, a.value, a.json)
        except ConfigFileError as e:
            print("stackpress config: %s" % e, file=sys.stderr)
            return 2
    if a.key is None:
        from .fixtureconfig import settings

        cfg = settings(link, with_help=True)
        if a.json:
            print(json.dumps(cfg))
        else:
            for k, d in cfg.items():
                print("%-22s %12g %-6s (%g..%g) %s" % (k, d["value"], d["unit"], d["min"], d["max"], d["help"]))
        return 0
    if a.value is None:
        d = link.command("config")["config"].get(a.key)
        if d is None:
            raise DeviceError("unknown_key", "unknown setting %r" % a.key)
        print("%s = %g %s" % (a.key, d["value"], d["unit"]))
        return 0
    try:
        value = float(a.value)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        d = link.command("config")["config"].get(a.key)
        allowed = "" if d is None else " from %g to %g %s" % (d["min"], d["max"], d["unit"])
        print("stackpress config: %s takes a finite number%s, got %r" % (a.key, allowed, a.value), file=sys.stderr)
        return 2
    r = link.command("set", key=a.key, value=value)
    print("%s = %g %s" % (r["key"], r["value"], r["unit"]))
    return 0


def cmd_tune(a: argparse.Namespace, link: FixtureLink) -> int:
    from .tune import TuneError, Tuner

    progress = Progress()
    try:
        r = Tuner(link, progress.show).run(a.mpa)
    except TuneError as e:
        progress.end()
        print("stackpress tune: %s" % e, file=sys.stderr)
        return 1
    progress.clear()
    if a.json:
        print(json.dumps(r))
        return 0
    print(
        "stiffness %.3f N/um (was %.3f; up %.3f, down %.3f; probe %.3f um; drift %+.3f N per move removed)"
        % (
            r["stiffness_n_per_um"],
            r["previous_stiffness_n_per_um"],
            r["stiffness_up_down_n_per_um"][0],
            r["stiffness_up_down_n_per_um"][1],
            r["probe_um"],
            r["drift_n_per_move"],
        )
    )
    print(
        "resolution %.4f kPa per microstep; fastest ramp the motor allows %.2f MPa/s"
        % (r["kpa_per_microstep"], r["max_ramp_mpa_s"])
    )
    print("holding %.3f MPa with loop_gain %.2f" % (r["setpoint_mpa"], r["loop_gain"]))
    return 0


def cmd_jog(a: argparse.Namespace, link: FixtureLink) -> int:
    r = link.command("jog", um=a.um)
    print("moving %+.4f um (%d microsteps)" % (r["um"], r["steps"]))
    return 0


def _rotate(text: str) -> int | str:
    """'daily', or a size in bytes from '500KB', '100MB', '2GB'."""
    if text.lower() == "daily":
        return "daily"
    units = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
    t = text.strip().upper()
    num = t.rstrip("KMGB")
    try:
        n = float(num) * units[t[len(num) :]]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError("takes 'daily' or a size such as 500KB, 100MB, 2GB; got %r" % text) from None
    if n < 1000:
        raise argparse.ArgumentTypeError("a size of at least 1KB; got %r" % text)
    return int(n)


def _meta(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k.strip() or not k.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError("takes KEY=VALUE with a plain key (letters, digits, _), got %r" % text)
    return k.strip(), v.strip()


def cmd_log(a: argparse.Namespace) -> int:
    from .logfile import format_of
    from .logger import record

    ports = a.ports or ([a.port] if a.port and not a.all else [])
    if not ports and not a.all:
        raise LinkError("no port given: use --port PATH (repeatable), --all, or set STACKPRESS_PORT")
    daily = "daily" in a.rotate
    sizes = [r for r in a.rotate if r != "daily"]
    fmt = a.format or format_of(a.out)
    return record(
        ports,
        a.out,
        a.duration,
        scan=a.all,
        daily=daily,
        max_bytes=min(sizes) if sizes else None,
        fmt=fmt,
        as_json=a.json,
        notes=a.note,
        meta=dict(a.meta),
    )


def cmd_serve(a: argparse.Namespace) -> int:
    from .logger import record

    if not (a.out.endswith(os.sep) or os.path.isdir(a.out)):
        print("stackpress serve: --out takes a directory (ending in /): a log per fixture id", file=sys.stderr)
        return 2
    from .lab import observers
    from .mqtt import MqttError, client, parse_url
    from .notify import Rules

    if (a.mqtt_control or a.mqtt_ca) and not a.mqtt:
        print("stackpress serve: --mqtt-control and --mqtt-ca need --mqtt URL", file=sys.stderr)
        return 2
    try:
        broker = parse_url(a.mqtt, a.mqtt_ca) if a.mqtt else None
        if broker is not None:
            client(broker, "stackpress-check", persistent=False)  # its TLS settings, before any fixture
    except MqttError as e:
        print("stackpress serve: %s" % e, file=sys.stderr)
        return 2
    rules = Rules(a.notify_command, a.notify_url, a.notify_offline_s, a.notify_error_mpa)
    if (a.notify_error_mpa is not None or a.notify_offline_s != 300.0) and not rules.active:
        print("stackpress serve: --notify-* limits need --notify-command or --notify-url", file=sys.stderr)
        return 2
    if a.notify_error_mpa is not None and a.notify_error_mpa <= 0:
        print("stackpress serve: --notify-error-mpa takes a pressure above 0 MPa", file=sys.stderr)
        return 2
    daily = "daily" in a.rotate
    sizes = [r for r in a.rotate if r != "daily"]
    return record(
        a.ports,
        a.out,
        a.duration,
        scan=not a.ports,
        daily=daily,
        max_bytes=min(sizes) if sizes else None,
        fmt=a.format,
        as_json=a.json,
        meta=dict(a.meta),
        group=a.group,
        several=True,
        observe=observers(broker, a.mqtt_control, rules, dict(a.meta)),
    )


def cmd_note(a: argparse.Namespace) -> int:
    from .owner import socket_path
    from .remote import RemoteLink

    if not a.port:
        raise LinkError("no port given: use --port PATH or set STACKPRESS_PORT")
    path = socket_path(a.port)
    if not os.path.exists(path):
        raise LinkError(
            "no stackpress process is logging %s: a note goes into a running log "
            "('stackpress log --note' at its start)" % a.port
        )
    with RemoteLink(a.port, path) as link:
        link.note(a.text)
    print("noted in the log of %s" % a.port)
    return 0


def cmd_monitor(a: argparse.Namespace, link: FixtureLink) -> int:
    from .monitor import monitor

    return monitor(link, a.duration)


def _profile_file(a: argparse.Namespace) -> tuple[str, list[list[float | int]]]:
    from .profile import ProfileError, load

    if not a.file:
        print("stackpress profile %s: give the schedule's file (TOML)" % a.action, file=sys.stderr)
        raise SystemExit(2)
    try:
        return load(a.file)
    except ProfileError as e:
        print("stackpress profile: %s" % e, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_profile_check(a: argparse.Namespace) -> int:
    from .profile import describe

    name, steps = _profile_file(a)
    if a.json:
        print(json.dumps({"name": name, "steps": steps}))
    else:
        print("%s: %d steps, valid here (the fixture checks the pressures against its limits)" % (name, len(steps)))
        print("\n".join(describe(steps)))
    return 0


def cmd_profile(a: argparse.Namespace, link: FixtureLink) -> int:
    from .profile import UNTIL_STOPPED, describe, duration

    if a.action == "run":
        name, steps = _profile_file(a)
        limit = link.hello().get("max_line_bytes", 512)
        size = len(frame({"id": 99999, "cmd": "profile_set", "steps": steps}))
        if size > limit:
            print(
                "stackpress profile: the schedule is %d bytes as one command and the fixture takes %d: fewer "
                "steps, or numbers with fewer digits" % (size, limit),
                file=sys.stderr,
            )
            return 2
        link.command("profile_set", steps=steps)
        r = link.command("profile_run")
    elif a.action == "stop":
        r = link.command("profile_stop")
    else:
        r = link.command("profile")
    if a.json:
        print(json.dumps(r))
        return 0
    if a.action == "run":
        print("running '%s' on the fixture (it goes on without this host, and after a reset):" % name)
        print("\n".join(describe(steps)))
    if not r["running"]:
        print(
            "no profile running; the fixture is in %s at %.3f MPa%s"
            % (r["state"], r["setpoint_mpa"], " (stored: %d steps)" % len(r["steps"]) if r["steps"] else "")
        )
        return 0
    mpa, rate, hold = r["steps"][r["step"] - 1]
    if not r["holding"]:
        doing = "ramping to %.3f MPa at %g MPa/s" % (mpa, rate)
    elif hold == UNTIL_STOPPED:
        doing = "holding %.3f MPa until stopped (%s so far)" % (mpa, duration(r["held_s"]))
    else:
        doing = "holding %.3f MPa: %s of %s done, %s left" % (
            mpa,
            duration(r["held_s"]),
            duration(hold),
            duration(r["remaining_s"]),
        )
    print("step %d of %d: %s (state %s)" % (r["step"], len(r["steps"]), doing, r["state"]))
    return 0


def cmd_calibrate(a: argparse.Namespace, link: FixtureLink) -> int:
    from .calibrate import CalibrationError, calibrate

    try:
        at = [float(x) for x in a.at.split(",") if x.strip()]
    except ValueError:
        at = [math.nan]
    if not all(math.isfinite(f) for f in at):
        print("stackpress calibrate: --at takes finite forces in N separated by commas, got %r" % a.at, file=sys.stderr)
        return 2
    if not at or len(at) > 6 or min(at) <= 0:
        print("stackpress calibrate: --at takes 1 to 6 forces above 0 N", file=sys.stderr)
        return 2
    try:
        return calibrate(link, at, a.reference, a.yes, a.json)
    except CalibrationError as e:
        print(file=sys.stderr)
        print("stackpress calibrate: %s" % e, file=sys.stderr)
        return 4


def cmd_flash(a: argparse.Namespace) -> int:
    from .firmware import FIRMWARE
    from .flash import FlashError, flash

    if not a.port:
        raise LinkError("no port: give --port PATH or set STACKPRESS_PORT (a Pico is /dev/ttyACM0)")
    try:
        return flash(a.port, a.firmware or FIRMWARE, as_json=a.json)
    except FlashError as e:
        print("stackpress flash: %s" % e, file=sys.stderr)
        return 5


def cmd_list(a: argparse.Namespace) -> int:
    from . import discover

    found, other = [], []
    for port in discover.candidate_ports():
        hello, why = discover.probe(port)
        if hello:
            found.append(dict(hello, port=port))
        else:
            other.append({"port": port, "why": why})
    if a.json:
        print(json.dumps({"fixtures": found, "not_answering": other}))
        return 0
    for f in found:
        print(
            "%-40s fixture %s  %s board, firmware %s"
            % (f["port"], f.get("fixture_id"), f["board"], f["firmware_version"])
        )
    for o in other:
        print("%-40s not answering as a fixture: %s" % (o["port"], o["why"]))
    if not found and not other:
        print("no fixture found (a Pico on USB, or 'stackpress sim' running)", file=sys.stderr)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .report import ReportError, report

    try:
        return report(a.log, a.out, a.cycler, a.cycler_start, a.json)
    except ReportError as e:
        print(file=sys.stderr)
        print("stackpress report: %s" % e, file=sys.stderr)
        return 2


def cmd_repl(a: argparse.Namespace, link: FixtureLink) -> int:
    r = link.command("repl")
    print("fixture parked (it resumes '%s' after a reset); the REPL is on %s:" % (r["resume_on_reset"], a.port))
    print("  mpremote connect %s resume fs ls" % a.port)
    print("then 'stackpress reset' (or 'mpremote connect %s soft-reset' on the virtual fixture)." % a.port)
    return 0


def cmd_tempco(a: argparse.Namespace) -> int:
    from .logfile import LogError
    from .tempco import TempcoError, zero_tempco

    try:
        r = zero_tempco(a.log)
    except (TempcoError, LogError, OSError) as e:
        print("stackpress tempco: %s" % e, file=sys.stderr)
        return 2
    if a.apply:
        if r["new_n_per_k"] is None:
            print("stackpress tempco: the log does not say what the fixture had set; nothing applied", file=sys.stderr)
            return 2
        with open_link(a.port) as link:
            link.hello()
            link.command("set", key="load_cell_zero_n_per_k", value=round(r["new_n_per_k"], 4))
        r["applied"] = True
    if a.json:
        print(json.dumps(r))
        return 0
    print(
        "zero drift %+.4f N/K (standard error %.4f, a lower bound: the records are not independent) "
        "over %.2f K, %d records" % (r["drift_n_per_k"], r["stderr_n_per_k"], r["delta_t_k"], r["points"])
    )
    if r["new_n_per_k"] is not None:
        print(
            "load_cell_zero_n_per_k: %.4f in use when logged, %.4f with this drift taken out%s"
            % (r["in_use_n_per_k"], r["new_n_per_k"], " (set)" if a.apply else "; --apply sets it")
        )
    return 0


def cmd_reset(a: argparse.Namespace) -> int:
    from .reset import reset

    return reset(a.port)


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import demo

    return demo(a.speed, a.mpa, a.duration)


LINKED = {
    "status": cmd_status,
    "hold": cmd_hold,
    "release": cmd_release,
    "gap": _simple("gap"),
    "idle": _simple("idle"),
    "ack": _simple("ack"),
    "tare": _simple("tare"),
    "lock": _simple("lock"),
    "unlock": _simple("unlock"),
    "config": cmd_config,
    "tune": cmd_tune,
    "jog": cmd_jog,
    "monitor": cmd_monitor,
    "repl": cmd_repl,
    "profile": cmd_profile,
    "calibrate": cmd_calibrate,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `stackpress status | head -1`: the reader had what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more at exit either
        return 0


def _main(argv: Sequence[str] | None) -> int:
    if os.environ.get("STACKPRESS_DEBUG"):
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    a = build_parser().parse_args(argv)
    from .owner import PROGRAM

    PROGRAM[0] = " ".join(
        ["stackpress", a.cmd]
        + ([a.action] if a.cmd == "profile" else [])
        + ([a.key] if a.cmd == "config" and a.key else [])
    )
    try:
        if a.cmd in AT_A_PORT and not a.port and not (a.cmd == "profile" and a.action == "check"):
            from .discover import only_fixture

            a.port = only_fixture()
            print("stackpress: %s, the only fixture attached" % a.port, file=sys.stderr)
        if a.cmd == "sim":
            return cmd_sim(a)
        if a.cmd == "reset":
            return cmd_reset(a)
        if a.cmd == "demo":
            return cmd_demo(a)
        if a.cmd == "profile" and a.action == "check":
            return cmd_profile_check(a)
        if a.cmd == "report":
            return cmd_report(a)
        if a.cmd == "flash":
            return cmd_flash(a)
        if a.cmd == "log":
            return cmd_log(a)
        if a.cmd == "serve":
            return cmd_serve(a)
        if a.cmd == "note":
            return cmd_note(a)
        if a.cmd == "fleet":
            from .fleet import cmd_fleet

            return cmd_fleet(a)
        if a.cmd == "list":
            return cmd_list(a)
        if a.cmd == "tempco":
            return cmd_tempco(a)
        with open_link(a.port) as link:
            link.hello()
            return LINKED[a.cmd](a, link)
    except LinkError as e:
        print("stackpress: %s" % e, file=sys.stderr)
        return 3
    except DeviceError as e:
        print("stackpress: refused (%s): %s" % (e.code, e.msg), file=sys.stderr)
        return 4
    except BadValue as e:
        print("stackpress: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
