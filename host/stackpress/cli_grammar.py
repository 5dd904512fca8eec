"""The command line's grammar: every command, its arguments and their checks, its help
and an example. `stackpress COMMAND --help` prints what is here."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

EXIT_CODES = (
    "The stackpress command line. Exit codes: 0 ok, 1 ended short of its goal (a wait timed\n"
    "out, a logger stopped early), 2 usage, 3 fixture (or broker) unreachable, 4 the fixture\n"
    "refused (the message says why and what is allowed), 5 flashing failed (the message says\n"
    "what to do), 130 interrupted."
)
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
    "export": "stackpress export run1.csv --cycler cell7.mpr --format bdf --out cell7.bdf.csv",
    "flash": "stackpress --port /dev/ttyACM0 flash",
    "list": "stackpress list --json",
    "serve": "stackpress serve --out /var/lib/stackpress/ --rotate daily --group lab --mqtt mqtt://rack3@broker.lab",
    "fleet": "stackpress fleet --mqtt mqtt://broker.lab   (or: --once --json)",
    "note": "stackpress note 'cell 7: electrolyte refilled, cycling resumed'",
    "calibrate": "stackpress calibrate --at 500,2000,4000 --reference 'HBM C10 s/n 123, cert 2026-10-01'",
    "tempco": "stackpress tempco soak.csv --apply",
    "analog": "stackpress analog test 1.5   (read the cycler's aux input; then: analog fit 1861:1.503 ... --apply)",
}


SPEED_RANGE = (0.001, 1e6)


# Commands that reach one fixture: they take --port after the command too.
AT_A_PORT = (
    "status", "hold", "release", "gap", "idle", "ack", "tare", "lock", "unlock", "config", "tune", "jog",
    "monitor", "repl", "profile", "calibrate", "flash", "reset", "note", "analog",
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
        prog="stackpress", description=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
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
    s.add_argument("--json", action="store_true", help='the first line as JSON: {"port": PATH}')
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
    s.add_argument(
        "--cycler-out",
        help="write the virtual cycler's own export here (CSV: its voltage, current, cycle, step, the "
        "fixture's analog output on its aux input, its fault line; merge with --cycler-align device)",
    )
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
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
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
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add(
        "monitor",
        "live view of the fixture. Keys: a acknowledges latched alarms; s asks for a new setpoint "
        "(type MPa, Enter, then y to confirm; Esc cancels); q quits. Without a terminal it prints "
        "plain lines, and keys can be piped in",
    )
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to run (default: until Ctrl-C)")
    s.add_argument("--json", action="store_true", help="no panel: each record (one a second) and event as a JSON line")
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
    _cycler_arguments(s)
    s.add_argument("--cycler-start", dest="cycler_align", help=argparse.SUPPRESS)  # the earlier name
    s.add_argument("--json", action="store_true", help="the summary as one JSON object")
    s = add(
        "export",
        "a log, with the cycler's file, as one table on one time axis: Battery Data Format, CSV or Parquet",
    )
    s.add_argument("log", nargs="+", help="a log written by 'stackpress log', or all the files of a rotating one")
    s.add_argument(
        "--format",
        choices=("bdf", "csv", "parquet"),
        default="bdf",
        help="bdf: BDF's column labels (ontology 1.3.0; needs --cycler, for Voltage and Current), as CSV, "
        "or Parquet if --out ends .parquet; csv, parquet: stackpress's column names (default: bdf)",
    )
    s.add_argument("--out", help="the file to write (default: beside the log, run1.csv -> run1.bdf.csv)")
    _cycler_arguments(s)
    s.add_argument("--json", action="store_true", help="what was written, as one JSON object")
    s = add(
        "analog",
        "check the analog pressure output against the cycler's input: test V (hold a test voltage), "
        "stop, fit CODE:VOLTS ... (the DAC's ends from what was read)",
    )
    s.add_argument("action", choices=["test", "stop", "fit"])
    s.add_argument("values", nargs="*", help="test: the volts (0 to the DAC's full scale); fit: CODE:VOLTS pairs")
    s.add_argument(
        "--seconds", type=_finite("--seconds (s)"), default=60.0, help="test: how long it holds (default 60)"
    )
    s.add_argument("--apply", action="store_true", help="fit: set analog_out_zero_v and analog_out_full_scale_v")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add(
        "tempco",
        "the load cells' zero drift per K, from a log of the unloaded fixture through a temperature change",
    )
    s.add_argument("log", help="a log written by 'stackpress log' while the fixture was released and idle")
    s.add_argument("--apply", action="store_true", help="set load_cell_zero_n_per_k on the fixture (needs --port)")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("list", "the fixtures attached to this computer (Picos on USB, running 'stackpress sim's)")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("repl", "park the fixture and hand the serial line to the MicroPython REPL (for mpremote)")
    s.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    s = add("reset", "restart the fixture's firmware (it resumes what it was doing)")
    s.add_argument("--json", action="store_true", help="the restarted firmware's hello, as one JSON object")
    s = add("demo", "start the virtual fixture, hold 40 MPa, and watch it live")
    s.add_argument("--speed", type=_speed, default=50.0, help="times real time (default 50)")
    s.add_argument("--mpa", type=_finite("--mpa (MPa)"), default=40.0, help="setpoint (default 40)")
    s.add_argument("--duration", type=_finite("--duration (s)"), help="seconds to run (default: until Ctrl-C)")
    return p


def _cycler_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--cycler",
        help="the cycler's own file: EC-Lab .mpr/.mpt, Arbin .res/.xlsx, Neware .nda/.ndax, Maccor text, "
        "BDF .csv (pip install 'stackpress[cycler]'), or a CSV with a time column",
    )
    s.add_argument(
        "--cycler-tz",
        help="the zone of the cycler's local times (Europe/Berlin, UTC, +02:00, --cycler-tz=-05:00; "
        "default: this computer's)",
    )
    s.add_argument(
        "--cycler-align",
        help="'start': the cycler's start at the log's first record; 'device': its test time is the "
        "fixture's clock (the virtual fixture's cycler, sim --cycler-out); or a time (ISO 8601, UTC unless "
        "it says) for the cycler's start (default: by the two clocks)",
    )


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
