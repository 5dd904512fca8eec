"""The log's files: SQLite like CSV, a rotating series like one file, and a killed writer
that leaves nothing torn and nothing the next one can't pick up from."""

import datetime
import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import log_meta, read_rows, telemetry

from stackpress.logfile import CsvLog, Rotating, SqliteLog, last_key, open_log, segments
from stackpress.sequencer import Sequencer


def _keys(db_path):
    db = sqlite3.connect(db_path)
    try:
        return [tuple(r) for r in db.execute("SELECT boot, seq FROM records ORDER BY rowid")]
    finally:
        db.close()


def test_sqlite_log_takes_records_once_in_order_and_reads_back_like_csv(tmp_path):
    meta = log_meta(board="pico", fixture_id="e66038b7137a2f2c", cell_area_mm2=78.54, units="MPa")
    logs = [CsvLog(str(tmp_path / "run.csv"), meta), SqliteLog(str(tmp_path / "run.sqlite"), meta)]
    for log in logs:
        seq = Sequencer(log)
        for s in [1, 2, 5, 3, 4, 4, 6, 2] + list(range(7, 60)):
            seq.offer(telemetry(7, s))
        seq.offer({"t": "evt", "boot": 7, "seq": 60, "device_ms": 60000, "kind": "alarm", "alarms": ["stall"]})
        log.note("a note after row 60")
        log.close()
        assert seq.duplicates == 2
    assert _keys(str(tmp_path / "run.sqlite")) == [(7, s) for s in range(1, 61)]
    csv_read, sql_read = read_rows(str(tmp_path / "run.csv")), read_rows(str(tmp_path / "run.sqlite"))

    def same(x):  # the two files were written a few ms apart: host times differ
        if isinstance(x, dict):
            return {k: same(v) for k, v in x.items() if k not in ("host_time_utc", "elapsed_s")}
        return [same(v) for v in x] if isinstance(x, list) else x

    for a, b in zip(csv_read, sql_read):
        assert same(a) == same(b)
    meta_back, rows, events, notes = sql_read
    assert meta_back["fixture_id"] == "e66038b7137a2f2c" and len(rows) == 59 and rows[-1]["pressure_mpa"] == 40.059
    assert events[0]["alarms"] == ["stall"] and notes == ["a note after row 60"]


KILLED_WRITER = """
import json, os, sys
sys.path.insert(0, sys.argv[2])
from stackpress.logfile import SqliteLog
log = SqliteLog(sys.argv[1], json.loads(sys.argv[3]), resume=True)
for s in range(1, 41):
    log.row({"t": "tel", "boot": 1, "seq": s, "device_ms": s, "alarms": []})
log.flush()  # the logger commits once a loop: 1..40 are in
for s in range(41, 50):
    log.row({"t": "tel", "boot": 1, "seq": s, "device_ms": s, "alarms": []})
os.kill(os.getpid(), 9)  # SIGKILL before the next commit
"""


def test_a_killed_sqlite_writer_leaves_a_sound_file_ending_at_its_last_commit(tmp_path):
    import stackpress

    path = tmp_path / "run.sqlite"
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_WRITER,
            str(path),
            str(__import__("pathlib").Path(stackpress.__file__).parent.parent),
            json.dumps(log_meta(board="pico")),
        ]
    )
    assert p.returncode == -9
    assert last_key(str(path)) == (1, 40)
    log = SqliteLog(str(path), {}, resume=True)
    seq = Sequencer(log)
    assert (seq.boot, seq.last) == (1, 40)
    for s in range(30, 61):  # the fixture's replay overlaps what the file has
        seq.offer(telemetry(1, s))
    log.close()
    assert _keys(str(path)) == [(1, s) for s in range(1, 61)]
    assert sqlite3.connect(str(path)).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_file_that_is_not_a_log_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(str(path))
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    from stackpress.logfile import LogError

    with pytest.raises(LogError, match="not a stackpress log"):
        SqliteLog(str(path), {}, resume=True)


