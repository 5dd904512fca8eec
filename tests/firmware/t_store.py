import os

from plant import mount_ram_flash

from stackpress.store import Store


def test_save_replaces_atomically_and_loads_back():
    mount_ram_flash("/flash")
    s = Store("/flash")
    assert s.load("state") == (None, None)
    s.save("state", {"mode": "hold", "setpoint_mpa": 40.0})
    s.save("state", {"mode": "gap", "setpoint_mpa": 25.0})
    doc, err = s.load("state")
    assert err is None and doc == {"mode": "gap", "setpoint_mpa": 25.0}
    assert "state.json.tmp" not in os.listdir("/flash")


def test_unreadable_file_is_reported_not_raised():
    mount_ram_flash("/flash")
    with open("/flash/config.json", "w") as f:
        f.write('{"cell_area_mm2": 7')
    doc, err = Store("/flash").load("config")
    assert doc is None and "config.json" in err
