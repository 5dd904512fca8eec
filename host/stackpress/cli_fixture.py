"""The commands that talk to one fixture (status, hold, release, config, tune, profile,
calibrate, ...): each gets the parsed arguments and a link to the fixture, says what happened
in a sentence (or the reply with --json), and returns its exit code (cli_grammar.EXIT_CODES)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .link import DeviceError
from .progress import Progress
from .protocol import frame, state_words

if TYPE_CHECKING:
    from stackpress.connect import FixtureLink


def _optional(st: dict[str, Any], key: str, fmt: str, none: str = "-") -> str:
    v = st.get(key)
    return none if v is None else fmt % v


def _print_status(st: dict[str, Any]) -> None:
    if st.get("safe_mode"):
        print("fixture   SAFE MODE on %s (firmware %s, %s)" % (st["board"], st["firmware_version"], st["runtime"]))
        print("          the firmware failed to start %d times; the motor is stopped" % st["failed_starts"])
        print("error     %s" % st["boot_error"].strip().replace("\n", "\n          "))
        print("next      'stackpress reset' tries again; 'stackpress flash' replaces the firmware")
        return
    print(
        "fixture   %s %s on %s (firmware %s, %s)%s"
        % (
            st.get("fixture_id", "?"),
            st["state"].upper(),
            st["board"],
            st["firmware_version"],
            st["runtime"],
            ", LOCKED (stackpress unlock)" if st.get("locked") else "",
        )
    )
    unsure = st.get("pressure_uncertainty_mpa")
    print(
        "pressure  %.4f MPa   setpoint %.3f MPa%s"
        % (
            st["pressure_mpa"],
            st["setpoint_mpa"],
            "   an estimate, within ±%.3f MPa (a load cell left out)" % unsure if unsure is not None else "",
        )
    )
    print("force     %.2f N   cell area %.2f mm²" % (st["force_n"], st["cell_area_mm2"]))
    for i, ch in enumerate(st.get("channels") or []):
        print(
            "          load cell %d: %.2f N, %s%s"
            % (i, ch["force_n"], ch["state"], ", %.1f %% of the load" % ch["share_pct"] if ch.get("share_pct") else "")
        )
    if st.get("channels"):
        print(
            "          uniformity %s   load centre %s"
            % (
                _optional(st, "uniformity_pct", "%.2f %%"),
                "(%.3f, %.3f) mm" % tuple(st["centre_offset_mm"]) if st.get("centre_offset_mm") else "-",
            )
        )
    print(
        "cell      thickness %s%s   frame %s"
        % (
            _optional(st, "thickness_um", "%+.3f µm", "- (no reference yet: it is taken when a hold settles)"),
            "  (%.3f µm of it while the springs slid)" % st["thickness_slip_um"] if st.get("thickness_slip_um") else "",
            _optional(st, "temperature_c", "%.2f °C"),
        )
    )
    print("position  %.4f µm%s" % (st["position_um"], "   moving" if st.get("moving") else ""))
    if st.get("profile_running"):
        print("profile   running, step %s (stackpress profile status)" % st.get("profile_step"))
    print("alarms    %s" % (", ".join(st["alarms"]) + " (stackpress ack, once seen to)" if st["alarms"] else "none"))
    print(
        "uptime    %.1f s, boot %s (%s)   record %s"
        % (st["uptime_s"], st.get("boot", "?"), st.get("reset_cause", "?"), st.get("seq", "?"))
    )


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
        print("not idle after %.0f s: the fixture is %s" % (a.timeout, state_words(st["state"])), file=sys.stderr)
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
        "acknowledged %s; the fixture is %s" % (", ".join(r["cleared"]), state_words(r["state"]))
        if r.get("cleared")
        else "no alarm was latched; the fixture is %s" % state_words(r.get("state", "?"))
    ),
    "tare": lambda r: "tared: the load cells read zero at %s counts" % ", ".join(str(c) for c in r["tare_counts"]),
    "lock": lambda r: (
        "locked: commands that change pressure are refused until 'stackpress unlock' (the fixture is "
        "%s)" % state_words(r.get("state", "?"))
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
    print(json.dumps(r) if a.json else "moving %+.4f µm (%d microsteps)" % (r["um"], r["steps"]))
    return 0


def cmd_analog(a: argparse.Namespace, link: FixtureLink) -> int:
    from .analog import AnalogError, fit, parse_points

    if a.action == "stop":
        r = link.command("analog_test", v=None)
        print(json.dumps(r) if a.json else "the analog output follows the pressure again")
        return 0
    if a.action == "test":
        if len(a.values) != 1:
            print("stackpress analog test: give one voltage (e.g. analog test 1.5)", file=sys.stderr)
            return 2
        try:
            v = float(a.values[0])
        except ValueError:
            print("stackpress analog test: %r is not a voltage" % a.values[0], file=sys.stderr)
            return 2
        r = link.command("analog_test", v=v, s=a.seconds)
        if a.json:
            print(json.dumps(r))
        else:
            print(
                "the analog output holds %.4f V (DAC code %d) for %g s: read the cycler's aux input now, "
                "then give it to 'stackpress analog fit %d:VOLTS ...' with the other points"
                % (r["v"], r["code"], r["s"], r["code"])
            )
        return 0
    try:
        points = parse_points(a.values)
        cfg = link.command("config")["config"]
        r = fit(points, cfg["analog_out_mpa_per_v"]["value"])
    except AnalogError as e:
        print("stackpress analog fit: %s" % e, file=sys.stderr)
        return 2
    if a.apply:
        for key in ("analog_out_zero_v", "analog_out_full_scale_v"):
            link.command("set", key=key, value=r[key])
        r["applied"] = True
    if a.json:
        print(json.dumps(r))
        return 0
    print(
        "the DAC: %.4f V at code 0, %.4f V at full scale (set: %.4f and %.4f)%s"
        % (
            r["analog_out_zero_v"],
            r["analog_out_full_scale_v"],
            cfg["analog_out_zero_v"]["value"],
            cfg["analog_out_full_scale_v"]["value"],
            "; now set" if a.apply else "; --apply sets them",
        )
    )
    print(
        "left over (the DAC's nonlinearity and the reading): at most %.2f mV, %.4f MPa, over %d points"
        % (r["residual_max_mv"], r["residual_max_mpa"], r["points"])
    )
    return 0


def cmd_monitor(a: argparse.Namespace, link: FixtureLink) -> int:
    from .monitor import monitor

    return monitor(link, a.duration, as_json=a.json)


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
        stored = " (stored: %d steps)" % len(r["steps"]) if r["steps"] else ""
        state = state_words(r["state"])
        print("no profile running; the fixture is %s at %.3f MPa%s" % (state, r["setpoint_mpa"], stored))
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


def cmd_repl(a: argparse.Namespace, link: FixtureLink) -> int:
    r = link.command("repl")
    if a.json:
        print(json.dumps(dict(r, port=a.port)))
        return 0
    print("fixture parked (it resumes '%s' after a reset); the REPL is on %s:" % (r["resume_on_reset"], a.port))
    print("  mpremote connect %s resume fs ls" % a.port)
    print("then 'stackpress reset' (or 'mpremote connect %s soft-reset' on the virtual fixture)." % a.port)
    return 0
