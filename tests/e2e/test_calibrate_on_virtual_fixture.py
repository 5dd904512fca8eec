"""`stackpress calibrate` on a miscalibrated virtual fixture, answering its prompts with
what a reference load cell in the stack reads (the sim's status file says it)."""

import json
import subprocess
import time

from simfixture import BIN, RunningSim, stackpress


def _status(port):
    return json.loads(stackpress(port, "status", "--json").stdout)


def _prompts(proc, answer):
    """Answer the prompts on stderr as they come: answer(prompt) -> the line to type."""
    buf = ""
    while proc.poll() is None:
        ch = proc.stderr.read(1)
        if not ch:
            break
        buf += ch
        if buf.endswith(": ") or buf.endswith("? "):
            line = buf.rsplit("\n", 1)[-1]
            proc.stdin.write(answer(line) + "\n")
            proc.stdin.flush()
        if ch == "\n":
            buf = buf[-2000:]
    return buf + proc.stderr.read()


def test_calibration_finds_the_load_cells_true_span_and_is_stored_with_its_reference(tmp_path):
    status_file = tmp_path / "sim_status.json"
    sim = RunningSim("--speed", "20", "--seed", "6", "--status", str(status_file))
    try:
        cal0 = _status(sim.port)["calibration"]  # the virtual load cells' own (factory) spans
        assert len(cal0["span_counts_per_n"]) == 3  # the reference build
        s, t = cal0["span_counts_per_n"], cal0["tare_counts"]
        # What the summed reading (raw_counts: every cell in channel 0's counts) is calibrated to.
        true = {"span_counts_per_n": s[0], "tare_counts": sum(t[i] * s[0] / s[i] for i in range(3))}
        wrong = dict(
            tare_counts=true["tare_counts"] + 3000,
            span_counts_per_n=true["span_counts_per_n"] * 1.03,
            reference="a wrong one",
            date="2020-01-01",
        )
        from stackpress.link import Link

        with Link(sim.port) as link:
            link.command("set_calibration", **wrong)

        def answer(prompt):
            if "reference read" in prompt:
                time.sleep(0.5)  # a fresh status file
                return "%.3f" % json.loads(status_file.read_text())["reference_force_n"]
            return ""

        proc = subprocess.Popen(
            [
                str(BIN / "stackpress"),
                "--port",
                sim.port,
                "calibrate",
                "--at",
                "800,2500,4000",
                "--reference",
                "virtual reference load cell",
                "--yes",
                "--json",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        err = _prompts(proc, answer)
        out = proc.stdout.read()
        assert proc.wait(timeout=120) == 0, err
        r = json.loads(out)
        assert abs(r["span_counts_per_n"] / true["span_counts_per_n"] - 1) < 0.002, (r, true)
        assert abs(r["change_pct"] - (1 / 1.03 - 1) * 100) < 0.3, r
        assert abs(r["tare_counts"] - true["tare_counts"]) < 200, (r, true)  # +-0.5 N
        assert len(r["residuals_n"]) == 3 and r["residual_rms_n"] < 2.0 and 0 < r["uncertainty_pct"] < 0.5, r
        st = _status(sim.port)
        cal = st["calibration"]
        assert cal["reference"] == "virtual reference load cell" and cal["date"].startswith("20"), cal
        assert cal["span_counts_per_n"][0] == r["span_counts_per_n"] and st["state"] == "idle"
        # every cell's span moved alike: the certificate ratios stand
        assert [round(x / cal["span_counts_per_n"][0], 6) for x in cal["span_counts_per_n"]] == [
            round(x / s[0], 6) for x in s
        ]
    finally:
        sim.stop()


def test_a_busy_fixture_and_bad_arguments_are_refused():
    sim = RunningSim("--speed", "max", "--seed", "7")
    try:
        r = stackpress(sim.port, "calibrate", "--at", "0,100", "--reference", "x")
        assert r.returncode == 2 and "above 0 N" in r.stderr
        assert stackpress(sim.port, "hold", "20").returncode == 0
        r = subprocess.run(
            [str(BIN / "stackpress"), "--port", sim.port, "calibrate", "--at", "500", "--reference", "x"],
            input="",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 4 and "release" in r.stderr, r.stderr
    finally:
        sim.stop()
