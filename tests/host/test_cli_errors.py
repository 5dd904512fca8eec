"""The command line's promises: every command has --help with an example, and the errors
a person meets at a serial port say what to do, with the documented exit codes."""

import json
import os
import subprocess
import sys

import pytest
from fakedevice import FakeDevice

from stackpress.cli import build_parser

BIN = os.path.dirname(sys.executable)
COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def run(*args, timeout=60):
    return subprocess.run([os.path.join(BIN, "stackpress"), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help_with_an_example(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0 and "example: stackpress" in r.stdout, r.stdout


def test_a_device_that_does_not_answer_is_not_a_fixture_exit_3():
    dev = FakeDevice(lambda cmd: None)
    try:
        r = run("--port", dev.port, "status")
    finally:
        dev.close()
    assert r.returncode == 3 and "is it a stackpress fixture" in r.stderr, r.stderr


def test_another_protocol_version_is_refused_with_what_to_update_exit_3():
    dev = FakeDevice(
        lambda cmd: {
            "firmware_version": "0.1.0",
            "protocol_version": 1,
            "board": "pico",
            "runtime": "micropython 1.22",
            "fixture_id": "e66038b7137a2f2c",
        }
    )
    try:
        r = run("--port", dev.port, "status")
    finally:
        dev.close()
    assert r.returncode == 3 and "protocol 1" in r.stderr and "update one of them" in r.stderr, r.stderr


def test_a_port_held_by_another_program_is_busy_exit_3():
    import serial

    dev = FakeDevice(lambda cmd: None)
    held = serial.Serial(dev.port, exclusive=True)
    try:
        r = run("--port", dev.port, "status")
    finally:
        held.close()
        dev.close()
    assert r.returncode == 3 and "busy" in r.stderr, r.stderr


def test_a_missing_port_says_so_exit_3():
    r = run("--port", "/dev/ttyACM99", "status")
    assert r.returncode == 3 and "/dev/ttyACM99" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["log", "--out", "x.csv", "--rotate", "10"],
        ["log", "--out", "x.csv", "--rotate", "weekly"],
        ["hold"],
        ["sim", "--speed", "0"],
        ["fleet"],
    ],
)
def test_usage_errors_are_exit_2(args):
    r = run(*args)
    assert r.returncode == 2 and "error" in r.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["--mqtt-control"], "--mqtt-control and --mqtt-ca need --mqtt URL"),
        (["--mqtt", "http://broker.lab"], "give mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"),
        (["--mqtt", "mqtt://broker.lab:99999"], "the port is not a number from 1 to 65535"),
        (["--notify-error-mpa", "0.2"], "need --notify-command or --notify-url"),
        (["--notify-command", "true", "--notify-error-mpa", "-1"], "a pressure above 0 MPa"),
    ],
)
def test_serve_refuses_a_lab_network_it_cannot_use_exit_2(args, says, tmp_path):
    r = run("serve", "--out", str(tmp_path) + "/", *args)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_a_broker_that_is_not_there_is_said_exit_3():
    r = run("fleet", "--mqtt", "mqtt://127.0.0.1:9", "--once")
    assert r.returncode == 3 and "can't reach the broker mqtt://127.0.0.1:9" in r.stderr, r.stderr


