"""`stackpress config pull|diff|push`: a fixture's settings kept in a TOML file."""

import json

from simfixture import RunningSim, stackpress


def test_pull_diff_push_and_the_cell_area_is_not_changed_under_a_test(tmp_path):
    f = tmp_path / "fixture1.toml"
    sim = RunningSim("--speed", "max", "--seed", "8")
    try:
        assert stackpress(sim.port, "config", "pull", str(f)).returncode == 0
        text = f.read_text()
        assert "cell_area_mm2 = 78.54" in text and "# area the force acts on" in text and "[mm2, 0.5..2000]" in text
        r = stackpress(sim.port, "config", "diff", str(f))
        assert r.returncode == 0 and "match" in r.stdout
        f.write_text(
            text.replace("loop_gain = 0.25", "loop_gain = 0.3").replace("cell_area_mm2 = 78.54", "cell_area_mm2 = 50.0")
        )
        r = stackpress(sim.port, "config", "diff", str(f), "--json")
        assert r.returncode == 1 and {d["key"] for d in json.loads(r.stdout)} == {"loop_gain", "cell_area_mm2"}
        assert stackpress(sim.port, "hold", "20").returncode == 0
        r = stackpress(sim.port, "config", "push", str(f), "--json")
        out = json.loads(r.stdout)
        assert r.returncode == 4 and [s["key"] for s in out["set"]] == ["loop_gain"], out
        assert out["refused"][0]["key"] == "cell_area_mm2" and "controls pressure" in out["refused"][0]["why"]
        st = json.loads(stackpress(sim.port, "status", "--json").stdout)
        assert st["cell_area_mm2"] == 78.54  # not changed under a running test
        bad = tmp_path / "bad.toml"
        bad.write_text("loop_gain = 5.0\n")
        r = stackpress(sim.port, "config", "push", str(bad))
        assert r.returncode == 2 and "out of range: 0.01 to 0.9" in r.stderr, r.stderr
        bad.write_text("nonsense = 1\n")
        r = stackpress(sim.port, "config", "diff", str(bad))
        assert r.returncode == 2 and "unknown settings nonsense" in r.stderr
    finally:
        sim.stop()
