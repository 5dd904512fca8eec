"""`stackpress report` on a log whose contents are known, with a cycler export."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import record_fields

from stackpress.cycler import CyclerError
from stackpress.cycler import read as read_cycler
from stackpress.logfile import columns
from stackpress.report import report

BIN = Path(sys.executable).parent


def _log(path, boots=((1, 5400), (2, 5400)), period_s=10):
    """A virtual-fixture log: holding 40 MPa with a +-2 kPa sine error, the cell breathing
    +-1.5 um once an hour; two boots; an alarm event and a lost-records note."""
    cols = columns(record_fields())
    lines = [
        "# stackpress log: test",
        "# board: virtual",
        "# firmware_version: 0.2.0",
        "# cell_area_mm2: 78.54",
        ",".join(cols),
    ]
    t_run = 0.0
    expect = []
    for boot, dur in boots:
        seq = 0
        for k in range(int(dur / period_s)):
            seq += 1
            dev_ms = k * period_s * 1000
            t = t_run + k * period_s
            err = 0.002 * math.sin(2 * math.pi * t / 600.0)
            p = 40 + err
            thk = 1.5 * math.sin(2 * math.pi * t / 3600.0)
            expect.append(err * 1000)
            rec = {
                "boot": boot,
                "seq": seq,
                "device_ms": dev_ms,
                "host_time_utc": "2026-11-24T00:00:00+00:00",
                "state": "hold",
                "pressure_mpa": round(p, 6),
                "setpoint_mpa": 40.0,
                "ref_mpa": 40.0,
                "p_min_mpa": round(p - 0.001, 6),
                "p_max_mpa": round(p + 0.001, 6),
                "n_samples": 10,
                "force_n": 3141.6,
                "position_um": 1000.0,
                "thickness_um": round(thk, 4),
                "temperature_c": 25.0,
                "raw_counts": 1392000,
            }
            lines.append(",".join(str(rec.get(c, "")) for c in cols))
            if boot == 1 and k == 100:
                seq += 1
                ev = {
                    "boot": 1,
                    "seq": seq,
                    "device_ms": dev_ms,
                    "host_time_utc": "2026-11-24T00:00:00+00:00",
                    "event": '"{""kind"": ""alarm"", ""alarms"": [""stuck_reading""]}"',
                }
                lines.append(",".join(str(ev.get(c, "")) for c in cols))
        t_run += dur
    lines.insert(5, "# lost: records 3..4 of boot 1 (no longer held by the fixture)")
    path.write_text("\n".join(lines) + "\n")
    return expect


def _cycler(path, hours=3):
    rows = ["time_s,voltage_v,current_ma,cycle"]
    for k in range(hours * 360):
        t = k * 10.0
        rows.append("%g,%.4f,%.3f,%d" % (t, 3.7 + 0.2 * math.sin(2 * math.pi * t / 3600), 1.0, int(t // 3600) + 1))
    path.write_text("\n".join(rows) + "\n")


def test_the_summary_and_the_plots_match_what_was_logged(tmp_path):
    expect = _log(tmp_path / "run.csv")
    _cycler(tmp_path / "cyc.csv")
    assert report(tmp_path / "run.csv", tmp_path / "out", tmp_path / "cyc.csv", as_json=True) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["boots"] == [1, 2] and s["records"] == len(expect)
    assert abs(s["duration_h"] - 3.0) < 0.01  # two boots stitched end to end on the fixture's time
    rms = math.sqrt(sum(e * e for e in expect[1:]) / len(expect[1:]))
    assert abs(s["hold_error_kpa"]["rms"] - rms) < 0.05 * rms
    assert abs(s["hold_error_kpa"]["max_abs"] - 2.0) < 0.05
    assert abs(s["hold_error_kpa"]["max_abs_between_records"] - 3.0) < 0.05
    assert s["alarms"] == ["stuck_reading"] and s["lost_notes"] and "records 3..4" in s["lost_notes"][0]
    cyc = s["cycles"]
    assert cyc["by"] == "cycle" and [c["cycle"] for c in cyc["rows"]] == [1, 2, 3]
    for c in cyc["rows"]:
        assert abs(c["thickness_swing_um"] - 3.0) < 0.05, c
        assert abs(c["pressure_mean_mpa"] - 40.0) < 0.001
    png = (tmp_path / "out" / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
    assert "holding 40 MPa" in (tmp_path / "out" / "summary.txt").read_text()


def test_without_a_cycler_the_statistics_go_by_hour(tmp_path):
    _log(tmp_path / "run.csv")
    r = subprocess.run([str(BIN / "stackpress"), "report", str(tmp_path / "run.csv")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "per hour: 3 rows" in r.stdout and (tmp_path / "run_csv_report" / "report.png").exists()


def test_files_that_are_not_what_they_should_be_get_a_clear_error(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    r = subprocess.run([str(BIN / "stackpress"), "report", str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert r.returncode == 2 and "not a stackpress log" in r.stderr
    (tmp_path / "c.csv").write_text("volts,amps\n3.7,1\n")
    with pytest.raises(CyclerError, match="simple layout"):
        read_cycler(tmp_path / "c.csv")
    r = subprocess.run(
        [str(BIN / "stackpress"), "report", str(tmp_path / "missing.csv")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "can't read" in r.stderr


def test_several_load_cells_are_summarised_and_drawn(tmp_path):
    cols = columns(record_fields(3))
    lines = ["# board: virtual", "# load_cells: 3", "# cell_area_mm2: 78.54", ",".join(cols)]
    for k in range(1, 601):
        f = [1100.0, 1000.0, 1041.6]
        u = 100 * max(abs(x - sum(f) / 3) for x in f) / (sum(f) / 3)
        rec = {
            "boot": 1,
            "seq": k,
            "device_ms": k * 1000,
            "host_time_utc": "2026-11-24T00:00:00+00:00",
            "state": "hold",
            "pressure_mpa": 40.0,
            "setpoint_mpa": 40.0,
            "ref_mpa": 40.0,
            "p_min_mpa": 39.99,
            "p_max_mpa": 40.01,
            "n_samples": 10,
            "force_n": 3141.6,
            "force_ch0_n": f[0],
            "force_ch1_n": f[1],
            "force_ch2_n": f[2],
            "uniformity_pct": round(u, 3),
            "centre_x_mm": 0.6,
            "centre_y_mm": -0.3,
        }
        lines.append(",".join(str(rec.get(c, "")) for c in cols))
        if k == 300:
            ev = {
                "boot": 1,
                "seq": 301,
                "device_ms": 300500,
                "host_time_utc": "2026-11-24T00:00:00+00:00",
                "event": '"{""kind"": ""channel"", ""channel"": 1, ""why"": ""no_data"", ""left"": 2}"',
            }
            lines.append(",".join(str(ev.get(c, "")) for c in cols))
    (tmp_path / "run.csv").write_text("\n".join(lines) + "\n")
    assert report(tmp_path / "run.csv", tmp_path / "out", as_json=True) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["load_cells"] == 3
    assert s["uniformity_pct"]["max"] == pytest.approx(5.042, abs=0.001)  # 1100 against a mean of 1047.2
    assert s["centre_mm"]["x_mean"] == pytest.approx(0.6) and s["centre_mm"]["y_mean"] == pytest.approx(-0.3)
    left = s["channels_left_out"]
    assert len(left) == 1 and left[0]["channel"] == 1 and left[0]["why"] == "no_data"
    assert left[0]["t_h"] == pytest.approx(299.5 / 3600, abs=1e-6)  # on the rows' axis (first row at 0)
    assert (tmp_path / "out" / "report.png").stat().st_size > 20000
    assert "load cell 1 left out" in (tmp_path / "out" / "summary.txt").read_text()


def test_setpoints_are_summarised_apart_and_the_error_axis_shows_the_holds(tmp_path):
    """25 MPa, a ramp, 60 MPa with a reboot and an alarm in it: one summary line per setpoint,
    the error panel scaled to the holds' kPa (not the ramp's MPa), the events marked."""
    from stackpress.figures import plot_run
    from stackpress.logfile import CsvLog, SqliteLog
    from stackpress.report import read_log, summarize

    meta = {"board": "pico", "fixture_id": "f9", "cell_area_mm2": 78.54, "settings": {"hold_alarm_band_mpa": 0.5}}
    meta["record_fields"] = list(record_fields())
    for log in (CsvLog(str(tmp_path / "run.csv"), meta), SqliteLog(str(tmp_path / "run.sqlite"), meta)):
        boot, seq = 1, 0
        for k in range(1200):
            sp = 25.0 if k < 500 else 60.0
            state = "ramp" if 500 <= k < 535 else "hold"
            err = (0.001 if k % 2 else -0.001) * (2 if sp == 60 else 1)
            p = 25.0 + (k - 500) * 1.0 if state == "ramp" else sp + err
            if k == 800:
                boot, seq = 2, 0
                seq += 1
                boot_evt = {"t": "evt", "kind": "boot", "boot": 2, "seq": 1, "device_ms": 0, "reset_cause": "watchdog"}
                log.row(boot_evt, "b2", 1_790_000_000_000 + k * 1000 - 500, "live")
            seq += 1
            rec = {"t": "tel", "boot": boot, "seq": seq, "device_ms": seq * 1000, "state": state}
            rec.update(pressure_mpa=p, setpoint_mpa=sp, p_min_mpa=p - 0.0005, p_max_mpa=p + 0.0005, alarms=[])
            log.row(rec, "b%d" % boot, 1_790_000_000_000 + k * 1000, "live")
            if k == 900:
                seq += 1
                alarm = {"t": "evt", "kind": "alarm", "boot": 2, "seq": seq, "device_ms": seq * 1000}
                alarm["alarms"] = ["stall"]
                log.row(alarm, "b2", 1_790_000_000_000 + k * 1000, "live")
        log.close()
    df = read_log(tmp_path / "run.csv")
    s = summarize(df)
    assert [h["setpoint_mpa"] for h in s["holds"]] == [25.0, 60.0]
    h25, h60 = s["holds"]
    assert h25["rms_kpa"] == pytest.approx(1.0, rel=1e-3) and h60["rms_kpa"] == pytest.approx(2.0, rel=1e-3)
    assert h60["max_abs_between_records_kpa"] == pytest.approx(2.5, rel=1e-3)
    assert h25["hours"] == pytest.approx(499 / 3600, rel=0.01)
    drawn = plot_run(df, s, None, tmp_path / "r.png", "run.csv")
    lo, hi = drawn["ylim"]["error"]
    assert -10 < lo < -2 and 2 < hi < 10, drawn["ylim"]  # kPa: the ramp (MPa off) does not set it
    kinds = [m[1] for m in drawn["marks"]]
    assert kinds == ["boot", "alarm"] and "watchdog" in drawn["marks"][0][2]
    assert [round(m[0]) for m in drawn["marks"]] == [800, 900]  # s from the first record
    text = (tmp_path / "r.png").read_bytes()
    assert text[:4] == b"\x89PNG"
    for name in ("run.csv", "run.sqlite"):
        r = subprocess.run([str(BIN / "stackpress"), "report", str(tmp_path / name)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "holding 25 MPa" in r.stdout and "holding 60 MPa" in r.stdout
    for name in ("run_csv_report", "run_sqlite_report"):  # the two logs' reports do not overwrite each other
        assert (tmp_path / name / "hold.png").exists()


def test_a_run_that_never_held_is_reported_too(tmp_path):
    """Idle all along, three load cells: nothing to say of a hold, everything else said."""
    from stackpress.logfile import CsvLog

    meta = {"board": "pico", "fixture_id": "f2", "record_fields": list(record_fields(3))}
    log = CsvLog(str(tmp_path / "idle.csv"), meta)
    for k in range(1, 121):
        rec = {"t": "tel", "boot": 1, "seq": k, "device_ms": k * 1000, "state": "idle", "alarms": []}
        rec.update(pressure_mpa=0.001, setpoint_mpa=0.0, force_ch0_n=0.1, force_ch1_n=0.0, force_ch2_n=0.05)
        log.row(rec, "b1", 1_790_000_000_000 + k * 1000, "live")
    log.close()
    assert report(tmp_path / "idle.csv", tmp_path / "out", as_json=True) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["holds"] == [] and s["hold_error_kpa"] is None and s["load_cells"] == 3
    assert s["time_in_state_h"] == {"idle": pytest.approx(119 / 3600)}
