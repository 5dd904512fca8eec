"""Real cyclers' files (../shared/cycler-data: BioLogic, Arbin, Neware, Maccor, BDF) read by the
libraries the field maintains, with units checked against what each file is known to hold
(its README: the vendor's header, yadg's and fastnda's counts), and put on a log's time axis."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, log_meta, telemetry

from stackpress.cycler import CyclerError, read
from stackpress.logfile import CsvLog

DATA = ROOT.parent / "shared" / "cycler-data"
BIN = Path(sys.executable).parent
if not DATA.is_dir():
    pytest.skip("../shared/cycler-data is not here: tests with real cyclers' files need it", allow_module_level=True)

# file: rows, volts (min, max), largest |current| A, span of the test s, cycles (or None), clock
READ = {
    "arbin/navani__bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx": (
        4526,
        (0.05, 2.641),
        5.3e-5,
        1204816,
        1,
        "local",
    ),
    "bdf/bdfrepo__SINTEF__LiGrR2032__2024-04-30__25degC__Landt.bdf.csv": (
        25162,
        (0.01, 2.9215),
        2e-4,
        262658,
        None,
        "none",
    ),
    "bdf/bdfrepo__sample.bdf.csv": (3, (3.5, 3.7), 0.1, 2, None, "none"),
    "biologic/bdfrepo__GCPL-0.mpr": (4, (3.515, 3.516), 0.0, 2.8, None, "local"),
    "biologic/navani__00_test_02_MB_C01.mpr": (11, (-1.651, -1.650), 5.7e-5, 10, None, "local"),
    "biologic/navani__jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr": (
        46102,
        (2.0, 3.8),
        8.9e-5,
        456310,
        7,
        "local",
    ),
    "biologic/yadg__gcpl.issue_149.mpt": (132, (3.414, 3.447), 3e-5, 630, None, "local"),
    "biologic/yadg__mb.issue_95.de.mpt": (33, (2.326, 2.333), 0.1, 30, None, "local"),
    "maccor/battdat__maccor_example.001": (8, (3.306, 3.307), 0.0, 70, None, "local"),
    "neware/fastnda__nw4-120-1-6-53.ndax": (18700, (1.646, 5.0), 1.94e-3, 173046, 160, "UTC"),
    "neware/navani__test.ndax": (1464, (1.5, 4.4), 1.2e-4, 43800, 1, "local"),
    "neware/newarenda__Issue72_TestFile.nda": (6670, (1.721, 4.2), 3.0, 89612, 3, "UTC"),
}
NOT_READ = {  # no maintained reader takes these: a message, not a traceback
    "arbin/beep__FastCharge_000025_CH8.csv": "navani could not read it",
    "arbin/beep__FastCharge_000025_CH8_Metadata.csv": "navani could not read it",
    "maccor/beep__maccor_test_file_4267-66-6519.041": "navani could not read it",
}


@pytest.mark.parametrize("name", sorted(READ))
def test_a_real_cyclers_file_is_read_with_its_units(name):
    rows, (v_lo, v_hi), i_max_a, span_s, cycles, clock = READ[name]
    c = read(DATA / name, tz="UTC")
    t = c.table
    assert len(t) == rows, c.reader
    assert t["voltage_v"].min() == pytest.approx(v_lo, abs=2e-3)
    assert t["voltage_v"].max() == pytest.approx(v_hi, abs=2e-3)
    assert t["current_a"].abs().max() == pytest.approx(i_max_a, rel=0.05, abs=1e-9)  # A, whatever the vendor wrote
    span = t["test_time_s"].max() - t["test_time_s"].min()
    assert span == pytest.approx(span_s, rel=0.01, abs=1.0)
    if cycles is not None:
        assert t["cycle"].max() == cycles
    assert c.clock.startswith(clock), c.clock
    assert t["time_utc"].notna().all() == (clock != "none")
    assert c.reader.split()[0] in ("navani", "galvani")


@pytest.mark.parametrize("name", sorted(NOT_READ))
def test_a_file_no_reader_takes_gets_a_message(name):
    with pytest.raises(CyclerError, match=NOT_READ[name]):
        read(DATA / name)


def test_an_arbin_res_needs_mdbtools_or_is_read():
    import shutil

    name = DATA / "arbin/navani__arbin_example.res"
    if shutil.which("mdb-export") is None:
        with pytest.raises(CyclerError, match="apt-get install mdbtools"):
            read(name)
        return
    t = read(name, tz="UTC").table
    assert len(t) == 2150 and t["voltage_v"].max() == pytest.approx(4.3, abs=0.01)
    assert t["current_a"].abs().max() == pytest.approx(87e-6, rel=0.05)


def _log(path, start, hours=6.0, board="pico"):
    """A fixture's log holding 40 MPa, a record a minute, its first one at `start` (UTC)."""
    log = CsvLog(str(path), log_meta(board=board, fixture_id="f7"))
    t0_ms = pd.Timestamp(start).value // 1_000_000
    for k in range(int(hours * 60)):
        log.row(telemetry(1, k + 1, device_ms=k * 60_000), "b1", t0_ms + k * 60_000, "live")
    log.close()


def _report(*args):
    argv = [str(BIN / "stackpress"), "report", *map(str, args), "--json"]
    return subprocess.run(argv, capture_output=True, text=True)


