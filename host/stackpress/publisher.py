"""One served fixture on the lab's MQTT broker: what it does, published (topics: mqtt.py);
and, with --mqtt-control, commands from the broker's users.

The logger hands over each record as it writes it, once, in order; this publishes it from
a bounded backlog, a few hundred in flight at a time, so a broker that is away for hours
costs memory up to BACKLOG_RECORDS and no more. While the broker is away records wait;
what is in flight when a connection drops is resent by paho in the same persistent
session, whose QoS 2 handshake the broker remembers (Mosquitto keeps it across its own
restart with `persistence true`), so no record reaches a subscriber twice. Past the
backlog the oldest records are dropped, counted and said in the log and on the broker:
never silently.

Commands over MQTT (off by default): a user publishes JSON to
`stackpress/<id>/command/<user>`, where the broker's ACL (`pattern write
stackpress/+/command/%u`) makes <user> the name they logged in with; the answer goes to
`reply/<user>`. Only commands that a person on the network may need are taken, each
stating what the sender believed the fixture was doing (`expect`); the rest (lock,
unlock, settings, calibration, the REPL) stay on the fixture's own computer, so a locked
fixture stays locked whatever arrives.
"""

from __future__ import annotations

import collections
import json
import math
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import mqtt
from .link import DeviceError, LinkError
from .protocol import BadValue
from .timebase import utc_text

# Records kept while the broker is away: ~30 MB with three load cells; 14 h at the default
# record a second, far longer than the fixture's own history (329-400 records).
BACKLOG_RECORDS = 50_000
IN_FLIGHT = 200
STATUS_EVERY_S = 5.0
# What a user on the broker may ask: reading, and changing the running test's setpoint
# or mode. Each that changes force must say what the sender saw (`expect`).
READ_ONLY = ("hello", "status", "config", "profile", "schema")
MOVES = ("hold", "gap", "idle", "release", "ack", "profile_run", "profile_stop")
ONLY_LOCAL = "lock, unlock, set, tare, calibration, jog, profile_set, repl, reset and flash"


