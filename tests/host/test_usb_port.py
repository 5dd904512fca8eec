"""The virtual fixture's USB port: nothing lost while a host reads, dropped as USB CDC drops
it when nobody does, and gone (link and all) while unplugged."""

import os
import select

import pytest

from stackpress import discover
from stackpress.virtual import usb_port
from stackpress.virtual.usb_port import UsbPort

EVENT_S = 30.0  # a bound on waiting for the kernel to pass bytes across the pty, not a pace


@pytest.fixture
def port(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKPRESS_RUNTIME_DIR", str(tmp_path / "run"))
    usb = UsbPort(str(tmp_path / "ttyFIXTURE"), log=lambda msg: None)
    yield usb
    usb.close()


def _read_until(fd, end, port=None):
    """What a host reads up to and including `end` (the pty passes bytes on asynchronously)."""
    got = b""
    while end not in got:
        r, _, _ = select.select([fd], [], [], EVENT_S)
        assert r, "nothing came across the pty (%d bytes so far)" % len(got)
        got += os.read(fd, 65536)
        if port is not None:
            port.flush()  # what waited for room goes on as the host reads
    return got


def test_a_host_on_the_link_reads_what_the_board_wrote_and_writes_to_it(port):
    port.plug()
    assert os.path.realpath(port.link) == port.port
    assert discover.virtual_ports() == [port.link]
    host = os.open(port.link, os.O_RDWR | os.O_NONBLOCK)
    try:
        port.write(b'{"hello": 1}\n')
        assert _read_until(host, b"\n") == b'{"hello": 1}\n'
        os.write(host, b"status\n")
        got = b""
        while not got.endswith(b"\n"):
            select.select([port.master], [], [], EVENT_S)
            got += port.read()
        assert got == b"status\n"
        assert port.dropped_bytes == 0
    finally:
        os.close(host)


def test_output_nobody_reads_is_dropped_until_a_host_reads_again(port, monkeypatch):
    monkeypatch.setattr(usb_port, "BACKLOG_MAX", 4096)  # past this much waiting, nobody is reading
    monkeypatch.setattr(usb_port, "HOST_WAIT_S", 3600.0)  # only the size rule here, whatever the machine's pace
    port.plug()
    host = os.open(port.link, os.O_RDWR | os.O_NONBLOCK)
    try:
        line = b"x" * 1023 + b"\n"
        for _ in range(10_000):  # the pty fills, then the backlog passes its bound
            port.write(line)
            if port.dropping:
                break
        assert port.dropping and port.dropped_bytes > 4096 and not port.backlog
        dropped = port.dropped_bytes
        port.write(line)  # nobody has read: this one is lost too, not kept
        assert port.dropped_bytes == dropped + len(line) and not port.backlog
        for _ in range(1000):  # a host reads again: the first write that goes through ends the dropping
            _read_until(host, b"x")
            port.write(b"\n")
            if not port.dropping:
                break
        assert not port.dropping
        dropped = port.dropped_bytes
        port.write(b"END\n")
        assert _read_until(host, b"END\n", port).endswith(b"END\n")
        assert port.dropped_bytes == dropped
    finally:
        os.close(host)


def test_an_unplugged_port_is_gone_and_what_the_board_writes_then_is_lost(port):
    port.plug()
    port.backlog += b"waiting for a host\n"
    port.unplug()
    assert not port.plugged and not os.path.lexists(port.link)
    assert discover.virtual_ports() == []
    port.write(b"into the void\n")
    assert port.dropped_bytes == len(b"waiting for a host\n") + len(b"into the void\n")
    assert port.unplugs == 1
    port.plug()
    assert os.path.realpath(port.link) == port.port and port.plugged
