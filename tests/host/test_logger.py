"""The logger's bookkeeping: every record once, in order, whatever order they come in."""

import random

from conftest import log_meta

from stackpress.logfile import CsvLog
from stackpress.sequencer import Sequencer


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
    out = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and not line.startswith("boot,"):
            b, s = line.split(",")[:2]
            out.append((int(b), int(s)))
    return out


def test_shuffled_duplicated_records_come_out_once_in_order(tmp_path):
    p = tmp_path / "run.csv"
    seq = Sequencer(CsvLog(str(p), log_meta(units="MPa")))
    recs = [_rec(1, s) for s in range(1, 301)]
    rng = random.Random(4)
    stream = recs + rng.sample(recs, 100)  # duplicates, as a replay overlapping live records gives
    rng.shuffle(stream)
    for r in stream:
        seq.offer(r)
    seq.log.close()
    assert _rows(p) == [(1, s) for s in range(1, 301)]
    assert seq.duplicates == 100 and seq.lost == 0 and seq.want is None


def test_a_hole_asks_for_a_replay_and_what_is_gone_is_written_down(tmp_path):
    p = tmp_path / "run.csv"
    seq = Sequencer(CsvLog(str(p), log_meta()))
    for s in (1, 2, 3, 9, 10):
        seq.offer(_rec(1, s))
    assert seq.want == 4
    seq.replayed({"from_seq": 6, "to_seq": 10, "oldest_seq": 6})  # 4 and 5 are gone
    for s in (6, 7, 8):
        seq.offer(_rec(1, s))
    seq.log.close()
    assert _rows(p) == [(1, s) for s in (1, 2, 3, 6, 7, 8, 9, 10)]
    assert "# lost: records 4..5 of boot 1" in p.read_text() and seq.lost == 2


def test_a_killed_logger_resumes_its_file_without_a_torn_row_or_a_duplicate(tmp_path):
    p = tmp_path / "run.csv"
    log = CsvLog(str(p), log_meta(units="MPa"))
    seq = Sequencer(log)
    for s in range(1, 51):
        seq.offer(_rec(3, s))
    log.close()
    with open(p, "a") as f:
        f.write("3,51,51000,2026-11-23T00:00:00")  # SIGKILL mid-row
    log2 = CsvLog(str(p), {}, resume=True)
    seq2 = Sequencer(log2)
    assert (seq2.boot, seq2.last) == (3, 50)
    seq2.catch_up({"boot": 3, "seq": 80})
    assert seq2.want == 51
    for s in range(40, 81):  # the replay overlaps what the file has
        seq2.offer(_rec(3, s))
    log2.close()
    assert _rows(p) == [(3, s) for s in range(1, 81)]
    assert "# resumed" in p.read_text()


def test_a_reboot_starts_a_new_boot_and_keeps_order(tmp_path):
    p = tmp_path / "run.csv"
    seq = Sequencer(CsvLog(str(p), log_meta()))
    for s in range(1, 6):
        seq.offer(_rec(1, s))
    seq.offer({"t": "evt", "boot": 2, "seq": 1, "kind": "boot", "device_ms": 0})
    seq.offer(_rec(2, 2))
    seq.log.close()
    assert _rows(p) == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 1), (2, 2)]
    assert "# fixture rebooted: boot 2" in p.read_text()
