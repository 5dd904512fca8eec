"""Alarms that reach people (notify.py): what is told, once per episode, through a real
shell command and a real local webhook, and marked with how the sending went."""

import http.server
import json
import threading
import time

from stackpress.notify import ERROR_FOR_S, Notifier, Rules


class Marks:
    def __init__(self):
        self.texts = []
        self.cv = threading.Condition()

    def __call__(self, text):
        with self.cv:
            self.texts.append(text)
            self.cv.notify_all()

    def wait(self, n, timeout_s=30):
        with self.cv:
            assert self.cv.wait_for(lambda: len(self.texts) >= n, timeout_s), self.texts
        return self.texts


def _tel(t_s, state, p, sp=40.0):
    return {"t": "tel", "device_ms": int(t_s * 1000), "state": state, "pressure_mpa": p, "setpoint_mpa": sp}


def test_a_hold_error_is_told_once_after_it_lasts_and_again_when_it_is_over(tmp_path):
    told = tmp_path / "told.jsonl"
    marks = Marks()
    n = Notifier(Rules(command="cat >> %s; echo >> %s" % (told, told), error_mpa=0.1), "ab" * 8, {"cell": "c7"}, marks)
    n.row(_tel(0, "ramp", 20.0), None, 0, "live")  # a ramp is far from its setpoint: never told
    for t in range(1, 200):
        n.row(_tel(t, "ramp", 20.0 + t * 0.1), None, 0, "live")
    for t in range(200, 200 + int(ERROR_FOR_S)):  # off by 0.3 MPa, but not for long enough yet
        n.row(_tel(t, "hold", 40.3), None, 0, "live")
    n.row(_tel(230, "hold", 40.0), None, 0, "live")
    for t in range(231, 231 + int(ERROR_FOR_S) + 1):  # now for long enough
        n.row(_tel(t, "hold", 39.8), None, 0, "live")
    for t in range(262, 300):
        n.row(_tel(t, "hold", 39.8), None, 0, "live")  # still off: not told again
    n.row(_tel(300, "hold", 40.01), None, 0, "live")
    n.close()
    assert len(marks.wait(2)) == 2, marks.texts
    lines = [json.loads(x) for x in told.read_text().splitlines() if x.strip()]
    assert [x["kind"] for x in lines] == ["hold_error", "hold_error_over"], lines
    assert "-0.200 MPa" in lines[0]["text"] and "c7" in lines[0]["text"] and lines[0]["pressure_mpa"] == 39.8
    assert all("the command ran" in m for m in marks.texts)


def test_an_alarm_is_told_and_a_failing_command_is_said_in_the_log(tmp_path):
    marks = Marks()
    n = Notifier(Rules(command="echo no mail server >&2; exit 3"), "cd" * 8, {}, marks)
    n.status({"alarms": ["sensor_timeout"]})  # latched before serve started
    n.row({"t": "evt", "kind": "alarm", "alarms": ["overpressure"], "device_ms": 5}, None, 0, "live")
    n.close()
    texts = marks.wait(2)
    assert "sensor_timeout" in texts[0] and "overpressure" in texts[1], texts
    assert all("the command failed (exit 3): no mail server" in m for m in texts), texts


def test_offline_is_told_after_its_limit_and_back_when_it_returns(tmp_path):
    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    marks = Marks()
    n = Notifier(Rules(url="http://127.0.0.1:%d/hook" % server.server_port, offline_s=0.05), "ef" * 8, {}, marks)
    try:
        n.fixture_link(False)
        start = time.monotonic()
        while not n._told_offline:  # the offline limit is host time: 50 ms here
            n.tick()
            assert time.monotonic() - start < 30
            time.sleep(0.01)
        n.tick()
        n.fixture_link(True)
        n.close()
        texts = marks.wait(2)
    finally:
        server.shutdown()
    assert [g["kind"] for g in got] == ["offline", "back"], got
    assert got[0]["text"].startswith("stackpress ") and "out of this host's reach" in got[0]["text"]
    assert all("the webhook answered 204" in t for t in texts), texts


def test_a_webhook_that_is_not_there_is_said_not_raised():
    marks = Marks()
    n = Notifier(Rules(url="http://127.0.0.1:9/nothing"), "01" * 8, {}, marks)
    n.row({"t": "evt", "kind": "alarm", "alarms": ["stall"], "device_ms": 1}, None, 0, "live")
    n.close()
    assert "the webhook failed" in marks.wait(1)[0]


def test_an_alarm_read_late_from_the_history_says_when_it_latched(tmp_path):
    marks = Marks()
    n = Notifier(Rules(command="true"), "23" * 8, {}, marks)
    n.row({"t": "evt", "kind": "alarm", "alarms": ["stall"], "device_ms": 1}, None, 1.7e12, "replayed")
    n.close()
    assert "latched at 2023-11-14T22:13:20" in marks.wait(1)[0], marks.texts