class ControlError(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _request(payload: bytes) -> dict[str, Any]:
    """A command as a user sent it: a JSON object."""
    try:
        req = json.loads(payload)
    except ValueError:
        req = None
    if not isinstance(req, dict):
        raise ControlError("json", 'a command is a JSON object: {"cmd": ..., "args": {...}, "expect": {...}}')
    return req


def _finite(value: Any) -> None:
    """NaN and infinity (which Python's JSON lets through) are no number a fixture takes."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ControlError("range", "%r is not a number a fixture takes" % value)
    if isinstance(value, dict):
        for v in value.values():
            _finite(v)
    elif isinstance(value, list):
        for v in value:
            _finite(v)


class FixturePublisher:
    """`stackpress/<fixture_id>/...` for one fixture. `command_as(user, cmd, args)` sends a
    command to the fixture on behalf of a broker user; `mark(text)` notes in the log."""

    def __init__(
        self,
        broker: mqtt.Broker,
        fixture_id: str,
        meta: dict[str, Any],
        control: bool,
        command_as: Callable[[str, str, dict[str, Any]], dict[str, Any]],
        mark: Callable[[str], None],
    ) -> None:
        self.fixture_id = fixture_id
        self.meta = meta
        self.control = control
        self.command_as = command_as
        self.mark = mark
        self.backlog: collections.deque[tuple[str, bytes, int]] = collections.deque()
        self.dropped = 0
        self.sent = 0
        self.acked = 0  # written by paho's thread only
        self.connected = False
        self.fixture_connected = True
        self._status: dict[str, Any] = {}
        self._status_due = True
        self._cv = threading.Condition()
        self._closing = False
        self._said_down = False
        self._was_connected = False
        self.broker = broker
        self._commands: queue.Queue[Any] = queue.Queue(maxsize=16)
        self.c = mqtt.client(broker, "stackpress-%s" % fixture_id, persistent=True, will=(self.t("online"), b"offline"))
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.on_connect_fail = self._on_connect_fail
        self.c.connect_async(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        threading.Thread(target=self._pump, daemon=True, name="mqtt %s" % fixture_id).start()
        threading.Thread(target=self._run_commands, daemon=True, name="mqtt commands %s" % fixture_id).start()

    def t(self, leaf: str) -> str:
        return mqtt.topic(self.fixture_id, leaf)

    # --- from the logger ---
    def row(self, rec: dict[str, Any], boot_id: str | None, measured_ms: float, source: str | None) -> None:
        leaf = "event" if rec.get("t") == "evt" else "telemetry"
        payload = mqtt.dumps(mqtt.record_payload(self.fixture_id, rec, boot_id, measured_ms, source))
        self._queue(self.t(leaf), payload, 2)
        if rec.get("t") == "tel":
            self._status.update((k, v) for k, v in rec.items() if k != "t")  # the newest reading
            self._status["measured_utc"] = utc_text(measured_ms)
        elif rec.get("kind") in ("alarm", "mode", "boot", "profile"):
            self._status_due = True

    def side(self, rec: dict[str, Any]) -> None:
        """An audit record or a note, as the log gets it."""
        self._queue(self.t("audit"), mqtt.dumps(dict(rec, fixture_id=self.fixture_id)), 1)

    def notification(self, body: dict[str, Any]) -> None:
        self._queue(self.t("notification"), mqtt.dumps(dict(body, fixture_id=self.fixture_id)), 1)

    def status(self, st: dict[str, Any]) -> None:
        """The fixture's `status` reply: the retained status is made from it (and from the
        newest telemetry record, which is fresher between replies)."""
        self._status.update(st)
        self._status_due = True
        with self._cv:
            self._cv.notify()

    def fixture_link(self, up: bool) -> None:
        """The fixture reached (or lost) by this host."""
        if up != self.fixture_connected:
            self.fixture_connected = up
            self._status_due = True
            with self._cv:
                self._cv.notify()

    def tick(self) -> None:
        pass  # the pump keeps its own time

    def _queue(self, topic: str, payload: bytes, qos: int) -> None:
        with self._cv:
            if len(self.backlog) >= BACKLOG_RECORDS:
                self.backlog.popleft()
                self.dropped += 1
            self.backlog.append((topic, payload, qos))
            self._cv.notify()

    # --- to the broker ---
    def _status_payload(self) -> bytes:
        body = {
            "fixture_id": self.fixture_id,
            "host": mqtt.host_name(),
            "connected": self.fixture_connected,
            "updated_utc": utc_text(time.time() * 1000),
            "meta": self.meta,
            "mqtt_control": self.control,
        }
        body.update(self._status)
        return mqtt.dumps(body)

    def _pump(self) -> None:
        last_status = 0.0
        while True:
            with self._cv:
                self._cv.wait(0.5)
                if self._closing and not self.backlog:
                    return
                if not self.connected:
                    continue
                batch: list[tuple[str, bytes, int]] = []
                while self.backlog and self.sent - self.acked + len(batch) < IN_FLIGHT:
                    batch.append(self.backlog.popleft())
                dropped, self.dropped = self.dropped, 0
                now = time.monotonic()
                status_now = self._status_due or now - last_status >= STATUS_EVERY_S
                self.sent += len(batch) + (2 if status_now else 0)
            if dropped:
                self._say_dropped(dropped)
            for topic, payload, qos in batch:
                self.c.publish(topic, payload, qos=qos)
            if status_now:
                self._status_due = False
                last_status = now
                online = b"online" if self.fixture_connected else b"offline"
                self.c.publish(self.t("online"), online, qos=1, retain=True)
                self.c.publish(self.t("status"), self._status_payload(), qos=1, retain=True)
            if batch and self.sent - self.acked >= IN_FLIGHT:
                time.sleep(0.005)

    def _say_dropped(self, n: int) -> None:
        text = "MQTT: %d records not published (the broker was away past the %d-record backlog); the log has them" % (
            n,
            BACKLOG_RECORDS,
        )
        self.mark(text)

    def _say(self, text: str) -> None:
        """A change in the broker connection: in the log, and on serve's output (its journal)."""
        self.mark(text)
        print("stackpress serve: %s: %s" % (self.fixture_id, text), file=sys.stderr, flush=True)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            if not self._said_down:
                self._said_down = True
                self._say("MQTT: the broker %s refused this host: %s (user and password)" % (self.broker, reason))
            return
        if self._said_down or self._was_connected:
            self._say("MQTT: publishing to %s again (%d records waiting)" % (self.broker, len(self.backlog)))
        self._said_down = False
        self._was_connected = True
        client.subscribe(self.t("command/+"), qos=0)  # QoS 0: never queued for later, never stale
        with self._cv:
            self.connected = True
            self._status_due = True
            self._cv.notify()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        if not self._said_down:
            self._said_down = True
            self._say("MQTT: can't reach the broker %s; records wait here until it answers" % self.broker)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cv:
            was, self.connected = self.connected, False
        if was and not self._closing:
            self._say("MQTT: lost the broker %s (%s); records wait here until it is back" % (self.broker, reason))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self.acked += 1
        if self.sent - self.acked < IN_FLIGHT // 2:
            with self._cv:
                self._cv.notify()

    # --- commands from the broker's users ---
    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4 or parts[2] != "command":
            return
        try:
            self._commands.put_nowait((parts[3], msg.payload, bool(msg.retain)))
        except queue.Full:
            self._reply(parts[3], None, False, "busy", "too many commands waiting: send one at a time")

    def _run_commands(self) -> None:
        while True:
            user, payload, retained = self._commands.get()
            if user is None:
                return
            req_id = None
            try:
                req = _request(payload)
                req_id = req.get("id")
                _finite(req)
                data = self._command(user, req, retained)
                self._reply(user, req_id, True, data=data)
            except ControlError as e:
                self._reply(user, req_id, False, e.code, e.msg)
            except DeviceError as e:
                self._reply(user, req_id, False, e.code, e.msg)
            except LinkError as e:
                self._reply(user, req_id, False, "link", str(e))
            except BadValue as e:
                self._reply(user, req_id, False, "range", str(e))
            except Exception as e:  # whatever a sender puts in: this thread answers the next one
                self._reply(user, req_id, False, "internal", "%s: %s" % (type(e).__name__, e))

    def _command(self, user: str, req: dict[str, Any], retained: bool) -> dict[str, Any]:
        cmd, args = req.get("cmd"), req.get("args") or {}
        if retained:
            raise ControlError("retained", "a retained command is never run (it would run again at every restart)")
        if not self.control:
            raise ControlError(
                "disabled",
                "commands over MQTT are off for this fixture: its host runs 'stackpress serve' without --mqtt-control",
            )
        if not isinstance(cmd, str) or not isinstance(args, dict):
            raise ControlError("usage", 'a command needs "cmd" (a string) and "args" (an object)')
        if cmd not in READ_ONLY + MOVES:
            raise ControlError(
                "local",
                "'%s' is not taken over MQTT: %s only on the fixture's own computer; over MQTT: %s"
                % (cmd, ONLY_LOCAL, ", ".join(READ_ONLY + MOVES)),
            )
        if cmd in MOVES:
            self._check_expect(user, req.get("expect"))
        return self.command_as(user, cmd, args)

    def _check_expect(self, user: str, expect: Any) -> None:
        """A command that changes force says what its sender saw; it is refused if the
        fixture is no longer in that state (the view on the network may be seconds old)."""
        if not isinstance(expect, dict) or "state" not in expect:
            raise ControlError(
                "expect",
                'a command that changes force needs "expect": {"state": ..., "setpoint_mpa": ...}, what '
                "you saw the fixture doing (its status topic)",
            )
        st = self.command_as(user, "status", {})
        if expect["state"] != st.get("state"):
            raise ControlError(
                "expect", "the fixture is in %s now, not %s: look again, then send" % (st.get("state"), expect["state"])
            )
        sp = expect.get("setpoint_mpa")
        if sp is not None and (not isinstance(sp, (int, float)) or abs(sp - (st.get("setpoint_mpa") or 0)) > 1e-3):
            raise ControlError(
                "expect",
                "the fixture's setpoint is %s MPa now, not %s: look again, then send" % (st.get("setpoint_mpa"), sp),
            )

    def _reply(
        self, user: str, req_id: Any, ok: bool, code: str | None = None, msg: str | None = None, data: Any = None
    ) -> None:
        body: dict[str, Any] = {"id": req_id, "ok": ok, "fixture_id": self.fixture_id}
        if ok:
            body["data"] = data
        else:
            body["error"], body["msg"] = code, msg
        try:
            payload = mqtt.dumps(body)
        except ValueError:
            payload = mqtt.dumps({"id": None, "ok": ok, "fixture_id": self.fixture_id})
        with self._cv:  # the pump counts too
            self.sent += 1
        self.c.publish(self.t("reply/%s" % user), payload, qos=1)

    def close(self, wait_s: float = 10.0) -> None:
        """Publish what is waiting (up to wait_s), say offline, and disconnect."""
        end = time.monotonic() + wait_s
        with self._cv:
            self._closing = True
            self._cv.notify()
        while time.monotonic() < end and self.connected and (self.backlog or self.sent > self.acked):
            time.sleep(0.05)
        self._commands.put((None, b"", False))
        if self.connected:
            info = self.c.publish(self.t("online"), b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.5, end - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # the connection went meanwhile: the broker's last will says offline
        self.c.disconnect()
        self.c.loop_stop()
