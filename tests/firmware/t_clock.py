from boards.virtual import ticks_diff

from stackpress.clock import Clock

PERIOD = 1 << 30


def test_uptime_survives_the_ticks_wrap():
    t = [PERIOD - 250]
    c = Clock(lambda: t[0], ticks_diff)
    for _ in range(1000):
        t[0] = (t[0] + 7) & (PERIOD - 1)  # crosses 2**30 once
        c.update()
    assert c.s * 1000 + c.ms == 7000
    assert c.device_ms() == 7000


def test_ticks_diff_wraps_like_the_rp2040():
    assert ticks_diff(3, PERIOD - 2) == 5
    assert ticks_diff(PERIOD - 2, 3) == -5
