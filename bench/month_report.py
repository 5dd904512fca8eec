"""`stackpress report` on a month of 1 s records (2.6 M rows), against `pandas.read_csv` of
the same file: wall time and peak memory of each, as a process of its own, and their ratios.
Part of `make bench`; alone: `python bench/month_report.py [--out DIR]`.

The month is written by bench/month_log.py (kept in OUT/month/ between runs: writing it
takes a minute or two).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERATOR = ROOT / "bench" / "month_log.py"
REPORT_LIMITS = {"wall_s": 60.0, "peak_mb": 500.0}  # issue 20: a month in under a minute and 500 MB


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_measured(argv, out_path):
    """(wall s, peak resident MB, exit code) of one process, its stdout to out_path."""
    with open(out_path, "w") as out:
        t = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, p.returncode


def month_log(outdir):
    """The month's log, written again only when its generator changed."""
    tag = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:12]
    d = outdir / "month"
    d.mkdir(parents=True, exist_ok=True)
    path = d / ("month_%s.csv" % tag)
    if not path.exists():
        for old in d.glob("month_*.csv"):
            old.unlink()
        _log("month report: writing a month of 1 s records (once; kept in %s)" % d)
        tmp = d / "writing.csv"
        tmp.unlink(missing_ok=True)
        subprocess.run([sys.executable, str(GENERATOR), str(tmp)], check=True)
        tmp.replace(path)
    return path


def measure(outdir):
    outdir = Path(outdir)
    path = month_log(outdir)
    d = path.parent
    pandas_code = "import sys, pandas; df = pandas.read_csv(sys.argv[1], comment='#', low_memory=False); print(len(df))"
    _log("month report: pandas.read_csv of %s (%.0f MB)" % (path.name, path.stat().st_size / 1e6))
    pd_s, pd_mb, rc = run_measured([sys.executable, "-c", pandas_code, str(path)], d / "pandas.out")
    if rc:
        raise RuntimeError("pandas.read_csv failed: %s" % (d / "pandas.out").read_text()[-2000:])
    rows = int((d / "pandas.out").read_text().split()[-1])
    _log("month report: stackpress report")
    rep_s, rep_mb, rc = run_measured(
        [str(BIN / "stackpress"), "report", str(path), "--out", str(d / "report"), "--json"], d / "report.out"
    )
    if rc:
        raise RuntimeError("stackpress report failed: %s" % (d / "report.out").read_text()[-2000:])
    summary = json.loads((d / "report.out").read_text().splitlines()[-1])
    return {
        "records": summary["records"],
        "pandas_rows": rows,  # telemetry and event rows: read_csv keeps both
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "report_s": round(rep_s, 1),
        "report_peak_mb": round(rep_mb),
        "pandas_read_csv_s": round(pd_s, 1),
        "pandas_read_csv_peak_mb": round(pd_mb),
        "time_vs_pandas": round(rep_s / pd_s, 2),
        "memory_vs_pandas": round(rep_mb / pd_mb, 2),
        "within_limits": rep_s < REPORT_LIMITS["wall_s"] and rep_mb < REPORT_LIMITS["peak_mb"],
        "limits": REPORT_LIMITS,
        "plots": [summary["png"], summary["hold_png"]],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    r = measure(ap.parse_args().out)
    print(
        "month report: %d records (%.0f MB of CSV): stackpress report %.1f s, %d MB peak; "
        "pandas.read_csv alone %.1f s, %d MB peak (x%.2f the time, x%.2f the memory)"
        % (
            r["records"],
            r["file_mb"],
            r["report_s"],
            r["report_peak_mb"],
            r["pandas_read_csv_s"],
            r["pandas_read_csv_peak_mb"],
            r["time_vs_pandas"],
            r["memory_vs_pandas"],
        )
    )
    print(json.dumps(r))
    return 0 if r["within_limits"] else 1


if __name__ == "__main__":
    sys.exit(main())
