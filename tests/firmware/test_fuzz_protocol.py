"""Fuzzing the protocol against the firmware running under MicroPython.

hypothesis makes batches of hostile inputs -- random bytes, Ctrl-C, Ctrl-D and raw-REPL
bytes, overlong lines, frames with a good CRC and wrong contents, frames cut or
garbled in transit -- and the firmware, holding 40 MPa on the test board, gets them on
its serial line. For every input: no crash, control goes on, and an input that is not a
valid command changes nothing and gets an error reply that says what was wrong.
`FUZZ_EXAMPLES` (default 6 batches of 50) is raised by `make soak`.
"""

import json
import os
import subprocess
import zlib

from conftest import MICROPYTHON, firmware_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(__file__)
BATCH = 50
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
COUNTER = os.environ.get("FUZZ_COUNT_FILE")  # the soak's tally of inputs and crashes

COMMANDS = [
    "hold",
    "hold",
    "hold",
    "set",
    "set",
    "gap",
    "idle",
    "release",
    "ack",
    "jog",
    "set",
    "tare",
    "replay",
    "lock",
    "unlock",
    "status",
    "hello",
    "config",
    "bogus",
    "",
    "HOLD",
    "profile_set",
    "profile_set",
    "profile_run",
    "profile_stop",
    "profile",
    "set_calibration",
]
KEYS = ["mpa", "um", "key", "value", "from_seq", "boot", "id", "cmd", "steps"]
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=5,
)


def _frame(payload: bytes) -> bytes:
    return payload + b"*%08x\n" % (zlib.crc32(payload) & 0xFFFFFFFF)


@st.composite
def hostile_command(draw):
    """A well-framed command whose contents are wrong: unknown, missing, mistyped or out of
    range arguments. Pressure-changing values are drawn outside what the firmware accepts."""
    obj = {"id": draw(st.one_of(st.integers(0, 10**6), json_value)), "cmd": draw(st.sampled_from(COMMANDS))}
    for k in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        obj[k] = draw(json_value)
    if obj["cmd"] == "hold":  # always an mpa, always outside 0.1..76 MPa or not a number
        obj["mpa"] = draw(
            st.sampled_from([-1, 0, 0.09, 76.1, 1e9, 100.0, float("nan"), float("inf"), "40", None, True, [40]])
        )
    if obj["cmd"] == "profile_set":  # always a schedule the firmware must refuse
        obj["steps"] = draw(
            st.sampled_from(
                [
                    [],
                    None,
                    "x",
                    [[40, 0.5]],
                    [[76.1, 0.5, 10]],
                    [[40, 0, 10]],
                    [[40, 21, 10]],
                    [[40, 0.5, -2]],
                    [[40, 0.5, 1.5]],
                    [[40, 0.5, -1], [30, 0.5, 10]],
                    [[40, 0.5, 10]] * 25,
                    [[True, 0.5, 10]],
                    [[40, 0.5, 10], "x"],
                    [[float("nan"), 0.5, 10]],
                    [[40, 0.5, 1e12]],
                ]
            )
        )
    if obj["cmd"] in ("gap", "idle", "release", "jog", "tare", "lock", "unlock", "ack", "profile_run"):
        obj["cmd"] = "x" + obj["cmd"]  # valid ones would change state: keep them unknown
    if obj["cmd"] == "set":
        obj.setdefault("key", draw(st.sampled_from(["loop_gain", "cell_area_mm2", "max_pressure_mpa", "nope"])))
        obj["value"] = draw(st.sampled_from([-1e9, 1e12, "40", None, [1], True, float("nan")]))
    try:
        return _frame(json.dumps(obj, allow_nan=True).encode())
    except (TypeError, ValueError):
        return _frame(b"{}")


def garble(data: bytes, draw):
    if not data:
        return data
    i = draw(st.integers(0, len(data) - 1))
    return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]


@st.composite
def hostile_input(draw):
    kind = draw(st.sampled_from(["bytes", "ctrl", "overlong", "command", "garbled", "cut", "json"]))
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "ctrl":
        return (
            draw(
                st.lists(
                    st.sampled_from([b"\x03", b"\x04", b"\x01", b"\x02", b"\x05", b"\r", b"\x1b"]),
                    min_size=1,
                    max_size=8,
                ).map(b"".join)
            )
            + b"\n"
        )
    if kind == "overlong":
        return b"{" + b"a" * draw(st.integers(513, 3000)) + b"}\n"
    if kind == "command":
        return draw(hostile_command())
    if kind == "garbled":
        return garble(draw(hostile_command()), draw)
    if kind == "cut":
        f = draw(hostile_command())
        return f[: draw(st.integers(0, len(f) - 2))] + b"\n"
    return _frame(json.dumps(draw(json_value)).encode())


def _run_batch(inputs, tmp_path):
    path = tmp_path / "inputs.bin"
    path.write_bytes(b"".join(len(b).to_bytes(2, "little") + b for b in inputs))
    # 256k, as for the other firmware tests: the harness's own RAM disk, input buffer and
    # decoded frames live in the same heap; the firmware's fit in a Pico's 192k is
    # test_fits_a_pico_heap's business (and the virtual fixture runs it in 192k).
    p = subprocess.run(
        [
            MICROPYTHON,
            "-X",
            "heapsize=256k",
            os.path.join(HERE, "fuzz_target.py"),
            str(path),
            str(firmware_dir()),
            HERE,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [x for x in p.stdout.split("\n") if x]
    assert lines and json.loads(lines[0]).get("ready"), p.stdout[-2000:] + p.stderr[-2000:]
    results = []
    for x in lines[1:]:
        try:
            results.append(json.loads(x))
        except ValueError:
            raise AssertionError("not a result line: %s" % p.stdout[p.stdout.find(x) :][:1500]) from None
    assert len(results) == len(inputs), (len(results), p.stderr[-3000:])
    return results


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(hostile_input(), min_size=BATCH, max_size=BATCH))
def test_hostile_input_never_stops_control_or_changes_state(tmp_path, inputs):
    results = _run_batch(inputs, tmp_path)
    crashes = sum(1 for r in results if r["crash"])
    if COUNTER:
        with open(COUNTER, "a") as f:
            f.write("%d %d %s\n" % (len(inputs), crashes, json.dumps([r["crash"] for r in results if r["crash"]][:1])))
    for data, r in zip(inputs, results):
        assert r["crash"] is None, (data, r)
        assert r["controlling"], (data, r)  # control never interrupted, pressure held
        for rep in r["replies"]:
            if not rep["ok"]:
                assert rep["err"] and rep["msg"] and len(rep["msg"]) > 10, (data, rep)
        # Every input here is made invalid for the commands that change state (only
        # read-only ones like status may pass): none may change anything.
        assert not r["changed"], (data, r)
