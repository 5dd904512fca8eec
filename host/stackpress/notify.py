"""Alarms that reach people: `serve --notify-command CMD` / `--notify-url URL`.

What is told: an alarm the fixture latched (and those already latched when serve starts),
the fixture out of this host's reach for longer than --notify-offline-s (and back), and a
hold whose pressure stays more than --notify-error-mpa from its setpoint for
ERROR_FOR_S of the fixture's own time (and back within it). Each is told once per
episode, sent from a thread of its own (a slow mail server never holds up logging), and
marked in the log with how the sending went.

The command runs with the notification as JSON on its standard input and its subject in
STACKPRESS_SUBJECT (e.g. `mail -s "$STACKPRESS_SUBJECT" lab@example.org`); the URL gets
it as a JSON POST ({"text": subject, ...}: what Slack, Mattermost and Teams webhooks take).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .timebase import utc_text

ERROR_FOR_S = 30.0  # device seconds a hold error must last: a ramp's overshoot is not an alarm
SEND_TIMEOUT_S = 20.0


@dataclass
class Rules:
    command: str | None = None
    url: str | None = None
    offline_s: float = 300.0
    error_mpa: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.command or self.url)


class Notifier:
    """One fixture's notifications. `mark(text)` notes in its log; `publish(body)` puts it
    on the broker (or nowhere)."""

    def __init__(
        self,
        rules: Rules,
        fixture_id: str,
        meta: dict[str, Any],
        mark: Callable[[str], None],
        publish: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.rules = rules
        self.fixture_id = fixture_id
        self.name = meta.get("fixture") or meta.get("cell") or fixture_id
        self.mark = mark
        self.publish = publish
        self.offline_why = "out of this host's reach (unplugged, powered off, or its USB)"
        self.sent = 0
        self._offline_since: float | None = None
        self._told_offline = False
        self._error_since_ms: float | None = None
        self._told_error = False
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._send_all, daemon=True, name="notify %s" % fixture_id)
        self._thread.start()

    # --- what happens ---
    def status(self, st: dict[str, Any]) -> None:
        """The first status after serve starts: alarms already latched are told once."""
        if st.get("alarms") and self.sent == 0:
            self.tell("alarm", "latched alarms: %s" % ", ".join(st["alarms"]), alarms=st["alarms"])

    def row(self, rec: dict[str, Any], boot_id: str | None, measured_ms: float, source: str | None) -> None:
        if rec.get("t") == "evt" and rec.get("kind") == "alarm":
            when = ""
            if source == "replayed":  # read late from the fixture's history: say when it latched
                when = " (latched at %s, read from the fixture's history)" % utc_text(measured_ms)
            self.tell("alarm", "alarm: %s%s" % (", ".join(rec.get("alarms") or []), when), alarms=rec.get("alarms"))
        elif rec.get("t") == "tel" and self.rules.error_mpa is not None:
            self._hold_error(rec)

    def side(self, rec: dict[str, Any]) -> None:
        pass  # what people did is not news to them

    def _hold_error(self, rec: dict[str, Any]) -> None:
        p, sp, t_ms = rec.get("pressure_mpa"), rec.get("setpoint_mpa"), rec.get("device_ms")
        limit = self.rules.error_mpa
        if (
            limit is None
            or rec.get("state") != "hold"
            or not isinstance(t_ms, int)
            or not isinstance(p, (int, float))
            or not isinstance(sp, (int, float))
        ):
            self._error_since_ms = None
            return
        err = p - sp
        if abs(err) <= limit:
            if self._told_error:
                self._told_error = False
                self.tell("hold_error_over", "holding again: %.3f MPa, %.3f MPa from the setpoint" % (p, err))
            self._error_since_ms = None
            return
        since = self._error_since_ms
        if since is None or t_ms < since:  # t_ms < since: the fixture restarted
            since = self._error_since_ms = t_ms
        if not self._told_error and t_ms - since >= ERROR_FOR_S * 1000:
            self._told_error = True
            self.tell(
                "hold_error",
                "pressure %.3f MPa is %+.3f MPa from the setpoint %.3f MPa (limit %.3f) for %.0f s"
                % (p, err, sp, limit, (t_ms - since) / 1000),
                pressure_mpa=p,
                setpoint_mpa=sp,
            )

    def fixture_link(self, up: bool) -> None:
        now = time.monotonic()
        if up:
            if self._told_offline and self._offline_since is not None:
                self.tell("back", "back after %.0f s away" % (now - self._offline_since))
            self._offline_since, self._told_offline = None, False
        elif self._offline_since is None:
            self._offline_since = now

    def tick(self) -> None:
        if self._offline_since is not None and not self._told_offline:
            away = time.monotonic() - self._offline_since
            if away >= self.rules.offline_s:
                self._told_offline = True
                self.tell("offline", "%s for %.0f s" % (self.offline_why, away))

    # --- telling ---
    def tell(self, kind: str, text: str, **extra: Any) -> None:
        self.sent += 1
        body = {
            "kind": kind,
            "fixture_id": self.fixture_id,
            "fixture": self.name,
            "host": os.uname().nodename,
            "utc": utc_text(time.time() * 1000),
            "text": "stackpress %s: %s" % (self.name, text),
        }
        body.update(extra)
        self._outbox.put(body)

    def _send_all(self) -> None:
        while True:
            body = self._outbox.get()
            if body is None:
                return
            how = []
            if self.rules.command:
                how.append(self._run(self.rules.command, body))
            if self.rules.url:
                how.append(self._post(self.rules.url, body))
            self.mark("notified (%s): %s; %s" % (body["kind"], body["text"], "; ".join(how)))
            if self.publish is not None:
                self.publish(dict(body, delivery=how))

    def _run(self, command: str, body: dict[str, Any]) -> str:
        env = dict(os.environ, STACKPRESS_SUBJECT=body["text"], STACKPRESS_FIXTURE=self.fixture_id)
        try:
            r = subprocess.run(
                command,
                shell=True,
                input=json.dumps(body),
                text=True,
                env=env,
                capture_output=True,
                timeout=SEND_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return "the command did not end within %.0f s" % SEND_TIMEOUT_S
        if r.returncode:
            return "the command failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-200:])
        return "the command ran"

    def _post(self, url: str, body: dict[str, Any]) -> str:
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=SEND_TIMEOUT_S) as r:
                return "the webhook answered %d" % r.status
        except (urllib.error.URLError, OSError) as e:
            return "the webhook failed: %s" % getattr(e, "reason", e)

    def close(self, wait_s: float = SEND_TIMEOUT_S) -> None:
        self._outbox.put(None)
        self._thread.join(wait_s)
