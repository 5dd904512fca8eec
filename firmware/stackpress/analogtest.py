"""`analog_test`: hold the analog output at a test voltage for a while, to check it against
what the cycler reads (`stackpress analog fit`). A module of its own, imported when asked for:
a set-up step, not worth its heap in every boot."""

from stackpress.instrument import Refused

MAX_S = 3600


def analog_test(app, obj, _number, _not_locked):
    """Hold the analog output at `v` volts for `s` seconds (default 60), to check it against
    what the cycler reads ('stackpress analog fit'); `v` null ends the test. Only while the
    fixture does not control pressure: the cycler would record a voltage that is no pressure."""
    link = app.link
    if not link.dac:
        raise Refused("unsupported", "this board has no analog output")
    if obj.get("v") is None:
        link.test_code = -1
        return {"analog_out_test": False}
    _not_locked(app, obj)
    ins = app.instrument
    if ins.state_name() in ("ramp", "hold", "release"):  # a profile runs in these too
        raise Refused(
            "state",
            "the fixture controls pressure (%s): a test voltage would go into the cycler's file as a "
            "pressure; 'gap' or 'idle' first" % ins.state_name(),
        )
    fs = ins.cfg["analog_out_full_scale_v"]
    v = _number(obj, "v", 0.0, fs, "V")
    s = _number(obj, "s", 1, MAX_S, "s") if "s" in obj else 60.0
    link.test_code = link.code_for_volts(v)
    link.test_until_s = app.clock.s + int(s)
    return {"analog_out_test": True, "code": link.test_code, "v": v, "s": s}
