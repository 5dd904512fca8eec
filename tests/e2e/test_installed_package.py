"""Installed as people install it: `pip install ./host[sim]` (not editable) into a fresh
venv, from a copy of the repository's host/, firmware/ and hardware/ only, then used from
a folder that is not the repository: `--version`, `sim`, `status`, `log`, `flash`, `report`
all work from what the package carries."""

import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT


def test_a_non_editable_install_runs_sim_status_log_flash_and_report(tmp_path):
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("node_modules", "*.egg-info", "build", "__pycache__", ".pytest_cache")
    for part in ("host", "firmware", "hardware"):
        shutil.copytree(ROOT / part, src / part, ignore=ignore)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(src / "host") + "[sim]"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    shutil.rmtree(src)  # the installed package must not need the tree it was built from
    bin_ = venv / "bin"
    env = dict(os.environ, PATH="%s:%s" % (bin_, os.environ["PATH"]))
    work = tmp_path / "work"
    work.mkdir()

    def run(*args, timeout=300):
        return subprocess.run(
            [str(bin_ / "stackpress"), *args], capture_output=True, text=True, cwd=work, env=env, timeout=timeout
        )

    v = run("--version")
    assert v.returncode == 0 and "firmware" in v.stdout and "site-packages" in v.stdout, v.stdout + v.stderr
    firmware = v.stdout.rsplit(" from ", 1)[1].strip()
    sim = subprocess.Popen(
        [str(bin_ / "stackpress"), "sim", "--speed", "max", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=work,
        env=env,
    )
    try:
        first = sim.stdout.readline()
        assert first.startswith("port: "), first + sim.stderr.read()
        port = first.split(" ", 1)[1].strip()
        st = run("--port", port, "status", "--json")
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["firmware_version"] in v.stdout
        assert run("--port", port, "log", "--out", "run.csv", "--duration", "3").returncode == 0
        newer = tmp_path / "firmware"
        shutil.copytree(firmware, newer)
        vf = newer / "stackpress" / "version.json"
        vf.write_text(json.dumps(dict(json.loads(vf.read_text()), firmware_version="9.9.9-installed")))
        fl = run("--port", port, "flash", "--firmware", str(newer), timeout=600)
        assert fl.returncode == 0, fl.stdout + fl.stderr
        st = run("--port", port, "status", "--json")
        assert json.loads(st.stdout)["firmware_version"] == "9.9.9-installed", st.stdout + st.stderr
    finally:
        sim.terminate()
        sim.communicate(timeout=60)
    rep = run("report", "run.csv")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert list(work.glob("run_csv_report/*.png")), list(work.rglob("*"))
