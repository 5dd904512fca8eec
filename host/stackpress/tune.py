"""`stackpress tune`: measure the fixture's stiffness with a small probing move, set the gain.

The hold loop moves `loop_gain` of the steps the stiffness says the error needs, so the
one number it must know is the small-signal stiffness the motor sees while holding:
disc springs stick on a reversal (friction between the discs), so it is several times the
stiffness along the loading curve, and it changes with the build (stiffer springs, no
springs, a coarser screw). The probe measures it where it matters:

1. clamp to the working pressure with a cautious gain (stable on a fixture 20x stiffer
   than configured) and a slow ramp, and let it settle;
2. in gap mode (motor still), jog back and forth by whole electrical cycles of the
   motor (64 microsteps, so the microstep angle error cancels) and average the force
   before and after each move; every move after the first is a reversal, as in a hold;
3. stiffness = mean |dF| / travel; set it, restore the gain, hold again.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackpress.connect import FixtureLink

CAUTIOUS_GAIN = 0.05
CAUTIOUS_RAMP_MPA_S = 0.25  # small feed-forward: no overshoot on a fixture 4x stiffer than configured
CYCLE_STEPS = 64  # one electrical cycle at 1/16 microstepping
SETTLE_SAMPLES = 6
MEAN_SAMPLES = 16


class TuneError(Exception):
    pass


class Tuner:
    def __init__(self, link: FixtureLink, progress: Callable[[str], None] | None = None) -> None:
        self.link = link
        self.progress = progress or (lambda msg: None)

    def _samples(self, n: int, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The next n telemetry records: one per ADC sample while tuning (device time, not
        wall time, so a virtual fixture at any speed is probed the same way)."""
        out = []
        for r in self.link.records(timeout_s):
            if r.get("t") == "tel":
                out.append(r)
                if len(out) >= n:
                    return out
        raise TuneError("the fixture stopped reporting (no telemetry for %.0f s)" % timeout_s)

    def mean_force_n(self) -> tuple[float, float]:
        """Mean force over MEAN_SAMPLES samples, after SETTLE_SAMPLES; and the noise."""
        vals = [r["force_n"] for r in self._samples(SETTLE_SAMPLES + MEAN_SAMPLES)[SETTLE_SAMPLES:]]
        # noise from successive differences: a slow drift (the cell breathing) does not count
        diffs = [b - a for a, b in zip(vals, vals[1:])]
        return statistics.fmean(vals), statistics.pstdev(diffs) / 2**0.5

    def _clamp(self, mpa: float, timeout_s: float) -> dict[str, Any]:
        self.link.command("hold", mpa=mpa)
        end = time.monotonic() + timeout_s
        inside = 0
        while time.monotonic() < end:
            r = self._samples(1)[0]
            self.progress("clamping: %s %.3f / %.3f MPa" % (r["state"], r["pressure_mpa"], mpa))
            if r["state"] == "fault":
                raise TuneError("fault while clamping: %s" % ", ".join(r["alarms"]))
            inside = inside + 1 if r["state"] == "hold" and abs(r["pressure_mpa"] - mpa) <= 0.005 * mpa else 0
            if inside >= 2 * SETTLE_SAMPLES:
                return r
        raise TuneError("did not reach %.3f MPa in %.0f s" % (mpa, timeout_s))

    def run(self, mpa: float, target_force_n: float | None = None, timeout_s: float = 900) -> dict[str, Any]:
        cfg = {k: d["value"] for k, d in self.link.command("config")["config"].items()}
        um_cycle = CYCLE_STEPS * cfg["um_per_step"]
        gain = cfg["loop_gain"]
        tel_ms = cfg["telemetry_period_ms"]
        sps = self.link.command("status")["sample_rate_sps"]
        self.link.command("set", key="telemetry_period_ms", value=max(10, 1000 // sps))
        ramp = cfg["ramp_rate_mpa_s"]
        self.link.command("set", key="loop_gain", value=CAUTIOUS_GAIN)
        self.link.command("set", key="ramp_rate_mpa_s", value=min(ramp, CAUTIOUS_RAMP_MPA_S))
        try:
            self._clamp(mpa, timeout_s)
            self.link.command("gap")
            f_now, noise_n = self.mean_force_n()
            # a probe worth ~1 % of the load (at least 20x the averaged noise), in whole cycles
            target = target_force_n or max(20 * noise_n / MEAN_SAMPLES**0.5, min(10.0, 0.01 * f_now))
            k_guess = cfg["stiffness_n_per_um"]
            probes: list[Any] = []
            for _attempt in range(3):
                cycles = max(1, round(target / k_guess / um_cycle))
                travel = cycles * um_cycle
                probes = []
                f_prev = f_now
                for sign in (-1, 1, -1, 1):
                    self.link.command("jog", um=sign * travel)  # 64 microsteps take ms: done in a sample
                    f, _ = self.mean_force_n()
                    probes.append({"um": sign * travel, "force_change_n": f - f_prev})
                    self.progress("probe %+.3f um: %+.3f N" % (sign * travel, f - f_prev))
                    f_prev = f
                # Every move after the first is a reversal. Ups and downs alternate, so a
                # steady drift (the cell breathing while the motor stands) cancels out.
                ups = [p["force_change_n"] for p in probes[1:] if p["um"] > 0]
                downs = [p["force_change_n"] for p in probes[1:] if p["um"] < 0]
                k_up = statistics.fmean(ups) / travel
                k_down = -statistics.fmean(downs) / travel
                k = 0.5 * (k_up + k_down)
                drift_n = 0.5 * (statistics.fmean(ups) + statistics.fmean(downs))
                if k <= 0:
                    raise TuneError("the force did not follow the probe: is the cell clamped?")
                dF = k * travel
                if 0.5 * target <= dF <= 3 * target or cycles == 1 and dF > target:
                    break
                k_guess = k
        finally:
            self.link.command("set", key="loop_gain", value=gain)
            self.link.command("set", key="ramp_rate_mpa_s", value=ramp)
            self.link.command("set", key="telemetry_period_ms", value=tel_ms)
        self.link.command("set", key="stiffness_n_per_um", value=round(k, 3))
        self.link.command("hold", mpa=mpa)
        area = cfg["cell_area_mm2"]
        return {
            "stiffness_n_per_um": round(k, 3),
            "stiffness_up_down_n_per_um": [round(k_up, 3), round(k_down, 3)],
            "drift_n_per_move": round(drift_n, 4),
            "previous_stiffness_n_per_um": cfg["stiffness_n_per_um"],
            "probe_um": round(travel, 4),
            "probes": probes,
            "force_noise_n_rms": round(noise_n, 4),
            "loop_gain": gain,
            "kpa_per_microstep": round(k * cfg["um_per_step"] / area * 1000, 4),
            "max_ramp_mpa_s": round(cfg["max_step_rate_hz"] * cfg["um_per_step"] * k / area, 2),
            "setpoint_mpa": mpa,
        }
