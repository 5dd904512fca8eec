"""Logging a fixture to CSV: every record the fixture sends, written through.

Metadata lines start with '#'; then a header; then one row per telemetry record
and one per event (its JSON in the `event` column), in sequence order. A gap in
the sequence numbers is written down where it happened, so loss is never silent.
Rows are flushed as they come and fsync'd every second: a killed logger leaves at
most a torn last line.
"""
import datetime
import json
import os
import sys
import time

TEL_FIELDS = ["state", "pressure_mpa", "setpoint_mpa", "ref_mpa", "p_min_mpa", "p_max_mpa", "n_samples",
              "force_n", "position_um", "thickness_um", "temperature_c", "raw_counts"]
COLUMNS = ["seq", "device_ms", "host_time_utc"] + TEL_FIELDS + ["alarms", "event"]
UNITS = ("pressure MPa (p_min/p_max: extremes of the n_samples samples since the previous row); force N; "
         "position um (motor travel, + = compression); thickness_um: the cell's thickness change since the "
         "current hold began (+ = thicker); temperature_c: frame thermistor degC; device_ms: ms since boot")


def _utc():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class CsvLog:
    def __init__(self, path, meta):
        if os.path.exists(path):
            raise FileExistsError(path)
        self.f = open(path, "w", buffering=1)
        for k, v in meta.items():
            self.f.write("# %s: %s\n" % (k, v if isinstance(v, str) else json.dumps(v)))
        self.f.write(",".join(COLUMNS) + "\n")
        self.last_seq = None
        self.rows = 0
        self.gaps = 0
        self._synced = time.monotonic()

    def write(self, rec):
        seq = rec.get("seq")
        if self.last_seq is not None and isinstance(seq, int) and seq != self.last_seq + 1:
            if seq <= self.last_seq and rec.get("t") == "evt" and rec.get("kind") == "boot":
                self.f.write("# fixture rebooted: sequence restarts at %d\n" % seq)
            else:
                self.gaps += 1
                self.f.write("# gap: records %d..%d not received\n" % (self.last_seq + 1, seq - 1))
        self.last_seq = seq
        now = _utc()
        if rec.get("t") == "tel":
            row = ([rec.get("seq"), rec.get("device_ms"), now] + [rec.get(k) for k in TEL_FIELDS]
                   + ["|".join(rec.get("alarms", [])), ""])
        else:
            ev = {k: v for k, v in rec.items() if k not in ("t", "seq", "device_ms")}
            row = [rec.get("seq"), rec.get("device_ms"), now] + [""] * (len(TEL_FIELDS) + 1) + [json.dumps(ev)]
        self.f.write(",".join(_cell(v) for v in row) + "\n")
        self.rows += 1
        if time.monotonic() - self._synced >= 1.0:
            os.fsync(self.f.fileno())
            self._synced = time.monotonic()

    def close(self):
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


def _cell(v):
    if v is None:
        return ""
    s = str(v)
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def metadata(link, status):
    return {
        "stackpress log": "one row per telemetry record or event, in sequence order",
        "started_utc": _utc(),
        "port": link.port,
        "firmware_version": status["firmware_version"],
        "protocol_version": status["protocol_version"],
        "runtime": status["runtime"],
        "board": status["board"],
        "cell_area_mm2": status["cell_area_mm2"],
        "calibration": status.get("calibration", {}),
        "units": UNITS,
    }


def record(link, out, duration_s):
    status = link.command("status")
    try:
        log = CsvLog(out, metadata(link, status))
    except FileExistsError:
        print("stackpress: %s exists; choose a new file name" % out, file=sys.stderr)
        return 2
    link.on_record = log.write
    shown = time.monotonic()
    print("logging %s to %s%s (Ctrl-C stops)" % (link.port, out,
          "" if duration_s is None else " for %g s" % duration_s), file=sys.stderr)
    try:
        for rec in link.records(duration_s):
            log.write(rec)
            if time.monotonic() - shown >= 5 and rec.get("t") == "tel":
                shown = time.monotonic()
                print("  %d records, %s %.4f MPa, %d gaps" % (log.rows, rec["state"], rec["pressure_mpa"],
                                                             log.gaps), file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        log.close()
    print("wrote %d records to %s (%d gaps)" % (log.rows, out, log.gaps), file=sys.stderr)
    return 0
