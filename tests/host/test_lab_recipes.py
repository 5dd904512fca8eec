"""The lab's recipes in docs/lab/ agree with what `serve --mqtt` publishes: Telegraf reads
fields that the payload has, under the names it has them, and the Grafana dashboard asks
InfluxDB only for fields that Telegraf writes (a field renamed in the firmware or the host
breaks this test, not a lab's dashboard a month later)."""

import json
import re
import tomllib

from conftest import ROOT, record_fields

from stackpress import mqtt

LAB = ROOT / "docs" / "lab"


def _telegraf():
    conf = tomllib.loads((LAB / "telegraf.conf").read_text())
    (consumer,) = conf["inputs"]["mqtt_consumer"]
    (parser,) = consumer["json_v2"]
    return consumer, parser


def _published(load_cells):
    """A telemetry record of this firmware (its schema's fields) as serve publishes it."""
    rec = {"t": "tel", "boot": 3, "seq": 4711, "device_ms": 4711000}
    rec.update((f, 1.5) for f in record_fields(load_cells) if f not in rec)
    return mqtt.record_payload("0123456789abcdef", rec, "b00710", 1.7e12, "live")


def test_telegraf_reads_fields_the_telemetry_has_and_the_time_it_was_measured():
    consumer, parser = _telegraf()
    assert consumer["topics"] == [mqtt.topic("+", "telemetry")]
    assert consumer["qos"] == 2 and consumer["persistent_session"] is True
    for load_cells in (1, 3):
        payload = _published(load_cells)
        paths = [t["path"] for t in parser["tag"]] + [f["path"] for f in parser["field"]]
        missing = [p for p in paths if p not in payload]
        assert not missing, "telegraf.conf reads fields serve does not publish: %s" % missing
        assert payload[parser["timestamp_path"]] == 1.7e12 and parser["timestamp_format"] == "unix_ms"


def test_the_dashboard_asks_for_fields_telegraf_writes():
    _, parser = _telegraf()
    written = {f["path"] for f in parser["field"]}
    dash = json.loads((LAB / "grafana-dashboard.json").read_text())
    asked = set()
    for panel in dash["panels"]:
        for target in panel["targets"]:
            assert 'r._measurement == "%s"' % parser["measurement_name"] in target["query"]
            asked |= set(re.findall(r'r\._field == "(\w+)"', target["query"]))
            asked |= set(re.findall(r"r\.(\w+_(?:mpa|um|c|n))\b", target["query"]))
    assert asked and asked <= written, asked - written


def test_the_lab_acl_lets_people_command_only_in_their_own_name():
    acl = (LAB / "mosquitto.acl").read_text()
    writes = re.findall(r"^topic (?:read)?write (\S+)$", acl, re.M)
    for w in writes:
        assert w == "stackpress/#" or re.fullmatch(r"stackpress/\+/command/\w+", w), w
    blocks = re.split(r"^user ", acl, flags=re.M)[1:]
    for block in blocks:
        user = block.split()[0]
        for w in re.findall(r"^topic write stackpress/\+/command/(\w+)$", block, re.M):
            assert w == user, (user, w)
