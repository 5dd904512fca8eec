"""`stackpress export`: a log and a cycler's file as one table on one time axis, in the
Battery Data Format's labels (ontology 1.3.0) or stackpress's own names, CSV or Parquet."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import log_meta, telemetry

from stackpress.export import fill
from stackpress.logfile import CsvLog

BIN = Path(sys.executable).parent
LOG_T0 = pd.Timestamp("2026-03-01T10:00:00Z")


def _log(path, board="pico", records=60, device0_ms=0):
    """A fixture holding 40 MPa, a record a minute from LOG_T0, the cell growing 0.02 µm a record."""
    log = CsvLog(str(path), log_meta(board=board, fixture_id="f7", cell="LPSCl-NMC 7"))
    t0_ms = LOG_T0.value // 1_000_000
    for k in range(records):
        rec = telemetry(1, k + 1, device_ms=device0_ms + k * 60_000, thickness_um=0.02 * k, temperature_c=25.5)
        log.row(rec, "b1", t0_ms + k * 60_000, "live")
    log.close()


CYCLER_T0 = LOG_T0 - pd.Timedelta(seconds=70)


def _cycler_csv(path, start=CYCLER_T0, rows=600, every_s=7.0):
    """A cycler's export in stackpress's simple layout: the voltage a ramp in time (so a value
    between two rows is known exactly), the current and the step (1, 2, 1, ...) change every
    100 rows, the cycle every 200."""
    k = np.arange(rows)
    t = start + pd.to_timedelta(k * every_s, unit="s")
    pd.DataFrame(
        {
            "datetime": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "time_s": k * every_s,
            "voltage_v": 3.0 + 1e-4 * k * every_s,
            "current_a": np.where((k // 100) % 2 == 0, 1e-3, -1e-3),
            "cycle": k // 200,
            "step": 1 + (k // 100) % 2,
        }
    ).to_csv(path, index=False)
    return t, 3.0 + 1e-4 * k * every_s


def _export(*args):
    argv = [str(BIN / "stackpress"), "export", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True)


def test_fill_between_rows_and_never_across_a_gap_or_past_the_ends():
    t = np.array([0.0, 10.0, 20.0, 100.0])
    y = np.array([0.0, 1.0, 2.0, 10.0])
    x = np.array([-1.0, 0.0, 5.0, 15.0, 20.0, 50.0, 100.0, 101.0])
    lin = fill(t, y, x, gap_s=30.0, how="linear")
    np.testing.assert_allclose(lin, [np.nan, 0.0, 0.5, 1.5, 2.0, np.nan, 10.0, np.nan])
    last = fill(t, y, x, gap_s=30.0, how="last")
    np.testing.assert_allclose(last, [np.nan, 0.0, 0.0, 1.0, 2.0, np.nan, 10.0, np.nan])
    words = fill(t, np.array(["a", "b", "c", "d"], dtype=object), x, gap_s=30.0, how="last")
    assert list(words) == [None, "a", "a", "b", "c", None, "d", None]


def test_a_bdf_export_has_the_specs_labels_every_row_and_says_how_it_was_filled(tmp_path):
    _log(tmp_path / "run.csv")
    cyc_t, volts = _cycler_csv(tmp_path / "cycler.csv")
    out = tmp_path / "cell7.bdf.csv"
    r = _export(tmp_path / "run.csv", "--cycler", tmp_path / "cycler.csv", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout)
    assert said["rows"] == {"total": 660, "fixture": 60, "cycler": 600}
    df = pd.read_csv(out)
    assert list(df.columns[:3]) == ["Test Time / s", "Unix Time / s", "Record Source"]
    for label in ("Voltage / V", "Current / A", "Cycle Count / 1", "Step Count / 1", "Applied Pressure / Pa"):
        assert label in df.columns
    assert "Fixture Thickness / um" in df.columns and "Fixture Setpoint / Pa" in df.columns
    assert len(df) == 660 and (np.diff(df["Test Time / s"]) >= 0).all() and df["Test Time / s"].iloc[0] == 0
    fx, cy = df[df["Record Source"] == "fixture"], df[df["Record Source"] == "cycler"]
    # the fixture's own rows: its values, pressure in Pa; the cycler's voltage between its rows
    np.testing.assert_allclose(fx["Applied Pressure / Pa"], (40.0 + np.arange(1, 61) / 1000) * 1e6)
    np.testing.assert_allclose(fx["Fixture Thickness / um"], 0.02 * np.arange(60), atol=1e-9)
    unix = fx["Unix Time / s"].to_numpy()
    np.testing.assert_allclose(unix, LOG_T0.timestamp() + 60.0 * np.arange(60), atol=1e-3)
    ramp = 3.0 + 1e-4 * (unix - cyc_t[0].timestamp())  # the cycler's voltage, a ramp in time
    np.testing.assert_allclose(fx["Voltage / V"], ramp, atol=1e-9)
    # the current changes in steps: the last one before, never a value between
    assert set(fx["Current / A"].round(6)) <= {1e-3, -1e-3}
    # the cycler's own rows: its values at its times, the fixture's pressure only inside the log
    np.testing.assert_allclose(cy["Voltage / V"], volts, atol=1e-9)
    np.testing.assert_allclose(cy["Unix Time / s"], [t.timestamp() for t in cyc_t], atol=1e-3)
    inside = (cy["Unix Time / s"] >= unix[0]) & (cy["Unix Time / s"] <= unix[-1])
    assert cy.loc[inside, "Applied Pressure / Pa"].between(40.0e6, 40.061e6).all()
    assert cy.loc[~inside, "Applied Pressure / Pa"].isna().all() and (~inside).sum() == 94
    assert cy["Cycle Count / 1"].tolist() == [k // 200 for k in range(600)]
    assert cy["Step ID"].tolist() == [1 + (k // 100) % 2 for k in range(600)]
    assert cy["Step Count / 1"].tolist() == [1 + k // 100 for k in range(600)]  # never repeats

    meta = json.loads((tmp_path / "cell7.bdf.metadata.json").read_text())
    assert meta["format"].endswith("ontology 1.3.0") and meta["bdf_terms"].startswith("https://w3id.org/")
    assert [c["name"] for c in meta["columns"]] == list(df.columns)
    assert "interpolated" in meta["filling"] and meta["log"]["cell"] == "LPSCl-NMC 7"
    custom = {v["name"]: v for v in meta["battinfo_dataset"]["dataset"]["variable_measured"]}
    assert custom["Fixture Thickness"]["unit_text"] == "um" and "EMMO" in custom["Fixture Thickness"]["same_as"]
    assert "no thickness column" in custom["Fixture Thickness"]["description"]
    assert "Applied Pressure" not in custom and "Voltage" not in custom  # the spec's own terms


def test_the_bdf_file_reads_back_through_the_fields_library(tmp_path):
    pytest.importorskip("navani")
    from stackpress.cycler import read

    _log(tmp_path / "run.csv")
    _cycler_csv(tmp_path / "cycler.csv")
    out = tmp_path / "cell7.bdf.csv"
    assert _export(tmp_path / "run.csv", "--cycler", tmp_path / "cycler.csv", "--out", out).returncode == 0
    back = read(out)
    assert back.reader.startswith("navani") and len(back.table) == 660
    assert back.table["voltage_v"].between(3.0, 3.5).all()


def test_bdf_needs_the_cyclers_voltage_and_current_and_writes_nothing_without(tmp_path):
    _log(tmp_path / "run.csv")
    r = _export(tmp_path / "run.csv", "--out", tmp_path / "x.bdf.csv")
    assert r.returncode == 2 and "BDF requires Voltage / V and Current / A" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.glob("x.*"))
    r = _export(tmp_path / "run.csv", "--format", "parquet", "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and "writes a .parquet file" in r.stderr


def test_csv_and_parquet_keep_stackpress_names_and_the_same_values(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    _log(tmp_path / "run.csv")
    _cycler_csv(tmp_path / "cycler.csv")
    r = _export(tmp_path / "run.csv", "--cycler", tmp_path / "cycler.csv", "--format", "csv")
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / "run_export.csv")
    for col in ("test_time_s", "unix_time_s", "source", "boot", "seq", "pressure_mpa", "cycler_voltage_v"):
        assert col in csv.columns
    r = _export(tmp_path / "run.csv", "--cycler", tmp_path / "cycler.csv", "--format", "parquet", "--json")
    assert r.returncode == 0, r.stderr
    table = pq.read_table(json.loads(r.stdout)["file"])
    assert json.loads(table.schema.metadata[b"stackpress"])["rows"]["total"] == 660
    assert str(table.schema.field("seq").type) == "int64" and str(table.schema.field("source").type) == "string"
    par = table.to_pandas()
    assert list(par.columns) == list(csv.columns) and str(par["seq"].dtype) == "Int64"
    np.testing.assert_allclose(par["pressure_mpa"], csv["pressure_mpa"], rtol=1e-9)
    np.testing.assert_allclose(par["cycler_voltage_v"], csv["cycler_voltage_v"], rtol=1e-9)


def test_a_virtual_fixtures_log_has_no_unix_time_and_says_why(tmp_path):
    _log(tmp_path / "run.csv", board="virtual")
    _cycler_csv(tmp_path / "cycler.csv", start=pd.Timestamp("2020-01-01T00:00:00Z"))  # any clock: put at the start
    r = _export(tmp_path / "run.csv", "--cycler", tmp_path / "cycler.csv", "--json")
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout)
    assert "Unix Time / s" not in said["columns"] and any("log's start" in n for n in said["cycler_notes"])
    meta = json.loads((tmp_path / "run.bdf.metadata.json").read_text())
    assert "not a clock" in meta["log"]["no_unix_time"]


def test_the_virtual_cyclers_file_goes_on_the_fixtures_own_clock(tmp_path):
    """Its test time is the virtual fixture's device time: --cycler-align device."""
    _log(tmp_path / "run.csv", board="virtual", device0_ms=600_000)  # the logger started 600 s in
    k = np.arange(800)
    pd.DataFrame({"time_s": 7.0 * k, "voltage_v": 3.0 + 7e-4 * k, "current_a": 1e-3}).to_csv(
        tmp_path / "cycler.csv", index=False
    )
    r = _export(
        tmp_path / "run.csv", "--cycler", tmp_path / "cycler.csv", "--cycler-align", "device", "--format", "csv"
    )
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "run_export.csv")
    fx = df[df["source"] == "fixture"]
    device_s = 600.0 + 60.0 * np.arange(60)
    np.testing.assert_allclose(fx["cycler_voltage_v"], 3.0 + 1e-4 * device_s, atol=1e-9)


def test_the_csv_is_the_same_through_pyarrow_and_through_pandas(tmp_path):
    """Where pyarrow is installed it writes the CSV (ten times as fast); without it pandas
    does: the two files read back the same."""
    pytest.importorskip("pyarrow")
    from stackpress.export import table, write_csv

    _log(tmp_path / "run.csv")
    _cycler_csv(tmp_path / "cycler.csv")
    frame, _ = table([tmp_path / "run.csv"], tmp_path / "cycler.csv", fmt="bdf")
    write_csv(frame, tmp_path / "a.csv", lambda _: None, arrow=True)
    write_csv(frame, tmp_path / "p.csv", lambda _: None, arrow=False)
    a, p = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "p.csv")
    assert list(a.columns) == list(p.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(a, p, check_dtype=False)  # pyarrow writes 60.0 as 60
    assert "40001000" in (tmp_path / "a.csv").read_text()  # Pa without float noise
