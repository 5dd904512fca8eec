"""The soak's scenarios, short, in `make test`: each fault, reset and link event against
the firmware in the virtual fixture (`make soak` runs them long: 100+ power cuts, a
simulated hour away, 30 days, 10,000 fuzz inputs)."""

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "soak"))
import cycler_link  # noqa: E402
import harness  # noqa: E402
import load_cells  # noqa: E402
import misuse  # noqa: E402
import run as soak  # noqa: E402


@pytest.fixture(autouse=True)
def _out(tmp_path, monkeypatch):
    for module in (harness, soak, misuse, cycler_link):  # each took the name from harness
        monkeypatch.setattr(module, "OUT", tmp_path)


def _check(result):
    ok, detail, figures = result
    assert ok, detail
    return figures


def test_sensor_faults_alarm_hold_position_and_resume_after_ack():
    _check(soak.run_sensor_faults(3))


def test_over_pressure_backs_off_within_a_sample():
    f = _check(soak.run_over_pressure(3))
    assert f["overpressure_max_pct"] < 2.0


def test_stalled_motor_and_travel_limit_fault():
    _check(soak.run_motor_faults(3))


def test_estop_and_end_stop_stop_the_motor_and_latch():
    _check(soak.run_switches(3))


def test_a_hung_loop_is_reset_by_the_watchdog_and_resumes():
    f = _check(soak.run_watchdog(3))
    assert f["resume_max_excursion_pct"] <= 1.0


def test_power_cuts_including_flash_writes_corrupt_nothing():
    f = _check(soak.run_power_cuts(3, 6))
    assert f["power_cuts"] >= 6 and f["resume_max_excursion_pct"] <= 1.0


def test_unplug_host_away_and_killed_logger_lose_no_record():
    f = _check(soak.run_link(3, away_s=900))
    assert f["records_lost"] == 0 and f["records_duplicated"] == 0 and f["records_expected"] > 300


def test_load_cells_off_centre_each_failing_in_turn_two_at_once_and_one_drifting():
    f = _check(load_cells.run_load_cells(3))
    assert f["one_channel_failed_max_err_mpa"] <= load_cells.GOAL_X2_MPA
    assert f["eccentric_centre_err_mm"] <= 0.02


def test_misuse_tare_under_load_a_stiffness_typo_a_wiped_flash_resets_mid_profile_and_bad_firmware():
    f = _check(misuse.run_misuse(3))
    assert f["tare_refused_true_dev_mpa"] < 0.4


def test_the_cyclers_own_file_holds_the_pressure_and_a_fault_pauses_the_cycling():
    f = _check(cycler_link.run_cycler_link(3))
    assert 0 < f["cycler_aux_max_err_mpa"] <= cycler_link.BUDGET_MPA and f["cycler_pause_s"] > 20


def test_a_scenario_waits_as_long_as_the_device_clock_moves_and_no_longer():
    """A slow machine runs the same device time in more wall time; only a clock that stops
    (a hang) or an event that does not come by its device time fails a scenario."""
    clock = {"t_s": 0.0}

    def tick():
        clock["t_s"] += 0.001  # a very slow machine: a millisecond of device time per look

    # no wall time to spare: any look without progress would fail
    harness.wait_device("slow", lambda: clock["t_s"] >= 2.0, lambda: clock["t_s"], tick, stall_wall_s=0.0)
    assert clock["t_s"] >= 2.0
    with pytest.raises(RuntimeError, match="device time stuck at 2 s"):
        harness.wait_device("hung", lambda: False, lambda: clock["t_s"], lambda: None, stall_wall_s=0.0)
    with pytest.raises(RuntimeError, match="not by 3 s of device time"):
        harness.wait_device("never", lambda: False, lambda: clock["t_s"], tick, limit_s=3.0, stall_wall_s=0.0)
