"""A lab of fixtures on the network: `serve --mqtt` to a real Mosquitto, `fleet`,
notifications and commands over MQTT (issue: "A lab of fixtures on the network")."""

import collections
import json
import signal
import subprocess
import threading
import time

import pytest
from broker import USERS, Broker
from simfixture import BIN, RunningSim, scenario_file, stackpress, stop_logger

_LEFT = []  # what a test started: stopped after it whatever happened (a failed test leaves nothing running)


def _own(thing):
    _LEFT.append(thing)
    return thing


@pytest.fixture(autouse=True)
def _nothing_left_running():
    yield
    while _LEFT:
        thing = _LEFT.pop()
        proc = thing if isinstance(thing, subprocess.Popen) else getattr(thing, "proc", None)
        if isinstance(proc, subprocess.Popen) and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


def _serve(broker, out, ports, *extra, user="rack1", env=None, tls=False):
    args = [str(BIN / "stackpress"), "serve", "--out", str(out) + "/", "--mqtt", broker.url(user, tls)]
    for p in ports:
        args += ["--port", p]
    return subprocess.Popen(
        args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=broker.env(user, env)
    )


def _stop(proc, wall_s=120):
    """serve stopped as a person stops it (Ctrl-C): it ends cleanly, within wall_s."""
    err = stop_logger(proc, wall_s)
    assert proc.returncode == 0, err[-3000:]
    return err


def _rows(path):
    import csv

    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def _wait(what, ok, timeout_s=120):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if ok():
            return
        time.sleep(0.1)
    raise AssertionError("waited %d s for %s" % (timeout_s, what))