def test_the_cyclers_file_goes_on_the_logs_axis_and_a_clock_off_is_said(tmp_path):
    mpr = DATA / "biologic/navani__jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr"  # from 2020-10-26 12:49:58
    _log(tmp_path / "same.csv", "2020-10-26T12:49:58Z")
    r = _report(tmp_path / "same.csv", "--cycler", mpr, "--cycler-tz", "UTC", "--out", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["cycler"]["reader"].startswith("navani") and s["cycler"]["rows"] == 46102
    assert not any("time zone" in n for n in s["cycler"]["notes"]), s["cycler"]
    assert s["cycles"]["by"] == "cycle" and s["cycles"]["rows"][0]["cycle"] == 0

    _log(tmp_path / "hour.csv", "2020-10-26T13:49:58Z")  # the cycler's PC an hour behind (its local time)
    r = _report(tmp_path / "hour.csv", "--cycler", mpr, "--cycler-tz", "UTC", "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    notes = json.loads(r.stdout)["cycler"]["notes"]
    assert any("-1 h before the log" in n and "time zone?" in n for n in notes), notes
    r = _report(tmp_path / "hour.csv", "--cycler", mpr, "--cycler-tz=-01:00", "--out", tmp_path / "c")
    assert not any("time zone" in n for n in json.loads(r.stdout)["cycler"]["notes"])  # said in its zone: none

    _log(tmp_path / "later.csv", "2020-11-20T00:00:00Z")  # weeks after the cycling
    r = _report(tmp_path / "later.csv", "--cycler", mpr, "--cycler-tz", "UTC", "--out", tmp_path / "d")
    assert r.returncode == 2 and "does not overlap the log" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = _report(tmp_path / "later.csv", "--cycler", mpr, "--cycler-align", "start", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    assert any("overlap for" in n for n in json.loads(r.stdout)["cycler"]["notes"])  # 6 h of a 5-day file


@pytest.mark.parametrize("name", sorted(set(READ) - {"bdf/bdfrepo__sample.bdf.csv"}))
def test_every_file_read_is_merged_with_a_virtual_fixtures_log(tmp_path, name):
    """A virtual fixture runs faster than real time: its cycler's file goes at its start."""
    _log(tmp_path / "run.csv", "2026-11-24T00:00:00Z", hours=2.0, board="virtual")
    r = _report(tmp_path / "run.csv", "--cycler", DATA / name, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert any("log's start" in n for n in s["cycler"]["notes"]), s["cycler"]
    assert (tmp_path / "out" / "report.png").stat().st_size > 20000


@pytest.mark.parametrize("name", sorted(READ))
def test_every_file_read_is_exported_as_bdf_with_a_virtual_fixtures_log(tmp_path, name):
    from stackpress.export import table

    _log(tmp_path / "run.csv", "2026-11-24T00:00:00Z", hours=2.0, board="virtual")
    frame, meta = table([tmp_path / "run.csv"], DATA / name, fmt="bdf")
    rows = READ[name][0]
    assert meta["rows"] == {"total": 120 + rows, "fixture": 120, "cycler": rows}
    cyc = frame[frame["Record Source"] == "cycler"]
    assert cyc["Voltage / V"].between(READ[name][1][0] - 2e-3, READ[name][1][1] + 2e-3).all()
    assert (frame["Test Time / s"].diff().dropna() >= 0).all()
    on_both = frame[frame["Record Source"] == "fixture"]["Voltage / V"].notna()
    assert on_both.any() or READ[name][3] < 120  # inside the cycler's span the fixture's rows have its voltage


def test_a_file_that_is_no_cyclers_is_refused_by_the_command_line(tmp_path):
    _log(tmp_path / "run.csv", "2026-11-24T00:00:00Z", hours=1.0)
    for name in NOT_READ:
        r = _report(tmp_path / "run.csv", "--cycler", DATA / name, "--out", tmp_path / "o")
        assert r.returncode == 2 and "could not read it" in r.stderr and "Traceback" not in r.stderr, r.stderr
        argv = [BIN / "stackpress", "export", tmp_path / "run.csv", "--cycler", DATA / name, "--format", "csv"]
        r = subprocess.run(argv, capture_output=True, text=True)
        assert r.returncode == 2 and "could not read it" in r.stderr and "Traceback" not in r.stderr, r.stderr
    (tmp_path / "x.json").write_text("{}")
    r = _report(tmp_path / "run.csv", "--cycler", tmp_path / "x.json", "--out", tmp_path / "o")
    assert r.returncode == 2 and "not a cycler export stackpress knows" in r.stderr


def test_a_notebook_merges_a_cyclers_file_with_a_log(tmp_path):
    import stackpress

    _log(tmp_path / "run.csv", "2024-02-01T20:30:00Z", hours=2.0)
    df = stackpress.read_log(tmp_path / "run.csv")
    cyc = stackpress.read_cycler(DATA / "neware/navani__test.ndax", tz="UTC")  # from 2024-02-01 20:24:23
    assert cyc.attrs["reader"].startswith("navani") and cyc.attrs["clock"].startswith("local time")
    both = pd.merge_asof(df, cyc.dropna(subset=["time_utc"]), left_on="host_time_utc", right_on="time_utc")
    assert len(both) == len(df) and both["voltage_v"].between(1.5, 4.4).all()
