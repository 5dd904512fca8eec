"""The commands that run a program of their own rather than one exchange with a fixture:
the virtual fixture, the logger and the service, flashing, reports, and the like. Each gets
the parsed arguments and returns its exit code (cli_grammar.EXIT_CODES)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .connect import open_link
from .link import LinkError


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
        cycler_out=a.cycler_out,
        link=a.link,
        status=a.status,
        label=_scenario_label(a),
        pause_at_s=a.pause_at,
        pico_files=pico_files,
        firmware=firmware,
    )
    port = sim.start()
    print(json.dumps({"port": a.link or port}) if a.json else "port: %s" % (a.link or port), flush=True)
    sim.run(a.duration)
    return 0


def _scenario_label(a: argparse.Namespace) -> str:
    """'standard.json, seed 0, fixture.adc.rate_sps=80': enough to run the same model again."""
    parts = [os.path.basename(a.scenario or "standard.json"), "seed %d" % a.seed]
    if a.fixture:
        parts.append("fixture " + os.path.basename(a.fixture))
    return ", ".join(parts + list(a.set))


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
    print(json.dumps({"noted": a.text, "port": a.port}) if a.json else "noted in the log of %s" % a.port)
    return 0


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
        return report(a.log, a.out, a.cycler, a.cycler_align, a.json, a.cycler_tz)
    except ReportError as e:
        print(file=sys.stderr)
        print("stackpress report: %s" % e, file=sys.stderr)
        return 2


def cmd_export(a: argparse.Namespace) -> int:
    from .export import ExportError, export

    try:
        return export(a.log, a.format, a.out, a.cycler, a.cycler_align, a.cycler_tz, a.json)
    except ExportError as e:
        print(file=sys.stderr)
        print("stackpress export: %s" % e, file=sys.stderr)
        return 2


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

    return reset(a.port, a.json)


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import demo

    return demo(a.speed, a.mpa, a.duration)
