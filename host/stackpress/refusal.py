"""A fixture's refusal in the words of the command line. The firmware speaks of its
protocol's commands ('profile_stop', 'set', 'repl'); the person typed `stackpress ...`, so
the command line says what they would type instead. The firmware's message stays as it is
for programs that speak the protocol (the reply's `error`)."""

from __future__ import annotations

import re

# A protocol command, as a person runs it from the command line.
AS_TYPED = {
    "hold": "stackpress hold MPA",
    "gap": "stackpress gap",
    "idle": "stackpress idle",
    "release": "stackpress release",
    "ack": "stackpress ack",
    "tare": "stackpress tare",
    "lock": "stackpress lock",
    "unlock": "stackpress unlock",
    "set": "stackpress config KEY VALUE",
    "jog": "stackpress jog UM",
    "calibrate": "stackpress calibrate",
    "profile_set": "stackpress profile run FILE",
    "profile_run": "stackpress profile run FILE",
    "profile_stop": "stackpress profile stop",
    "repl": "stackpress repl",
    "reset": "stackpress reset",
    "analog_test": "stackpress analog test V",
}
# The firmware's lock refusal names the protocol command it refuses ("'set' changes
# pressure"), which is not true of every setting: the command line names what was typed.
LOCKED = re.compile(r"the fixture is locked \(a test is running\): '(\w+)' changes pressure; 'unlock' first")


def in_cli_words(code: str, msg: str, typed: str) -> str:
    """The refusal `msg` (code `code`) of a command the person typed as `typed` (e.g.
    "stackpress config telemetry_period_ms")."""
    if code == "locked" and LOCKED.fullmatch(msg):
        return "the fixture is locked (a test is running): '%s' waits until 'stackpress unlock'" % typed
    return re.sub(r"'(\w+)'", lambda m: "'%s'" % AS_TYPED.get(m.group(1), m.group(1)), msg)
