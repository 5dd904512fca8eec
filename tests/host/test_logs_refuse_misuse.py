"""A log is one fixture's record: another fixture's file, a second logger, a device that
names files or breaks the protocol, a wiped fixture counting boots from 1 again, a log too
big to read whole: none of them costs a record or writes where it should not."""

import os
import subprocess
import sys
import tracemalloc

import pytest
from conftest import log_meta
from fakedevice import FakeDevice

from stackpress.firmware import protocol_version
from stackpress.link import LinkError
from stackpress.logfile import CsvLog, LogError, SqliteLog
from stackpress.logger import out_path
from stackpress.sequencer import Sequencer

BIN = os.path.dirname(sys.executable)
A, B = "e66038b7137a2f2c", "0123456789abcdef"


def _rec(boot, seq):
    return {
        "t": "tel",
        "boot": boot,
        "seq": seq,
        "device_ms": seq * 1000,
        "state": "hold",
        "pressure_mpa": 40.0,
        "alarms": [],
    }


def _rows(path):
    return [
        tuple(map(int, line.split(",")[:2]))
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and not line.startswith("boot,")
    ]


@pytest.mark.parametrize("cls,ext", [(CsvLog, ".csv"), (SqliteLog, ".sqlite")])
def test_a_log_of_another_fixture_is_refused_and_left_as_it_was(tmp_path, cls, ext):
    p = tmp_path / ("run" + ext)
    log = cls(str(p), log_meta(fixture_id=A))
    log.row(_rec(1, 1), "aaaaaaaa")
    log.close()
    before = p.read_bytes()
    with pytest.raises(LogError, match="log of fixture %s; this is fixture %s" % (A, B)):
        cls(str(p), {"fixture_id": B}, resume=True)
    assert p.read_bytes() == before
    cls(str(p), {"fixture_id": A}, resume=True).close()  # its own fixture resumes it


@pytest.mark.parametrize("cls,ext", [(CsvLog, ".csv"), (SqliteLog, ".sqlite")])
def test_two_loggers_can_not_write_one_file(tmp_path, cls, ext):
    p = str(tmp_path / ("run" + ext))
    first = cls(p, log_meta(fixture_id=A))
    with pytest.raises(LogError, match="another stackpress logger"):
        cls(p, {"fixture_id": A}, resume=True)
    first.close()
    cls(p, {"fixture_id": A}, resume=True).close()  # free again once the first has closed it


def test_a_wiped_fixture_counting_boots_from_1_again_is_logged_not_dropped(tmp_path):
    p = tmp_path / "run.csv"
    log = CsvLog(str(p), log_meta(fixture_id=A))
    seq = Sequencer(log)
    seq.catch_up({"boot": 1, "boot_id": "aaaaaaaa", "seq": 0})
    for s in range(1, 403):
        seq.offer(_rec(1, s))
    log.close()
    # The same fixture after a fresh flash: boot 1 again, another identity; its records are new.
    log = CsvLog(str(p), {"fixture_id": A}, resume=True)
    seq = Sequencer(log)
    assert (seq.boot, seq.last, seq.boot_id) == (1, 402, "aaaaaaaa")
    seq.catch_up({"boot": 1, "boot_id": "bbbbbbbb", "seq": 300})
    assert seq.want == 1
    for s in range(1, 301):
        seq.offer(_rec(1, s))
    log.close()
    assert len(_rows(p)) == 402 + 300 and seq.duplicates == 0
    assert "boot count restarted" in p.read_text()


def test_a_replay_asks_for_the_hole_only():
    seq = Sequencer(type("L", (), {"last": None, "row": lambda *a: None, "note": lambda *a: None})())
    seq.catch_up({"boot": 1, "boot_id": "aaaaaaaa", "seq": 0})
    for s in (1, 2, 3, 50, 51, 52):
        seq.offer(_rec(1, s))
    assert seq.hole() == (4, 49)


