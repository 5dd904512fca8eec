import pytest
from conftest import log_meta

from stackpress.logfile import CsvLog
from stackpress.protocol import FrameError, frame, parse


def test_frame_round_trip_and_crc():
    f = frame({"id": 1, "cmd": "hold", "mpa": 40})
    assert f.endswith(b"\n")
    assert parse(f[:-1]) == {"id": 1, "cmd": "hold", "mpa": 40}
    with pytest.raises(FrameError):
        parse(f[:-1].replace(b"40", b"41"))
    with pytest.raises(FrameError):
        parse(b"MicroPython v1.29.0 on 2026-01-01")


def test_log_marks_gaps_and_reboots(tmp_path):
    log = CsvLog(str(tmp_path / "x.csv"), log_meta(units="MPa"))
    for seq in (1, 2, 5):
        log.write(
            {
                "t": "tel",
                "boot": 1,
                "seq": seq,
                "device_ms": seq * 100,
                "state": "hold",
                "pressure_mpa": 40.0,
                "alarms": [],
            }
        )
    log.write({"t": "evt", "boot": 2, "seq": 1, "device_ms": 0, "kind": "boot", "resume": "hold"})
    log.close()
    text = (tmp_path / "x.csv").read_text()
    assert "# gap: records 3..4 not received" in text
    assert "# fixture rebooted" in text
    assert '"{""kind"": ""boot""' in text
    with pytest.raises(FileExistsError):
        CsvLog(str(tmp_path / "x.csv"), log_meta())
