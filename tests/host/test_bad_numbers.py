"""NaN and infinity typed at the CLI are refused by the host before anything is sent: exit 2,
a message that says what the number is for (and, for a setting, its range); the fixture
never sees them. A program that hands the link such a number gets a clear error too."""

import math
import os
import subprocess
import sys

import pytest
from fakedevice import FakeDevice

from stackpress.firmware import protocol_version
from stackpress.protocol import BadValue, frame

BIN = os.path.dirname(sys.executable)
HELLO = {
    "firmware_version": "0.6.0",
    "protocol_version": protocol_version(),
    "board": "pico",
    "runtime": "micropython 1.28.0",
    "fixture_id": "e66038b7137a2f2c",
    "boot": 1,
    "boot_id": "aaaaaaaa",
    "max_line_bytes": 1024,
}
CONFIG = {"config": {"loop_gain": {"value": 0.25, "unit": "1", "min": 0.01, "max": 0.9}}}


def _fixture():
    """A device that answers hello and config, and keeps every command it receives."""
    seen = []

    def answer(cmd):
        seen.append(cmd["cmd"])
        if cmd["cmd"] == "hello":
            return HELLO
        if cmd["cmd"] == "config":
            return CONFIG
        return {}

    return FakeDevice(answer), seen


@pytest.mark.parametrize(
    "args",
    [
        ["hold", "nan"],
        ["hold", "inf"],
        ["hold", "--", "-inf"],  # (without "--", argparse takes -inf for an option: exit 2 too)
        ["jog", "nan"],
        ["tune", "--mpa", "nan"],
        ["config", "loop_gain", "nan"],
        ["config", "loop_gain", "inf"],
        ["calibrate", "--at", "100,nan", "--reference", "x"],
    ],
)
def test_nan_and_infinity_are_refused_before_anything_is_sent(args):
    dev, seen = _fixture()
    try:
        r = subprocess.run(
            [os.path.join(BIN, "stackpress"), "--port", dev.port, *args], capture_output=True, text=True, timeout=60
        )
    finally:
        dev.close()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "finite" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not set(seen) - {"hello", "config"}, seen  # nothing that acts was sent
    if args[0] == "config":
        assert "0.01" in r.stderr and "0.9" in r.stderr, r.stderr  # the allowed range


def test_the_link_will_not_send_a_number_json_can_not_carry():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(BadValue, match="finite"):
            frame({"id": 1, "cmd": "hold", "mpa": bad})
    assert frame({"id": 1, "cmd": "hold", "mpa": 40.0}).endswith(b"\n")
