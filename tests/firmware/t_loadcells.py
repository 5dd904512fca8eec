# Several load cells under one casing (stackpress/loadcells.py), under MicroPython.
import micropython

from stackpress.loadcells import (
    JUMP,
    NO_DATA,
    ONE,
    OUTVOTED,
    REASONS,
    SATURATED,
    STUCK,
    LoadCells,
    centre_offset_mm,
    ratio_q14,
    scale,
    uniformity_pct,
)

SPAN = 430.0
TARE = 40000


def _cells(n=3, spans=None):
    c = LoadCells(n)
    c.calibrate([TARE + 100 * i for i in range(n)], spans or [SPAN] * n)
    # max jump 200 N, stuck after 20 samples, no data after 10, outvote 2 N, contact 20 N
    c.configure(
        {
            "max_jump_n": 200,
            "stuck_samples": 20,
            "sample_timeout_ms": 1000,
            "channel_disagree_n": 2,
            "contact_force_n": 20,
        },
        SPAN,
        10,
    )
    return c


class Feed:
    """Readings of n load cells carrying force_n in `shares`, each cell with its own span,
    a little noise, and whatever a test does to one of them."""

    def __init__(self, cells, shares, spans=None):
        self.cells = cells
        self.shares = shares
        self.spans = spans or [SPAN] * cells.n
        self.raws = [0] * cells.n
        self.k = 0
        self.extra_n = [0.0] * cells.n

    def counts(self, force_n):
        self.k += 1
        for i in range(self.cells.n):
            noise = (self.k * 7 + i * 3) % 5 - 2  # never repeats for long, +-2 counts
            f = force_n * self.shares[i] + self.extra_n[i]
            self.raws[i] = TARE + 100 * i + int(f * self.spans[i]) + noise
        return self.raws

    def step(self, force_n, mask=None):
        return self.cells.update(self.counts(force_n), (1 << self.cells.n) - 1 if mask is None else mask)