@pytest.mark.parametrize("bad", ["../x", "/tmp/x", "a\nb", "E66038B7137A2F2C", "e66038b7137a2f2", "", None, 5])
def test_a_device_never_names_a_file_outside_the_folder(tmp_path, bad):
    with pytest.raises(LinkError, match="not a stackpress fixture"):
        out_path(str(tmp_path) + "/", bad, "csv")
    assert os.listdir(tmp_path) == []
    assert out_path(str(tmp_path) + "/", A, "csv") == os.path.join(str(tmp_path), A + ".csv")


def test_text_from_a_device_can_not_add_lines_to_the_header(tmp_path):
    p = tmp_path / "run.csv"
    CsvLog(str(p), log_meta(fixture_id=A, board="pico\n# fixture_id: %s" % B, scenario="x\ry")).close()
    meta = [line for line in p.read_text().splitlines() if line.startswith("#")]
    assert len(meta) == 4 and sum(B in line for line in meta) == 1 and meta[1].startswith("# board: ")


def test_resuming_a_big_log_reads_only_its_tail(tmp_path):
    p = tmp_path / "big.csv"
    log = CsvLog(str(p), log_meta(fixture_id=A))
    log.close()
    row = "1,%d,1000,2026-11-30T00:00:00.000+00:00,hold,40.0,40.0,40.0,39.99,40.01,10,3141.6,1.0,,25.0,1392284,,,\n"
    with open(p, "a") as f:
        for k in range(0, 300000, 1000):
            f.write("".join(row % s for s in range(k + 1, k + 1001)))
        f.write("1,300001,1000,2026-11-30")  # a torn last row
    assert p.stat().st_size > 25e6
    tracemalloc.start()
    log = CsvLog(str(p), {"fixture_id": A}, resume=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    log.close()
    assert log.last == (1, 300000) and peak < 2e6, peak  # not the 25 MB file
    assert p.read_text().splitlines()[-1].startswith("# resumed")


def test_a_log_goes_to_a_regular_file_in_a_folder_that_exists(tmp_path):
    with pytest.raises(LogError, match="not a regular file"):
        CsvLog("/dev/zero", {}, resume=True)
    with pytest.raises(LogError, match="does not exist"):
        CsvLog(str(tmp_path / "nodir" / "run.csv"), {}, resume=True)


HELLO = {
    "firmware_version": "0.5.0",
    "protocol_version": protocol_version(),
    "board": "pico",
    "runtime": "micropython 1.28.0",
    "fixture_id": A,
    "boot": 1,
    "boot_id": "aaaaaaaa",
    "max_line_bytes": 1024,
}


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in HELLO.items() if k != "firmware_version"},
        dict(HELLO, fixture_id="../../etc/x"),
        dict(HELLO, boot="1"),
    ],
)
def test_a_device_whose_replies_break_the_protocol_is_not_a_fixture(broken):
    dev = FakeDevice(lambda cmd: broken)
    try:
        r = subprocess.run(
            [os.path.join(BIN, "stackpress"), "--port", dev.port, "status"], capture_output=True, text=True, timeout=60
        )
    finally:
        dev.close()
    assert r.returncode == 3 and "not a stackpress fixture" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_device_streaming_without_newlines_is_not_a_fixture(tmp_path):
    status = dict(
        HELLO,
        state="hold",
        pressure_mpa=40.0,
        setpoint_mpa=40.0,
        force_n=3141.6,
        position_um=1.0,
        cell_area_mm2=78.54,
        alarms=[],
        seq=5,
        oldest_seq=1,
        samples=50,
        locked=False,
    )

    def answer(cmd):
        if cmd["cmd"] in ("hello", "status"):
            return HELLO if cmd["cmd"] == "hello" else status
        return b"x" * 200000  # then garbage, and never a newline

    dev = FakeDevice(answer)
    try:
        r = subprocess.run(
            [
                os.path.join(BIN, "stackpress"),
                "--port",
                dev.port,
                "log",
                "--out",
                str(tmp_path / "run.csv"),
                "--duration",
                "20",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        dev.close()
    assert "not stackpress frames" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
