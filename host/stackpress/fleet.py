"""`stackpress fleet --mqtt URL`: every fixture the lab's broker knows, from any computer
that reaches it. Built from the retained `status` and `online` topics (so a fixture shows
at once) and kept live by `telemetry`; "last seen" is when this view last heard of it."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
import time
import uuid
from typing import Any

from . import mqtt
from .notify import Notifier, Rules
from .timebase import utc_text

STALE_S = 30.0  # a fixture unheard of this long is shown as such (its serve may be gone)


class Fleet:
    def __init__(self) -> None:
        self.fixtures: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.heard = threading.Event()

    def take(self, topic: str, payload: bytes) -> None:
        where = mqtt.split(topic)
        if where is None:
            return
        fid, leaf = where
        if leaf not in ("status", "online", "telemetry"):
            return
        with self.lock:
            f = self.fixtures.setdefault(fid, {"fixture_id": fid})
            if leaf == "online":
                f["online"] = payload.decode(errors="replace") == "online"
            else:
                try:
                    body = json.loads(payload)
                except ValueError:
                    return
                if not isinstance(body, dict):
                    return
                if leaf == "status":
                    f.update(body)
                else:
                    f.update(body)  # the newest reading, between the status's updates
            p, sp = f.get("pressure_mpa"), f.get("setpoint_mpa")
            f["error_mpa"] = p - sp if isinstance(p, (int, float)) and isinstance(sp, (int, float)) else None
            f["last_heard_utc"] = utc_text(time.time() * 1000)
            f["_heard"] = time.monotonic()
        self.heard.set()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
            out = {}
            for fid, f in sorted(self.fixtures.items()):
                g = {k: v for k, v in f.items() if not k.startswith("_")}
                g["heard_s_ago"] = round(now - f["_heard"], 1)
                out[fid] = g
            return out


def _connect(url: str, ca_file: str | None, fleet: Fleet) -> Any:
    broker = mqtt.parse_url(url, ca_file)
    c = mqtt.client(broker, "stackpress-fleet-%s" % uuid.uuid4().hex[:12], persistent=False)
    answer: list[Any] = []
    answered = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        answer.append(reason)
        answered.set()
        if not reason.is_failure:
            for leaf in ("status", "online", "telemetry"):
                client.subscribe(mqtt.topic("+", leaf), qos=0)

    c.on_connect = on_connect
    c.on_message = lambda client, userdata, msg: fleet.take(msg.topic, msg.payload)
    try:
        c.connect(broker.host, broker.port, keepalive=30)
    except ssl.SSLCertVerificationError as e:
        raise mqtt.MqttError(
            "the broker %s: its certificate is not trusted here (%s): --mqtt-ca the lab CA's certificate"
            % (broker, e.verify_message)
        ) from None
    except OSError as e:
        raise mqtt.MqttError("can't reach the broker %s: %s" % (broker, e.strerror or e)) from None
    c.loop_start()
    if not answered.wait(10):
        c.loop_stop()
        raise mqtt.MqttError("the broker %s did not answer within 10 s" % broker)
    if answer[0].is_failure:
        c.loop_stop()
        raise mqtt.MqttError("the broker %s refused: %s (user and password: serve --mqtt)" % (broker, answer[0]))
    return c


def _num(v: Any, fmt: str) -> str:
    return fmt % v if isinstance(v, (int, float)) else "-"


def seen(f: dict[str, Any]) -> str:
    if f.get("online") is False or f.get("connected") is False:
        return "offline"
    if f["heard_s_ago"] > STALE_S:
        return "unheard %.0f s" % f["heard_s_ago"]
    return "%.0f s ago" % f["heard_s_ago"]


def rows(snap: dict[str, dict[str, Any]]) -> list[list[str]]:
    out = []
    for fid, f in snap.items():
        meta = f.get("meta") or {}
        name = meta.get("fixture") or meta.get("cell")
        out.append(
            [
                "%s %s" % (fid[:6], name) if name else fid,
                str(f.get("host") or "-"),
                str(f.get("state") or "-"),
                "%s / %s" % (_num(f.get("pressure_mpa"), "%.3f"), _num(f.get("setpoint_mpa"), "%.3f")),
                _num(None if f.get("error_mpa") is None else f["error_mpa"] * 1000, "%+.1f"),
                _num(f.get("thickness_um"), "%.2f"),
                ", ".join(f.get("alarms") or []) or "-",
                seen(f),
            ]
        )
    return out


HEADERS = ["fixture", "host", "state", "MPa now / set", "err kPa", "Δd µm", "alarms", "last seen"]


def table(snap: dict[str, dict[str, Any]], url: str) -> Any:
    from rich.table import Table

    t = Table(
        title="stackpress fleet on %s: %d fixture%s" % (url, len(snap), "" if len(snap) == 1 else "s"),
        caption="Δd: the cell's thickness change since its hold settled; Ctrl-C ends",
    )
    for h in HEADERS:
        t.add_column(h, justify="right" if "MPa" in h or "kPa" in h or "µm" in h else "left")
    for r in rows(snap):
        style = "bold red" if r[6] != "-" else "yellow" if r[7] == "offline" or r[7].startswith("unheard") else None
        t.add_row(*r, style=style)
    return t


class Watch:
    """fleet --notify-*: a fixture whose serve went silent (its computer died, its network)
    can't tell anyone itself; the broker's last will and this watch do."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.notifiers: dict[str, Notifier] = {}

    def update(self, snap: dict[str, dict[str, Any]]) -> None:
        for fid, f in snap.items():
            n = self.notifiers.get(fid)
            if n is None:
                n = self.notifiers[fid] = Notifier(self.rules, fid, f.get("meta") or {}, _say)
                n.offline_why = "offline on the broker (its serve, computer or network gone)"
            n.fixture_link(seen(f) != "offline" and f["heard_s_ago"] <= self.rules.offline_s)
            n.tick()

    def close(self) -> None:
        for n in self.notifiers.values():
            n.close()


