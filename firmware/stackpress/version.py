"""Versions the host checks before it trusts what this firmware says. Written in one
place, version.json beside this module, which the host reads too (a new protocol version
whenever a frame, command or field changes meaning: see PROTOCOL.md)."""

import json

with open(__file__.rsplit("/", 1)[0] + "/version.json") as _f:
    _v = json.load(_f)
FIRMWARE_VERSION = _v["firmware_version"]
PROTOCOL_VERSION = _v["protocol_version"]
del _f, _v