def test_list_skips_a_virtual_fixture_that_was_killed_and_forgets_it(tmp_path):
    sims = tmp_path / "sims"
    sims.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (sims / ("%d.json" % dead.pid)).write_text(json.dumps({"port": "/dev/pts/999", "pid": dead.pid}))
    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path))
    r = subprocess.run([os.path.join(BIN, "stackpress"), "list", "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert "/dev/pts/999" not in [f["port"] for f in out["fixtures"] + out["not_answering"]]
    assert not list(sims.iterdir())


def test_output_whose_reader_has_gone_is_no_error():
    """`stackpress ... | head -1`: the reader goes before the output is written (here: it
    was never there), so every write fails; no traceback, exit 0."""
    from conftest import ROOT

    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [os.path.join(BIN, "stackpress"), "profile", "check", "host/profiles/form-then-cycle.toml"],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(w)
    assert p.returncode == 0 and p.stderr == "", p.stderr


# Every command, given what a person gets wrong: no fixture there, files that are not
# there or not what they should be, numbers that are not numbers, options that do not exist.
NOT_A_LOG = os.path.join(os.path.dirname(__file__), "test_cli_errors.py")
BAD = [
    ["status", "--port", "/nonexistent/tty"],
    ["status", "--bogus"],
    ["hold", "abc"],
    ["hold", "1e999"],
    ["hold", "40", "--timeout", "nan", "--wait"],
    ["release", "--wait", "--timeout", "x"],
    ["gap", "--port", "/dev/null"],
    ["idle", "--port", "/nonexistent/tty"],
    ["ack", "extra"],
    ["tare", "--port", "/nonexistent/tty"],
    ["lock", "--port", "/nonexistent/tty"],
    ["unlock", "--port", "/nonexistent/tty"],
    ["tune", "--mpa", "abc"],
    ["tune", "--mpa", "40", "--port", "/nonexistent/tty"],
    ["jog", "abc"],
    ["jog", "5", "--port", "/nonexistent/tty"],
    ["config", "loop_gain", "abc", "--port", "/nonexistent/tty"],
    ["config", "push", "/nonexistent/fixture.toml", "--port", "/nonexistent/tty"],
    ["log", "--out", "/nonexistent/dir/x.csv", "--port", "/nonexistent/tty"],
    ["log", "--out", "x.csv", "--duration", "nan", "--port", "/nonexistent/tty"],
    ["serve", "--out", NOT_A_LOG, "--duration", "1"],
    ["report", "/nonexistent/run.csv"],
    ["report", NOT_A_LOG],
    ["report", NOT_A_LOG, "--cycler", "/nonexistent/c.csv"],
    ["export", "/nonexistent/run.csv"],
    ["export", NOT_A_LOG, "--format", "xlsx"],
    ["analog", "fit", "621:0.5", "--port", "/nonexistent/tty"],
    ["analog", "wobble"],
    ["profile", "check", "/nonexistent/p.toml"],
    ["profile", "check", NOT_A_LOG],
    ["profile", "run", NOT_A_LOG, "--port", "/nonexistent/tty"],
    ["profile", "bogus"],
    ["flash", "--firmware", "/nonexistent/fw", "--port", "/nonexistent/tty"],
    ["tempco", "/nonexistent/soak.csv"],
    ["tempco", NOT_A_LOG],
    ["calibrate", "--at", "abc", "--reference", "x"],
    ["calibrate", "--at", "500,nan", "--reference", "x", "--port", "/nonexistent/tty"],
    ["sim", "--scenario", "/nonexistent/s.json"],
    ["sim", "--scenario", NOT_A_LOG],
    ["sim", "--set", "bogus"],
    ["sim", "--set", "fixture.nothing.here=1"],
    ["monitor", "--duration", "-1", "--port", "/nonexistent/tty"],
    ["note", "hello", "--port", "/nonexistent/tty"],
    ["fleet", "--mqtt", "mqtt://127.0.0.1:notaport", "--once"],
    ["fleet", "--mqtt", "mqtts://127.0.0.1:9", "--mqtt-ca", "/nonexistent/ca.crt", "--once"],
    ["demo", "--speed", "0"],
    ["reset", "--port", "/nonexistent/tty"],
    ["repl", "--port", "/nonexistent/tty"],
    ["list", "--bogus"],
]
DOCUMENTED_EXIT_CODES = (0, 1, 2, 3, 4, 5)


def test_every_command_has_a_bad_argument_case():
    assert {args[0] for args in BAD} == set(COMMANDS)


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_a_person_s_mistake_gets_a_message_not_a_traceback(args, tmp_path):
    env = dict(os.environ, STACKPRESS_RUNTIME_DIR=str(tmp_path / "run"))  # no fixture attached
    r = subprocess.run(
        [os.path.join(BIN, "stackpress"), *args], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-3000:]
    assert r.returncode in DOCUMENTED_EXIT_CODES, (r.returncode, r.stderr[-2000:])
    assert r.returncode != 0 and r.stderr.strip(), "a mistake must be said: %r" % r.stdout[-500:]
