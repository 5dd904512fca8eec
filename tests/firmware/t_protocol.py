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
    assert bytes(out[-1]) == b"abc"  # a view of the reader's buffer
    out = [r.feed(c) for c in b"x" * 40 + b"\n"]
    assert out[-1] is False
    out = [r.feed(c) for c in b"ok\n"]
    assert bytes(out[-1]) == b"ok"
    assert r.feed(10) is None  # an empty line is no command


def test_a_frame_written_in_pieces_is_the_frame_encoded_at_once():
    from stackpress.outbox import Outbox
    from stackpress.protocol import encode, write_frame

    got = []
    out = Outbox(lambda mv: got.append(bytes(mv)) or len(mv), size=1024)
    obj = {
        "t": "rep",
        "id": 3,
        "ok": True,
        "data": {
            "config": {"a_mm2": {"value": 78.54, "unit": "mm2"}},
            "alarms": ["stuck_reading"],
            "x": None,
            "s": 'é"\n',
        },
    }
    assert write_frame(out, obj)
    assert got == [encode(obj)], (got, encode(obj))
    import json

    assert json.loads(got[0][: got[0].rfind(b"*")]) == obj


def test_a_frame_too_big_for_the_outbox_is_dropped_whole():
    from stackpress.outbox import Outbox
    from stackpress.protocol import write_frame

    out = Outbox(lambda mv: 0, size=64)  # a host that does not read
    assert write_frame(out, {"a": 1})
    n = out.n
    assert not write_frame(out, {"b": "x" * 80})
    assert out.n == n and out.dropped == 1 and bytes(out.buf[:n]).endswith(b"\n")
