"""Versions the host checks before it trusts what this firmware says."""
FIRMWARE_VERSION = "0.5.0"
# Bumped whenever a frame, command or field changes meaning (see PROTOCOL.md).
PROTOCOL_VERSION = 3