def _fleet(broker, *args, tls=False):
    r = subprocess.run(
        [str(BIN / "stackpress"), "fleet", "--mqtt", broker.url("alice", tls), *args],
        capture_output=True,
        text=True,
        env=broker.env("alice"),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


class Subscriber:
    """`mosquitto_sub` as a lab's consumer runs it: a persistent session (-c, a fixed id)
    at QoS 2, so what is published while it reconnects waits for it at the broker."""

    def __init__(self, broker, *topics):
        args = ["mosquitto_sub", "-p", str(broker.port), "-u", "alice", "-P", USERS["alice"]]
        args += ["-c", "-i", "lab-consumer", "-q", "2", "-v"]
        for t in topics + ("stackpress/probe/event",):
            args += ["-t", t]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self.probe(broker, "ready")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def probe(self, broker, text):
        """Published after everything before it: once the consumer has it, it has those."""

        def seen():
            subprocess.run(
                ["mosquitto_pub", "-p", str(broker.port), "-u", "rack1", "-P", USERS["rack1"], "-q", "2"]
                + ["-t", "stackpress/probe/event", "-m", text],
                check=True,
                timeout=30,
            )
            return any(line == "stackpress/probe/event " + text for line in self.lines)

        _wait("the consumer to get the probe %r" % text, seen)

    def messages(self, leaf):
        out = []
        for line in list(self.lines):
            topic, _, payload = line.partition(" ")
            if topic.endswith("/" + leaf) and not topic.startswith("stackpress/probe/"):
                out.append((topic, json.loads(payload)))
        return out

    def close(self):
        self.proc.terminate()
        self.proc.wait(30)


def test_two_fixtures_reach_a_consumer_exactly_once_over_a_broker_restart(tmp_path):
    broker = _own(Broker(tmp_path))
    fault = scenario_file(tmp_path, [{"at_s": 60, "fault": "adc_disconnected", "duration_s": 20}])
    a = _own(RunningSim("--speed", "10", "--seed", "31", "--scenario", str(fault)))
    b = _own(RunningSim("--speed", "10", "--seed", "32"))
    a_id = _status(a.port)["fixture_id"]
    consumer = _own(Subscriber(broker, "stackpress/+/telemetry", "stackpress/+/event", "stackpress/+/notification"))
    told = tmp_path / "told.jsonl"
    out = tmp_path / "logs"
    sv = _own(
        _serve(
            broker,
            out,
            [a.port, b.port],
            "--meta",
            "cell=NMC811-07",
            "--notify-command",
            "cat >> %s; echo >> %s" % (told, told),
        )
    )
    try:
        _wait("both logs", lambda: len(list(out.glob("*.csv"))) == 2)
        logs = sorted(out.glob("*.csv"))
        _wait("150 rows in each log", lambda: all(len(_rows(f)) >= 150 for f in logs))
        broker.stop()  # as a service restart does; the fixtures go on meanwhile, and serve keeps their records
        before = {f: len(_rows(f)) for f in logs}
        _wait("50 rows logged while the broker is away", lambda: all(len(_rows(f)) >= before[f] + 50 for f in logs))
        broker.start()
        _wait("100 more rows in each log", lambda: all(len(_rows(f)) >= before[f] + 150 for f in logs))
        fleet = json.loads(_fleet(broker, "--once", "--json"))["fixtures"]
        _wait("the alarm's notification", lambda: told.exists() and '"kind": "alarm"' in told.read_text())
    finally:
        err = _stop(sv)
        a.stop()
        b.stop()
    consumer.probe(broker, "done")  # serve published everything before it ended
    consumer.close()
    broker.stop()

    ids = {f.stem for f in logs}
    assert set(fleet) == ids, (fleet, ids)
    for f in fleet.values():
        assert f["online"] is True and f["connected"] is True and f["state"] in ("idle", "fault"), f
        assert f["meta"] == {"cell": "NMC811-07"} and f["firmware_version"] and f["host"], f

    logged = collections.Counter()
    for f in logs:
        for r in _rows(f):
            logged[(f.stem, r["boot_id"], int(r["seq"]))] += 1
    got = collections.Counter(
        (m["fixture_id"], m["boot_id"], m["seq"]) for leaf in ("telemetry", "event") for _, m in consumer.messages(leaf)
    )
    assert max(logged.values()) == 1
    twice = [k for k, n in got.items() if n > 1]
    assert not twice, "published more than once: %s" % twice[:5]
    missing = sorted(set(logged) - set(got))
    assert not missing, "%d records in the logs never reached the consumer: %s" % (len(missing), missing[:5])
    assert set(got) == set(logged)
    assert len(logged) >= 2 * 250

    # the alarm: told through the command, marked in the log, and on the broker
    told_alarms = [json.loads(line) for line in told.read_text().splitlines() if line.strip()]
    alarm = [n for n in told_alarms if n["kind"] == "alarm"]
    assert alarm and alarm[0]["fixture_id"] == a_id and "sensor" in alarm[0]["text"], told_alarms
    log_a = (out / (alarm[0]["fixture_id"] + ".csv")).read_text()
    assert "notified (alarm)" in log_a and "the command ran" in log_a
    on_broker = [m for _, m in consumer.messages("notification")]
    assert any(m["kind"] == "alarm" and m["delivery"] == ["the command ran"] for m in on_broker), on_broker
    assert "Traceback" not in err


class Asker:
    """A person's MQTT client (paho): a command to a fixture, and its reply."""

    def __init__(self, broker, user, password):
        from paho.mqtt import client as paho

        self.user = user
        self.replies = []
        self.answer = []
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="asker-%s" % user, protocol=paho.MQTTv5)
        self.acks = {}  # mid: the broker's PUBACK reason (MQTT 5 says when the ACL refused)
        self.c.username_pw_set(user, password)
        got = threading.Event()

        def on_connect(client, userdata, flags, reason, properties):
            self.answer.append(reason)
            if not reason.is_failure:
                client.subscribe("stackpress/+/reply/%s" % user, qos=1)
            else:
                got.set()

        self.c.on_connect = on_connect
        self.c.on_subscribe = lambda *a: got.set()
        self.c.on_message = lambda client, userdata, msg: self.replies.append(json.loads(msg.payload))
        self.c.on_publish = lambda client, userdata, mid, reason, properties: self.acks.__setitem__(mid, reason)
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()
        assert got.wait(30), "no answer from the broker"

    @property
    def refused(self):
        return self.answer and self.answer[0].is_failure

    def ask(self, fid, cmd, args=None, expect=None, as_user=None, retain=False, reply=True):
        req_id = "%s-%d" % (cmd, len(self.replies) + time.monotonic_ns())
        body = {"id": req_id, "cmd": cmd, "args": args or {}}
        if expect is not None:
            body["expect"] = expect
        topic = "stackpress/%s/command/%s" % (fid, as_user or self.user)
        info = self.c.publish(topic, json.dumps(body), qos=1, retain=retain)
        if not reply:
            _wait("the broker's PUBACK", lambda: info.mid in self.acks, 60)
            return self.acks[info.mid]
        _wait("the reply to %s" % cmd, lambda: any(r["id"] == req_id for r in self.replies), 60)
        return next(r for r in self.replies if r["id"] == req_id)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def _status(port):
    r = stackpress(port, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_commands_over_mqtt_need_control_credentials_and_what_the_sender_saw(tmp_path):
    broker = _own(Broker(tmp_path))
    sim = _own(RunningSim("--speed", "10", "--seed", "33"))
    out = tmp_path / "logs"
    fid = _status(sim.port)["fixture_id"]
    sv = _own(_serve(broker, out, [sim.port]))
    alice = None
    try:
        _wait("the fixture on the broker", lambda: fid in json.loads(_fleet(broker, "--once", "--json"))["fixtures"])
        alice = Asker(broker, "alice", USERS["alice"])
        r = alice.ask(fid, "hold", {"mpa": 25}, expect={"state": "idle"})
        assert not r["ok"] and r["error"] == "disabled" and "--mqtt-control" in r["msg"], r
        # A retained command would come again at every restart of serve: never run from there.
        r = alice.ask(fid, "hold", {"mpa": 25}, retain=True, expect={"state": "idle"})
        assert not r["ok"] and r["error"] == "disabled", r
        _stop(sv)

        sv = _own(_serve(broker, out, [sim.port], "--mqtt-control"))
        _wait("the retained command refused", lambda: [x for x in alice.replies if x["id"] == r["id"]][1:])
        again = [x for x in alice.replies if x["id"] == r["id"]][1]
        assert not again["ok"] and again["error"] == "retained", again
        alice.c.publish("stackpress/%s/command/alice" % fid, b"", qos=1, retain=True).wait_for_publish(30)
        for who, pw in ((None, None), ("alice", "wrong")):  # the broker turns them away
            stranger = Asker(broker, who, pw)
            assert stranger.refused, who
            stranger.close()
        bob = Asker(broker, "bob", USERS["bob"])
        # bob may read, not command; alice may not command in bob's name: the broker's ACL
        ack = bob.ask(fid, "hold", {"mpa": 30}, expect={"state": "idle"}, reply=False)
        assert ack.is_failure and ack.getName() == "Not authorized", ack
        ack = alice.ask(fid, "hold", {"mpa": 30}, expect={"state": "idle"}, as_user="bob", reply=False)
        assert ack.is_failure and ack.getName() == "Not authorized", ack
        bob.close()

        r = alice.ask(fid, "hold", {"mpa": 25})
        assert not r["ok"] and r["error"] == "expect", r
        r = alice.ask(fid, "hold", {"mpa": 25}, expect={"state": "hold"})
        assert not r["ok"] and r["error"] == "expect" and "idle" in r["msg"], r
        assert _status(sim.port)["setpoint_mpa"] == 0.0  # nothing so far moved it

        for bad in ({"mpa": "25"}, {"mpa": float("nan")}, {"mpa": 1e9}, {}):  # refused, nothing changes
            r = alice.ask(fid, "hold", bad, expect={"state": "idle"})
            assert not r["ok"] and r["error"] in ("type", "range", "missing"), (bad, r)
        r = alice.ask(fid, "hold", {"mpa": 25}, expect={"state": "idle", "setpoint_mpa": 0})
        assert r["ok"] and r["data"]["setpoint_mpa"] == 25.0, r
        r = alice.ask(fid, "status")
        assert r["ok"] and r["data"]["setpoint_mpa"] == 25.0
        assert stackpress(sim.port, "lock").returncode == 0
        st = _status(sim.port)
        r = alice.ask(fid, "hold", {"mpa": 30}, expect={"state": st["state"], "setpoint_mpa": 25})
        assert not r["ok"] and r["error"] == "locked", r
        r = alice.ask(fid, "unlock")
        assert not r["ok"] and r["error"] == "local" and "unlock" in r["msg"], r
        assert _status(sim.port)["locked"] and _status(sim.port)["setpoint_mpa"] == 25.0
    finally:
        if alice:
            alice.close()
        err = _stop(sv)
        sim.stop()
        broker.stop()
    notes = [line for line in (out / (fid + ".csv")).read_text().splitlines() if line.startswith("# audit")]
    by_alice = [n for n in notes if '"user":"mqtt:alice"' in n]
    assert any('"cmd":"hold"' in n and '"ok":true' in n for n in by_alice), notes
    assert any('"cmd":"hold"' in n and '"ok":false' in n and "locked" in n for n in by_alice), notes
    assert "Traceback" not in err


def test_a_broker_away_past_the_backlog_costs_the_oldest_records_and_says_so(tmp_path, monkeypatch):
    from stackpress import mqtt, publisher

    monkeypatch.setattr(publisher, "BACKLOG_RECORDS", 10)
    broker = _own(Broker(tmp_path))
    consumer = _own(Subscriber(broker, "stackpress/+/telemetry"))
    marks = []
    url = "mqtt://rack1:%s@127.0.0.1:%d" % (USERS["rack1"], broker.port)
    pub = publisher.FixturePublisher(mqtt.parse_url(url), "0123456789abcdef", {}, False, lambda *a: {}, marks.append)

    def row(seq):
        rec = {"t": "tel", "boot": 1, "seq": seq, "device_ms": seq * 1000, "state": "idle", "pressure_mpa": 0.0}
        pub.row(rec, "b00710", time.time() * 1000, "live")

    def seqs():
        return [m["seq"] for _, m in consumer.messages("telemetry")]

    try:
        for s in range(1, 6):
            row(s)
        _wait("the first five", lambda: len(seqs()) == 5)
        broker.stop()
        _wait("the publisher to see the broker gone", lambda: not pub.connected)
        for s in range(6, 31):
            row(s)
        broker.start()
        _wait("the last record", lambda: 30 in seqs())
    finally:
        pub.close()
    consumer.probe(broker, "done")
    consumer.close()
    broker.stop()
    assert seqs() == list(range(1, 6)) + list(range(21, 31)), seqs()
    assert any("15 records not published" in m and "the log has them" in m for m in marks), marks


def test_over_tls_with_the_labs_own_ca(tmp_path):
    broker = _own(Broker(tmp_path, tls=True))
    sim = _own(RunningSim("--speed", "10", "--seed", "34"))
    fid = _status(sim.port)["fixture_id"]
    sv = _own(_serve(broker, tmp_path / "logs", [sim.port], "--mqtt-ca", str(broker.ca), tls=True))
    try:
        ca = ("--once", "--json", "--mqtt-ca", str(broker.ca))
        _wait("the fixture over TLS", lambda: fid in json.loads(_fleet(broker, *ca, tls=True))["fixtures"])
        r = subprocess.run(  # without the lab's CA the broker's certificate is not trusted
            [str(BIN / "stackpress"), "fleet", "--mqtt", broker.url("alice", tls=True), "--once"],
            capture_output=True,
            text=True,
            env=broker.env("alice"),
            timeout=120,
        )
        assert r.returncode == 3 and "not trusted here" in r.stderr and "--mqtt-ca" in r.stderr, r.stderr
    finally:
        err = _stop(sv)
        sim.stop()
        broker.stop()
    assert "Traceback" not in err


def test_fleet_tells_when_a_serve_dies_and_shows_its_fixture_offline(tmp_path):
    broker = _own(Broker(tmp_path))
    sim = _own(RunningSim("--speed", "10", "--seed", "35"))
    fid = _status(sim.port)["fixture_id"]
    told = tmp_path / "told.jsonl"
    sv = _own(_serve(broker, tmp_path / "logs", [sim.port], "--meta", "fixture=rack3-left"))
    fleet = _own(
        subprocess.Popen(
            [str(BIN / "stackpress"), "fleet", "--mqtt", broker.url("alice"), "--json", "--notify-offline-s", "1"]
            + ["--notify-command", "cat >> %s; echo >> %s" % (told, told)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=broker.env("alice"),
        )
    )
    views = []
    threading.Thread(target=lambda: views.extend(json.loads(x) for x in fleet.stdout), daemon=True).start()

    def shown(online):
        return any(fid in v["fixtures"] and v["fixtures"][fid].get("online") is online for v in views[-3:])

    try:
        _wait("the fixture online in the fleet", lambda: shown(True))
        sv.send_signal(signal.SIGKILL)  # its computer dies: no goodbye, the broker's last will says it
        sv.wait()
        _wait("the fixture offline in the fleet", lambda: shown(False))
        _wait("the fleet telling", lambda: told.exists() and '"kind": "offline"' in told.read_text())
        sv = _own(_serve(broker, tmp_path / "logs", [sim.port], "--meta", "fixture=rack3-left"))
        _wait("the fleet telling it is back", lambda: '"kind": "back"' in told.read_text())
    finally:
        fleet.send_signal(signal.SIGINT)
        _, ferr = fleet.communicate(timeout=60)
        _stop(sv)
        sim.stop()
        broker.stop()
    said = [json.loads(x) for x in told.read_text().splitlines() if x.strip()]
    assert [x["kind"] for x in said] == ["offline", "back"], said
    assert "rack3-left" in said[0]["text"] and "offline on the broker" in said[0]["text"], said
    assert "Traceback" not in ferr and "notified (offline)" in ferr, ferr


def test_serve_started_before_the_broker_says_so_and_publishes_everything_once_it_is_up(tmp_path):
    broker = _own(Broker(tmp_path))
    consumer = _own(Subscriber(broker, "stackpress/+/telemetry", "stackpress/+/event"))
    broker.stop()
    sim = _own(RunningSim("--speed", "10", "--seed", "36"))
    out = tmp_path / "logs"
    sv = _own(_serve(broker, out, [sim.port]))
    said = []
    threading.Thread(target=lambda: said.extend(sv.stderr), daemon=True).start()
    try:
        _wait("serve saying it can't reach the broker", lambda: any("can't reach the broker" in x for x in said))
        _wait("100 rows logged meanwhile", lambda: any(len(_rows(f)) >= 100 for f in out.glob("*.csv")))
        broker.start()
        _wait("serve saying it publishes again", lambda: any("publishing to" in x and "again" in x for x in said))
    finally:
        sv.send_signal(signal.SIGTERM)
        sv.wait(120)
        sim.stop()
    consumer.probe(broker, "done")
    consumer.close()
    broker.stop()
    (log,) = out.glob("*.csv")
    logged = [(r["boot_id"], int(r["seq"])) for r in _rows(log)]
    got = [(m["boot_id"], m["seq"]) for leaf in ("telemetry", "event") for _, m in consumer.messages(leaf)]
    assert sorted(got) == sorted(logged) and len(logged) >= 100
    text = log.read_text()
    assert "MQTT: can't reach the broker" in text and "MQTT: publishing to" in text
    assert sv.returncode == 0 and not any("Traceback" in x for x in said), "".join(said)[-3000:]
