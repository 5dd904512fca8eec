"""A log read as one table (stackpress.read_log): typed columns, CSV and SQLite alike, a
rotating set like one file, torn and foreign files handled, the time axis stitched."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import log_meta, telemetry

import stackpress
from stackpress.logfile import CsvLog, LogError, SqliteLog, open_log, segments


def _write(log, boots=((1, 20),), t0_ms=1_790_000_000_000):
    k = 0
    for boot, n in boots:
        for s in range(1, n + 1):
            rec = telemetry(boot, s, raw_counts=123456789, alarms=["stall"] if s == 3 else [])
            log.row(rec, "id%d" % boot, t0_ms + k * 1000, "live")
            k += 1
        evt = {"t": "evt", "kind": "boot", "boot": boot, "seq": n + 1, "device_ms": n * 1000}
        log.row(evt, "id%d" % boot, t0_ms + k * 1000, "live")
    log.note("a note")
    log.close()


def test_columns_are_typed_and_the_rest_of_the_log_is_in_attrs(tmp_path):
    path = tmp_path / "run.csv"
    _write(CsvLog(str(path), log_meta(board="pico", fixture_id="f1", cell="Li|LPSCl|NMC")))
    df = stackpress.read_log(path)
    assert len(df) == 20
    assert df["boot"].dtype == np.int64 and df["seq"].dtype == np.int64 and df["device_ms"].dtype == np.int64
    assert str(df["host_time_utc"].dtype) == "datetime64[ms, UTC]"
    assert isinstance(df["state"].dtype, pd.CategoricalDtype) and list(df["alarms"].cat.categories) == ["", "stall"]
    assert df["pressure_mpa"].dtype == np.float64 and df["pressure_mpa"].iloc[4] == 40.005
    assert df["raw_counts"].iloc[0] == 123456789  # counts stay exact
    assert df["thickness_um"].isna().all()  # a field the records did not carry
    assert df["elapsed_s"].iloc[-1] == 19.0 and df.attrs["meta"]["time_axis"] == "host clock, UTC"
    assert df.attrs["meta"]["fixture_id"] == "f1" and df.attrs["meta"]["cell"] == "Li|LPSCl|NMC"
    assert [e["kind"] for e in df.attrs["events"]] == ["boot"] and df.attrs["events"][0]["seq"] == 21
    assert df.attrs["notes"] == ["a note"]
    small = stackpress.read_log(path, compact=True)
    assert small["pressure_mpa"].dtype == np.float32 and small["raw_counts"].iloc[0] == 123456789
    assert small.memory_usage().sum() < df.memory_usage().sum()


def test_sqlite_reads_as_csv_does(tmp_path):
    meta = log_meta(board="pico", fixture_id="f1")
    _write(CsvLog(str(tmp_path / "run.csv"), meta), boots=((1, 15), (2, 10)))
    _write(SqliteLog(str(tmp_path / "run.sqlite"), meta), boots=((1, 15), (2, 10)))
    a, b = stackpress.read_log(tmp_path / "run.csv"), stackpress.read_log(tmp_path / "run.sqlite")
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["events"] == b.attrs["events"] and a.attrs["notes"] == b.attrs["notes"]


def test_a_rotating_log_reads_as_one_in_any_order(tmp_path):
    base = str(tmp_path / "run.csv")
    log = open_log(base, log_meta(board="pico", fixture_id="f1"), max_bytes=6000)
    for s in range(1, 301):
        log.row(telemetry(1, s), "id1", 1_790_000_000_000 + s * 1000, "live")
    log.close()
    files = segments(base)
    assert len(files) >= 3
    df = stackpress.read_log(list(reversed(files)))
    assert df["seq"].tolist() == list(range(1, 301)) and df.attrs["meta"]["files"] == len(files)


def test_the_virtual_fixtures_time_goes_on_across_its_boots(tmp_path):
    path = tmp_path / "run.csv"
    _write(CsvLog(str(path), log_meta(board="virtual")), boots=((1, 10), (2, 5)))
    df = stackpress.read_log(path)
    # boot 1: 1..10 s of device time; boot 2 starts again at 1 s, after the last of boot 1
    assert df["elapsed_s"].tolist() == [float(x) for x in range(10)] + [9.0 + x for x in range(1, 6)]
    assert df.attrs["meta"]["time_axis"].startswith("virtual fixture time")


def test_a_torn_last_line_is_left_out_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "run.csv"
    _write(CsvLog(str(path), log_meta(board="pico")))
    with open(path, "a") as f:
        f.write("1,99,99000,2026-")  # a logger killed mid-write
    assert stackpress.read_log(path)["seq"].max() == 20
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LogError, match="not a stackpress log"):
        stackpress.read_log(tmp_path / "x.csv")
    with pytest.raises(LogError, match="can't read"):
        stackpress.read_log(tmp_path / "missing.csv")
    (tmp_path / "x.sqlite").write_text("not a database")
    with pytest.raises(LogError, match="not a stackpress log"):
        stackpress.read_log(tmp_path / "x.sqlite")
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace("1,5,5000,", "1,five,5000,", 1))
    with pytest.raises(LogError, match="without its seq"):
        stackpress.read_log(bad)


def test_columns_can_be_left_unread_but_never_the_keys(tmp_path):
    path = tmp_path / "run.sqlite"
    _write(SqliteLog(str(path), log_meta(board="pico")))
    from stackpress.logtable import read_log

    df = read_log(path, columns=lambda c: c not in ("raw_counts", "seq", "state", "boot", "device_ms"))
    assert "raw_counts" not in df and "seq" not in df
    assert all(k in df for k in ("state", "boot", "device_ms", "host_time_utc"))
    assert json.loads(df.attrs["meta"]["record_fields"])  # the metadata whole
