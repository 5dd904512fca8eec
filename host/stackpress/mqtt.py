"""The lab network: the broker's address, the topic tree, and a connected MQTT client.

`stackpress serve --mqtt URL` publishes each fixture it serves under
`stackpress/<fixture_id>/` (fixture_id: the firmware's 16 hex digits):

- `online` (retained, QoS 1): `online` while serve has the fixture; `offline` when serve
  stops, loses the fixture, or (the broker's last will) its connection dies.
- `status` (retained, QoS 1): the fixture now: its `status` reply overlaid with its newest
  record, test metadata, host, `connected`, `updated_utc`; every 5 s and on change.
- `telemetry`, `event` (QoS 2): every record once, in order, with `measured_utc`, units in
  the names (firmware/stackpress/PROTOCOL.md has the fields).
- `audit` (QoS 1): what people did (commands that change something, notes), by whom.
- `notification` (QoS 1): what --notify-* told people, and how the sending went.
- `command/<user>`, `reply/<user>` (QoS 1): commands with --mqtt-control (publisher.py);
  the broker's ACL lets a user publish only under their own name.

A late subscriber gets `online` and `status` at once (retained); telemetry and events are
not retained: they are a stream, and the log has the past. QoS 2 with a persistent
session (a fixed client id per fixture, clean session off) is what keeps a record from
reaching a subscriber twice when a connection drops mid-handshake; every record also
carries `boot`, `boot_id` and `seq`, so a consumer can check it for itself.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .timebase import utc_text

ROOT = "stackpress"
PASSWORD_ENV = "STACKPRESS_MQTT_PASSWORD"


class MqttError(Exception):
    """A broker URL that can't be used, or a broker that can't be reached."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    user: str | None
    password: str | None
    ca_file: str | None = None  # the lab's own CA for mqtts:// (default: the system's)

    def __str__(self) -> str:
        who = "%s@" % self.user if self.user else ""
        return "%s://%s%s:%d" % ("mqtts" if self.tls else "mqtt", who, self.host, self.port)


def parse_url(url: str, ca_file: str | None = None) -> Broker:
    """mqtt://[user[:password]@]host[:port] or mqtts://... (TLS, port 8883 by default). The
    password may come from the environment (STACKPRESS_MQTT_PASSWORD) instead, so that it
    is not on a command line that every user of the computer can read. `ca_file`: the
    certificate of the CA that signed the broker's, for a lab's own CA."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise MqttError("broker %r: give mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)" % url)
    try:
        port = u.port or (8883 if u.scheme == "mqtts" else 1883)
    except ValueError:
        raise MqttError("broker %r: the port is not a number from 1 to 65535" % url) from None
    user = urllib.parse.unquote(u.username) if u.username else None
    password = urllib.parse.unquote(u.password) if u.password else os.environ.get(PASSWORD_ENV) if user else None
    if ca_file is not None:
        if u.scheme != "mqtts":
            raise MqttError("a CA certificate is for a TLS broker: mqtts://%s" % url.split("://", 1)[-1])
        if not os.path.isfile(ca_file):
            raise MqttError("no CA certificate file %s" % ca_file)
    return Broker(u.hostname, port, u.scheme == "mqtts", user, password, ca_file)


def topic(fixture_id: str, leaf: str) -> str:
    return "%s/%s/%s" % (ROOT, fixture_id, leaf)


def split(t: str) -> tuple[str, str] | None:
    """(fixture_id, leaf) of a topic in the tree, else None."""
    parts = t.split("/", 2)
    if len(parts) != 3 or parts[0] != ROOT:
        return None
    return parts[1], parts[2]


def dumps(obj: dict[str, Any]) -> bytes:
    """JSON as the tree carries it: NaN and infinity (never sent by a fixture) as null."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def record_payload(
    fixture_id: str, rec: dict[str, Any], boot_id: str | None, measured_unix_ms: float, source: str | None
) -> dict[str, Any]:
    """A telemetry or event record as published: the fixture's own fields (units in their
    names, firmware/stackpress/PROTOCOL.md), placed in UTC as the log places it (as text and
    as Unix milliseconds, for Telegraf and the like)."""
    measured_utc = utc_text(measured_unix_ms)
    measured_unix_ms = round(measured_unix_ms)
    out: dict[str, Any] = {
        "fixture_id": fixture_id,
        "boot": rec.get("boot"),
        "boot_id": rec.get("boot_id", boot_id) if rec.get("kind") == "boot" else boot_id,
        "seq": rec.get("seq"),
        "device_ms": rec.get("device_ms"),
        "measured_utc": measured_utc,
        "measured_unix_ms": measured_unix_ms,
        "time_source": source,
    }
    out.update((k, rec[k]) for k in sorted(rec) if k not in out and k != "t")
    return out


def client(broker: Broker, client_id: str, persistent: bool, will: tuple[str, bytes] | None = None) -> Any:
    """A paho client for `broker` (not connected yet): MQTT 3.1.1, whose persistent
    sessions Mosquitto keeps across its restarts; reconnects with backoff up to 30 s."""
    try:
        from paho.mqtt import client as paho
    except ImportError:
        raise MqttError("MQTT needs the paho-mqtt package: pip install 'paho-mqtt>=2' (make setup has it)") from None
    c = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=paho.MQTTv311,
    )
    if broker.user:
        c.username_pw_set(broker.user, broker.password)
    if broker.tls:
        try:
            c.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        except ssl.SSLError as e:
            raise MqttError("the CA certificate %s: %s" % (broker.ca_file, e)) from None
    if will:
        c.will_set(will[0], will[1], qos=1, retain=True)
    c.reconnect_delay_set(min_delay=1, max_delay=30)
    c.max_queued_messages_set(0)
    return c


def host_name() -> str:
    return socket.gethostname()