def test_q14_helpers_stay_exact_enough_in_small_ints():
    assert scale(1 << 24, ONE) == 1 << 24
    assert scale(-1000000, ONE // 2) == -500000
    assert abs(scale(8388607, 12345) - 8388607 * 12345 / ONE) <= 1
    assert ratio_q14(1, 3) == ONE // 3
    assert ratio_q14(5 << 24, 1 << 24) == 2 * ONE  # clamped
    assert ratio_q14(-3, 2) == -(3 * ONE) // 2


def test_total_is_the_sum_with_each_cells_own_span():
    spans = [SPAN, SPAN * 1.1, SPAN * 0.9]
    c = _cells(3, spans)
    f = Feed(c, [0.5, 0.3, 0.2], spans)
    for _ in range(30):
        tot = f.step(3000.0)
    assert c.bits == 0 and c.healthy
    assert abs(tot / SPAN - 3000.0) < 0.1, tot / SPAN
    forces = c.forces_n(SPAN)
    assert all(abs(a - b) < 0.05 for a, b in zip(forces, (1500.0, 900.0, 600.0))), forces
    assert abs(c.share[0] / ONE - 0.5) < 0.01


def test_one_cell_is_what_it_always_was():
    c = _cells(1)
    f = Feed(c, [1.0])
    tot = f.step(1000.0)
    assert c.need == 1 and abs(tot / SPAN - 1000.0) < 0.01
    f.raws[0] = 0x7FFFFF
    c.update(f.raws, 1)
    assert c.bits == 1 << SATURATED and not c.healthy and not c.excluded


def test_a_bad_cell_is_left_out_and_the_total_estimated_from_the_others_shares():
    for why, spoil in ((SATURATED, lambda r: 0x7FFFFF), (JUMP, lambda r: r + int(300 * SPAN))):
        c = _cells()
        f = Feed(c, [0.4, 0.35, 0.25])
        for _ in range(60):
            f.step(3000.0)
        raws = f.counts(3000.0)
        raws[1] = spoil(raws[1])
        tot = c.update(raws, 7)
        assert c.excluded == 2 and c.newly == 2 and c.why[1] == why and c.bits == 0
        assert abs(tot / SPAN - 3000.0) < 0.5, tot / SPAN  # from cells 0 and 2 and their shares
        for _ in range(5):
            tot = f.step(3300.0)  # the load moves on: still followed
        assert c.excluded == 2 and c.newly == 0 and abs(tot / SPAN - 3300.0) < 0.5
        assert c.left() == 2 and c.describe(SPAN)[1]["state"] == REASONS[why]


def test_a_stuck_cell_is_left_out_after_stuck_samples():
    c = _cells()
    f = Feed(c, [1 / 3, 1 / 3, 1 / 3])
    f.step(2000.0)
    stuck = f.raws[2]
    for i in range(25):
        raws = f.counts(2000.0 + i)
        raws[2] = stuck
        c.update(raws, 7)
    assert c.excluded == 4 and c.why[2] == STUCK


def test_a_silent_cell_is_estimated_at_once_and_left_out_after_the_timeout():
    c = _cells()
    f = Feed(c, [0.3, 0.3, 0.4])
    for _ in range(40):
        f.step(2000.0)
    for i in range(12):
        tot = f.step(2000.0, mask=3)
        assert c.bits == 0 and abs(tot / SPAN - 2000.0) < 0.5  # not used, the others carry it
        assert c.excluded == (4 if i >= 10 else 0), (i, c.excluded)
    assert c.why[2] == NO_DATA


def test_too_few_good_cells_are_not_trusted_and_nothing_is_left_out():
    c = _cells()
    f = Feed(c, [1 / 3, 1 / 3, 1 / 3])
    for _ in range(40):
        f.step(2000.0)
    raws = f.counts(2000.0)
    raws[0] = 0x7FFFFF
    raws[1] = -0x800000
    c.update(raws, 7)
    assert not c.healthy and c.bits == 1 << SATURATED and c.excluded == 0
    # one after the other: the first is left out, the second leaves too few
    c = _cells()
    f = Feed(c, [1 / 3, 1 / 3, 1 / 3])
    for _ in range(40):
        f.step(2000.0)
    raws = f.counts(2000.0)
    raws[0] = 0x7FFFFF
    c.update(raws, 7)
    assert c.excluded == 1 and c.bits == 0
    raws = f.counts(2000.0)
    raws[0] = 0x7FFFFF
    raws[2] = 0x7FFFFF
    c.update(raws, 7)
    assert c.excluded == 1 and c.bits == 1 << SATURATED and not c.healthy
    # two cells: one bad one is already too few
    c = _cells(2)
    f = Feed(c, [0.5, 0.5])
    f.step(2000.0)
    raws = f.counts(2000.0)
    raws[1] = 0x7FFFFF
    c.update(raws, 3)
    assert c.need == 2 and c.excluded == 0 and c.bits


def test_a_drifting_cell_is_outvoted_by_the_others_and_a_moving_load_is_not():
    c = _cells()
    f = Feed(c, [0.4, 0.35, 0.25])
    for _ in range(60):
        f.step(3000.0)
    c.freeze()
    for _ in range(20):  # breathing: the total moves, the shares stay
        f.step(3050.0)
    assert c.excluded == 0
    f.shares = [0.38, 0.36, 0.26]  # the load's centre moves: the others disagree too
    for _ in range(20):
        f.step(3000.0)
    assert c.excluded == 0
    f.shares = [0.4, 0.35, 0.25]
    for _ in range(40):  # cell 2 drifts by 0.2 N a sample: out once 2 N off, 5 samples running
        f.extra_n[2] += 0.2
        f.step(3000.0)
        if c.excluded:
            break
    assert c.excluded == 4 and c.why[2] == OUTVOTED, (c.excluded, c.why)
    assert 2.0 < f.extra_n[2] < 3.4, f.extra_n[2]
    # acknowledged while it still reads off: it stays out; once it agrees again, it is back
    c.ack()
    assert c.excluded == 4
    f.extra_n[2] = 0.0
    f.step(3000.0)
    c.ack()
    assert c.excluded == 0 and c.why[2] == 0
    # re-tared (new zeros): everything is back, and the shares are learned afresh
    f.extra_n[2] = 50.0
    for _ in range(10):
        f.step(3000.0)
    assert c.excluded == 4
    c.retare()
    assert c.excluded == 0 and not c.frozen
    f.step(3000.0)
    assert abs(c.share[2] / ONE - (0.25 * 3000 + 50) / 3050) < 0.001


def test_update_allocates_nothing():
    c = _cells(4)
    f = Feed(c, [0.25, 0.25, 0.25, 0.25])
    for _ in range(40):
        f.step(2000.0)
    c.freeze()
    raws = f.counts(2000.0)
    bad = f.counts(2000.0)
    bad[3] = 0x7FFFFF
    micropython.heap_lock()
    try:
        for _ in range(10):
            c.update(raws, 15)
            c.update(raws, 7)
        c.update(bad, 15)
        c.update(raws, 15)
    finally:
        micropython.heap_unlock()
    assert c.excluded == 8


def test_uniformity_and_centre_of_an_off_centre_load():
    import math

    r = 30.0
    x, y = 2.0, -1.0
    for n in (3, 4):
        forces = [
            1000.0 / n * (1 + 2 * (x * math.cos(2 * math.pi * i / n) + y * math.sin(2 * math.pi * i / n)) / r)
            for i in range(n)
        ]
        cx, cy = centre_offset_mm(forces, r)
        assert abs(cx - x) < 1e-3 and abs(cy - y) < 1e-3, (cx, cy)
        u = uniformity_pct(forces)
        mean = 1000.0 / n
        assert abs(u - 100 * max(abs(f - mean) for f in forces) / mean) < 1e-6
    assert uniformity_pct([100.0, 100.0, 100.0]) == 0
    assert uniformity_pct([0.0, 0.0]) is None and centre_offset_mm([5.0], r) is None
