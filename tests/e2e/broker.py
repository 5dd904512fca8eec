"""A real Mosquitto for the tests: on a free localhost port, with a password file and an
ACL as a lab would set it up, persistence on (as Debian's mosquitto.conf has it), and
restartable on the same port. Without Mosquitto the tests that need it are skipped with
one line; under CI (STACKPRESS_REQUIRE_BROKER=1, set by .ci/run) they fail instead."""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USERS = {"rack1": "rack1-pw", "alice": "alice-pw", "bob": "bob-pw"}
# What each may do is the lab's ACL as documented (docs/lab/mosquitto.acl): rack1 runs
# serve; alice may watch and command in her own name; bob may only watch.
ACL = ROOT / "docs" / "lab" / "mosquitto.acl"


def mosquitto():
    """The broker's path, or skip (fail under CI)."""
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    tools = [shutil.which(t) for t in ("mosquitto_passwd", "mosquitto_sub", "mosquitto_pub")]
    if path and all(tools):
        return path, tools[0]
    if os.environ.get("STACKPRESS_REQUIRE_BROKER"):
        pytest.fail("no Mosquitto on this machine, and CI requires it (.ci/run installs mosquitto)")
    pytest.skip("no Mosquitto here (apt-get install mosquitto mosquitto-clients): MQTT test skipped")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _make_certificates(d):
    """A lab's own CA and the broker's certificate signed by it, for 127.0.0.1."""

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=lab CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=lab")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
    )  # fmt: skip


class Broker:
    def __init__(self, tmp_path, tls=False):
        self.exe, passwd = mosquitto()
        self.dir = tmp_path / "broker"
        self.dir.mkdir()
        pw = self.dir / "passwords"
        for i, (user, password) in enumerate(USERS.items()):
            args = [passwd, "-b"] + (["-c"] if i == 0 else []) + [str(pw), user, password]
            subprocess.run(args, check=True, capture_output=True)
        (self.dir / "acl").write_text(ACL.read_text())
        (self.dir / "db").mkdir()
        self.port = _free_port()
        tls_lines = []
        if tls:
            if not shutil.which("openssl"):
                pytest.skip("no openssl here to make the broker's certificate: the TLS test skipped")
            _make_certificates(self.dir)
            self.ca = self.dir / "ca.crt"
            self.tls_port = _free_port()
            tls_lines = [
                "listener %d 127.0.0.1" % self.tls_port,
                "cafile %s" % self.ca,
                "certfile %s" % (self.dir / "server.crt"),
                "keyfile %s" % (self.dir / "server.key"),
            ]
        (self.dir / "mosquitto.conf").write_text(
            "\n".join(
                tls_lines
                + [
                    "listener %d 127.0.0.1" % self.port,
                    "allow_anonymous false",
                    "password_file %s" % pw,
                    "acl_file %s" % (self.dir / "acl"),
                    "persistence true",
                    "persistence_location %s/" % (self.dir / "db"),
                    "user %s" % getpass.getuser(),  # as root (CI): stay root, keep reading these files
                    "log_dest file %s" % (self.dir / "mosquitto.log"),
                    "",
                ]
            )
        )
        self.proc = None
        self.start()

    def url(self, user, tls=False):
        if tls:
            return "mqtts://%s@127.0.0.1:%d" % (user, self.tls_port)
        return "mqtt://%s@127.0.0.1:%d" % (user, self.port)

    def env(self, user, base=None):
        """An environment whose STACKPRESS_MQTT_PASSWORD is `user`'s."""
        return dict(base or os.environ, STACKPRESS_MQTT_PASSWORD=USERS[user])

    def start(self):
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.dir / "mosquitto.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto ended: %s" % self.proc.stdout.read().decode(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen on %d within 30 s" % self.port)

    def stop(self):
        """As a service stop does (SIGTERM): it writes its persistence file and ends."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""
