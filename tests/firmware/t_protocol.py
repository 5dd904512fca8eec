from stackpress.protocol import FrameError, LineReader, crc32, frame, parse


def _err(line):
    try:
        parse(line)
    except FrameError as e:
        return e.code
    return None


def test_round_trip():
    f = frame('{"id":3,"cmd":"hold","mpa":40}')
    assert f.endswith(b"\n")
    obj = parse(f[:-1])
    assert obj == {"id": 3, "cmd": "hold", "mpa": 40}


def test_crc_is_zlib_crc32():
    # zlib.crc32(b"hello") on CPython: the host computes the same value
    assert crc32(b"hello") == 907060870


def test_garbled_frames_are_refused_with_a_reason():
    good = frame('{"id":1,"cmd":"status"}')[:-1]
    assert _err(good) is None
    assert _err(good.replace(b"status", b"stbtus")) == "crc"
    assert _err(b'{"id":1,"cmd":"status"}') == "frame"
    assert _err(good[:-1] + b"g") == "frame"
    p = b"[1,2]"
    assert _err(p + ("*%08x" % crc32(p)).encode()) == "json"
    p = b'{"id":"x","cmd":"status"}'
    assert _err(p + ("*%08x" % crc32(p)).encode()) == "id"
    p = b'{"id":1,"cmd":5}'
    assert _err(p + ("*%08x" % crc32(p)).encode()) == "cmd"
    p = b"{not json"
    assert _err(p + ("*%08x" % crc32(p)).encode()) == "json"


def test_line_reader_drops_control_bytes_and_overlong_lines():
    r = LineReader(16)
    out = [r.feed(c) for c in b"\x03\x03\x01ab\x04c\r\n"]
    assert out[-1] == b"abc"
    out = [r.feed(c) for c in b"x" * 40 + b"\n"]
    assert out[-1] is False
    out = [r.feed(c) for c in b"ok\n"]
    assert out[-1] == b"ok"
    assert r.feed(10) is None  # an empty line is no command