@pytest.mark.parametrize("ext", [".csv", ".sqlite"])
def test_rotation_by_size_splits_a_log_into_files_that_join_up_exactly(tmp_path, ext):
    base = str(tmp_path / ("run" + ext))
    log = open_log(base, log_meta(board="pico", fixture_id="f1"), max_bytes=12000)
    seq = Sequencer(log)
    for s in range(1, 401):
        seq.offer(telemetry(2, s))
    log.close()
    files = segments(base)
    assert len(files) >= 3 and log.files == len(files)
    meta, rows, _, notes = read_rows(files)
    assert [(r["boot"], r["seq"]) for r in rows] == [(2, s) for s in range(1, 401)]
    assert meta["files"] == len(files) and meta["fixture_id"] == "f1"
    for prev, cur in zip(files, files[1:]):  # each file names the one it continues
        assert read_rows([cur])[0]["continues"] == prev.rsplit("/", 1)[1]
    assert notes.count("continued in the next file (rotation)") == len(files) - 1

    # A new logger on the same name resumes the newest file and carries on the sequence.
    log2 = open_log(base, log_meta(board="pico"), max_bytes=12000)
    assert log2.last == (2, 400) and log2.path == files[-1]
    seq2 = Sequencer(log2)
    for s in range(390, 421):
        seq2.offer(telemetry(2, s))
    log2.close()
    rows = read_rows(segments(base))[1]
    assert [r["seq"] for r in rows] == list(range(1, 421))


def test_a_new_utc_day_starts_a_new_file(tmp_path):
    base = str(tmp_path / "run.csv")
    log = Rotating(base, log_meta(board="pico"), daily=True)
    seq = Sequencer(log)
    for s in range(1, 11):
        seq.offer(telemetry(1, s))
    assert len(segments(base)) == 1
    log._day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    for s in range(11, 21):
        seq.offer(telemetry(1, s))
    log.close()
    files = segments(base)
    assert len(files) == 2
    assert [r["seq"] for r in read_rows(files[1:])[1]] == list(range(11, 21))
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert files[1].rsplit("/", 1)[1].startswith("run.%sT" % today)


def test_resuming_when_the_newest_file_has_no_row_yet_finds_the_last_row_before_it(tmp_path):
    base = str(tmp_path / "run.csv")
    log = open_log(base, log_meta(), max_bytes=3000)
    seq = Sequencer(log)
    for s in range(1, 30):
        seq.offer(telemetry(1, s))
    log.cur.close()
    log.cur = log._open(log.cur.path)  # a rotation, then the logger was killed before a row
    log.close()
    log2 = open_log(base, log_meta(), max_bytes=3000)
    assert log2.last == (1, 29)
    log2.close()


def test_several_load_cells_get_a_column_each_and_a_resumed_file_keeps_its_columns(tmp_path):
    meta = log_meta(3, board="virtual", cell_area_mm2=78.54, load_cells=3)
    for name, cls in (("run.csv", CsvLog), ("run.sqlite", SqliteLog)):
        path = str(tmp_path / name)
        log = cls(path, meta)
        for s in range(1, 6):
            rec = dict(
                telemetry(1, s),
                force_ch0_n=1100.0 + s,
                force_ch1_n=1000.0,
                force_ch2_n=1041.6 - s,
                uniformity_pct=5.0 + s / 10,
                centre_x_mm=0.4,
                centre_y_mm=-0.2,
            )
            log.row(rec)
        log.row(
            {
                "t": "evt",
                "boot": 1,
                "seq": 6,
                "device_ms": 6000,
                "kind": "channel",
                "channel": 2,
                "excluded": True,
                "why": "stuck",
                "left": 2,
            }
        )
        log.close()
        # a logger started later with the wrong idea of the fixture keeps the file's columns
        log = cls(path, log_meta(1, load_cells=1), resume=True)
        log.row(
            dict(
                telemetry(1, 7),
                force_ch0_n=1107.0,
                force_ch1_n=1000.0,
                force_ch2_n=1034.6,
                uniformity_pct=5.7,
                centre_x_mm=0.5,
                centre_y_mm=-0.2,
            )
        )
        log.close()
        meta_back, rows, events, _ = read_rows(path)
        assert meta_back["load_cells"] == "3"
        assert [r["force_ch0_n"] for r in rows] == [1101.0, 1102.0, 1103.0, 1104.0, 1105.0, 1107.0], name
        assert rows[2]["force_ch2_n"] == 1038.6 and rows[-1]["uniformity_pct"] == 5.7
        assert rows[-1]["centre_x_mm"] == 0.5 and rows[0]["centre_y_mm"] == -0.2
        assert events[0]["kind"] == "channel" and events[0]["why"] == "stuck"
    header = [line for line in open(tmp_path / "run.csv") if not line.startswith("#")][0].strip().split(",")
    assert header[header.index("raw_counts") + 1 : header.index("alarms")] == [
        "force_ch0_n",
        "force_ch1_n",
        "force_ch2_n",
        "uniformity_pct",
        "centre_x_mm",
        "centre_y_mm",
    ]