def _say(text: str) -> None:
    print("stackpress fleet: %s" % text, file=sys.stderr, flush=True)


def cmd_fleet(a: argparse.Namespace) -> int:
    fleet = Fleet()
    try:
        c = _connect(a.mqtt, a.mqtt_ca, fleet)
    except mqtt.MqttError as e:
        print("stackpress fleet: %s" % e, file=sys.stderr)
        return 3
    try:
        if a.once:
            time.sleep(max(0.0, a.wait))
            snap = fleet.snapshot()
            if a.json:
                print(json.dumps({"fixtures": snap}))
            else:
                from rich.console import Console

                if snap:
                    Console().print(table(snap, a.mqtt))
                else:
                    print("no fixture on %s (none served with 'stackpress serve --mqtt')" % a.mqtt)
            return 0
        rules = Rules(a.notify_command, a.notify_url, a.notify_offline_s)
        watch = Watch(rules) if rules.active else None
        end = None if a.duration is None else time.monotonic() + a.duration
        try:
            if a.json:  # one line per second: the fleet now
                while end is None or time.monotonic() < end:
                    snap = fleet.snapshot()
                    if watch:
                        watch.update(snap)
                    print(json.dumps({"utc": utc_text(time.time() * 1000), "fixtures": snap}), flush=True)
                    time.sleep(1.0)
                return 0
            from rich.live import Live

            with Live(table({}, a.mqtt), refresh_per_second=2, screen=False) as live:
                while end is None or time.monotonic() < end:
                    snap = fleet.snapshot()
                    if watch:
                        watch.update(snap)
                    live.update(table(snap, a.mqtt))
                    time.sleep(0.5)
            return 0
        finally:
            if watch:
                watch.close()
    except KeyboardInterrupt:
        return 0
    finally:
        c.disconnect()
        c.loop_stop()
