from stackpress import config


def _code(key, value):
    try:
        config.check(key, value)
    except config.ConfigError as e:
        return e.code, e.msg
    return None, None


def test_accepts_values_in_range_with_their_type():
    assert config.check("cell_area_mm2", 113) == 113.0
    assert config.check("telemetry_period_ms", 50.0) == 50
    assert isinstance(config.check("telemetry_period_ms", 50.0), int)


def test_refuses_with_range_and_unit_in_the_message():
    code, msg = _code("cell_area_mm2", 5000)
    assert code == "range" and "0.5" in msg and "2000" in msg and "mm2" in msg
    assert _code("cell_area_mm2", float("nan"))[0] == "range"
    assert _code("cell_area_mm2", True)[0] == "type"
    assert _code("cell_area_mm2", "78")[0] == "type"
    assert _code("telemetry_period_ms", 50.5)[0] == "type"
    assert _code("no_such_key", 1)[0] == "unknown_key"
    assert _code(None, 1)[0] == "unknown_key"


def test_merged_keeps_valid_values_and_names_bad_ones():
    cfg, bad = config.merged({"cell_area_mm2": 113.1, "ramp_rate_mpa_s": -4, "junk": 1})
    assert cfg["cell_area_mm2"] == 113.1
    assert cfg["ramp_rate_mpa_s"] == config.spec("ramp_rate_mpa_s")[0]
    assert sorted(bad) == ["junk", "ramp_rate_mpa_s"]
    cfg, bad = config.merged(None)
    assert cfg == config.defaults() and bad == []
