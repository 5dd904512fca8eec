"""Several load cells under one casing (1 to 4 channels): the total force control runs
on, how evenly the cells share it, and a channel that fails without stopping the test.

Each channel has its own tare and span. The total is kept in reference counts (counts
of a load cell with the span of channel 0), so control and safety stay in small ints:
channel i's counts are scaled by g[i] = span0/span_i in Q14 without leaving 30 bits.

A conversion is judged per channel (saturated, stuck, implausible jump, no data). A
bad channel is excluded, and stays out until `ack`, only when enough others carry on
without it (`need`: 2, or 1 on a one-cell fixture); the total is then estimated from
the channels left and the shares they carried while all were trusted (with four, from
the pair beside the lost one: see update). How far such an estimate may be off is the
instrument's (check_estimate). With fewer good
channels than `need`, the sample is not trusted at all (the safety layer holds
position), exactly as a one-cell fixture does with a bad conversion. While holding,
with three channels or more, a channel whose reading departs from what the others imply
(by the shares the cells had when the hold settled) while the others agree among
themselves, is outvoted.
Everything in update() is allocation-free.
"""

from stackpress.hx711 import FULL_SCALE, MIN_SCALE

Q = 14
ONE = 1 << Q
# Why a channel is not used (codes; names in REASONS). The safety bits they map to
# when too few channels are left: see safety.py.
OK, NO_DATA, SATURATED, STUCK, JUMP, OUTVOTED = range(6)
REASONS = ("ok", "no_data", "saturated", "stuck", "implausible_jump", "outvoted")
OUTVOTE_SAMPLES = 5
# 10 kN, 2 mV/V load cell at 5 V excitation into an HX711 at gain 128 (+-19.53 mV full
# scale over +-2**23 counts): 1 uV/N -> 429.5 counts/N. Used until calibrated.
NOMINAL_SPAN_COUNTS_PER_N = 429.5


def scale(x, g):
    """x * g / 2**14 for |x| < 2**25 and 0 < g < 2**15, in small ints."""
    return (x >> Q) * g + (((x & (ONE - 1)) * g) >> Q)


def ratio_q14(a, c):
    """a / c in Q14 (c > 0), clamped to [-2, 2], in small ints: c is brought under 2**15
    (rounded), then a long division, so the result is good to ~2**-15 of itself."""
    if c <= 0:
        return 0
    if a > 2 * c:
        a = 2 * c
    elif a < -2 * c:
        a = -2 * c
    k = 0
    while c >> k >= 0x8000:  # (r << Q) + c stays under 2**30: a small int on the RP2040
        k += 1
    if k:
        h = 1 << (k - 1)
        a = (a + h) >> k
        c = (c + h) >> k
    neg = a < 0
    if neg:
        a = -a
    q = a // c
    r = (((a - q * c) << Q) + (c >> 1)) // c
    v = (q << Q) + r
    return -v if neg else v


class LoadCells:
    def __init__(self, n):
        self.n = n
        self.need = 2 if n > 1 else 1
        self.tare = [0] * n  # counts
        self.span = [NOMINAL_SPAN_COUNTS_PER_N] * n  # counts/N (floats: the edges only)
        self.g = [ONE] * n  # span0/span_i, Q14
        self.net = [0] * n  # reference counts, this or the last conversion
        self.bad_now = [0] * n  # this conversion's verdict (a reason code)
        self.why = [0] * n  # why a channel is excluded (latched until ack)
        self.excluded = 0  # mask
        self._prev = [0] * n
        self._have = [0] * n
        self._same = [0] * n
        self._missed = [0] * n
        self.share = [ONE // n] * n  # Q14 shares while all were trusted
        self._acc = [(ONE // n) << 4] * n  # 16x the shares' running average
        self.ref_share = [0] * n  # the shares when the hold settled (0: not frozen)
        self.frozen = False
        self._learned = False
        self._ref_rest = 0
        self._odd = -1  # the channel the others disagree with, and for how long
        self._odd_n = 0
        self.bits = 0  # reason codes as a mask (1 << code) when the total is not trusted
        self.healthy = False  # enough channels gave a good conversion this time
        self.newly = 0  # channels excluded by the last update (for the event)
        self.total = 0
        self.raw_total = 0  # every channel's last reading scaled to channel 0's counts, summed
        self.max_ch = 0  # the largest channel's reading, for the overload check
        self.max_jump = 1 << 29
        self.stuck_samples = 1 << 20
        self.missed_limit = 10
        self.outvote_counts = 1 << 29
        self.contact = 0

    def calibrate(self, tares, spans):
        """Per channel tare (counts) and span (counts/N); refuses spans that the Q14
        scaling can't carry (a channel more than twice as sensitive, or less than half)."""
        s0 = float(spans[0])
        for i in range(self.n):
            g = int(ONE * s0 / float(spans[i]) + 0.5)
            if not ONE // 2 <= g < 2 * ONE:
                raise ValueError("channel %d's span %s is too far from channel 0's %s" % (i, spans[i], s0))
        for i in range(self.n):
            self.tare[i] = int(tares[i])
            self.span[i] = float(spans[i])
            self.g[i] = int(ONE * s0 / self.span[i] + 0.5)

    def combined_tare(self):
        """The tare of the summed reading (raw_total), in channel 0's counts."""
        return sum(self.tare[i] * self.span[0] / self.span[i] for i in range(self.n))

    def combined_calibration(self, tare, span0):
        """Per channel tares and spans that give the summed reading the zero `tare` and
        the span `span0` (counts/N, in channel 0's counts): every span scaled alike (the
        cells' ratios stand), the zero shift shared equally. Returns (tares, spans)."""
        k = span0 / self.span[0]
        d = (tare - self.combined_tare()) / self.n
        tares = [int(round(self.tare[i] + d * self.span[i] / self.span[0])) for i in range(self.n)]
        spans = [self.span[i] * k for i in range(self.n)]
        spans[0] = span0
        return tares, spans

    def configure(self, c, counts_per_n, sample_rate_sps):
        """The limits from the settings `c` (config.py's names and units), in reference
        counts (`counts_per_n`: load cell 0's span) and samples."""
        self.max_jump = max(1, int(c["max_jump_n"] * counts_per_n))
        self.stuck_samples = int(c["stuck_samples"])
        self.missed_limit = max(1, int(c["sample_timeout_ms"] * sample_rate_sps // 1000))
        self.outvote_counts = max(1, int(c["channel_disagree_n"] * counts_per_n))
        self.contact = int(c["contact_force_n"] * counts_per_n)

    def force_n(self, net):
        """Reference counts as newtons (floats: the edges only)."""
        return net / self.span[0]

    def counts(self, force_n):
        """Newtons as reference counts (rounded)."""
        return int(force_n * self.span[0] + 0.5)

    def _judge(self, i, raw):
        """The reason code of channel i's new conversion (0: good). Allocation-free."""
        r = OK
        if raw >= FULL_SCALE or raw <= MIN_SCALE:
            r = SATURATED
        elif self._have[i]:
            p = self._prev[i]
            if raw == p:
                self._same[i] += 1
                if self._same[i] >= self.stuck_samples:
                    r = STUCK
            else:
                self._same[i] = 1
                d = scale(raw - p, self.g[i])
                if d > self.max_jump or d < -self.max_jump:
                    r = JUMP
        if r == SATURATED:
            self._have[i] = 0  # no reference for the next one's jump check
        else:
            self._have[i] = 1
            self._prev[i] = raw
        return r

    def update(self, raws, mask):
        """A conversion of the channels in `mask` (the others gave none). Returns the
        total in reference counts; self.bits is non-zero when it is not to be trusted."""
        n = self.n
        good = 0
        c = 0
        for i in range(n):
            c += scale(raws[i], self.g[i])
            if mask & (1 << i):
                self._missed[i] = 0
                r = self._judge(i, raws[i])
                if r == OK:
                    self.net[i] = scale(raws[i] - self.tare[i], self.g[i])
            else:
                # No conversion: not used now; left out only once silent for missed_limit.
                self._missed[i] += 1
                r = NO_DATA
                if self._missed[i] > self.missed_limit:
                    self._have[i] = 0
            self.bad_now[i] = r
            if r == OK:
                good += 1
        self.raw_total = c
        self.healthy = good >= self.need
        self.newly = 0
        self.bits = 0
        # A bad channel is excluded if enough others are left without it.
        for i in range(n):
            r = self.bad_now[i]
            if r and not self.excluded & (1 << i) and (r != NO_DATA or self._missed[i] > self.missed_limit):
                left = 0
                for j in range(n):
                    if j != i and not self.bad_now[j] and not self.excluded & (1 << j):
                        left += 1
                if left >= self.need:
                    self.excluded |= 1 << i
                    self.why[i] = self.bad_now[i]
                    self.newly |= 1 << i
        used = 0
        total = 0
        ssum = 0
        lost = 0
        mx = -(1 << 29)
        for i in range(n):
            if self.bad_now[i] or self.excluded & (1 << i):
                if self.bad_now[i]:
                    self.bits |= 1 << self.bad_now[i]
                lost = i
                continue
            used += 1
            v = self.net[i]
            total += v
            ssum += self.share[i]
            if v > mx:
                mx = v
        if used < self.need:
            return self.total  # self.bits says why; the last total stands for display
        self.bits = 0
        if used < n:
            if n == 4 and used == 3:
                # Opposite cells of four carry half the load between them wherever its
                # centre is (a rigid plate on equally stiff cells): the pair beside the
                # lost one gives a total that a shift of the load does not bias.
                a = (lost + 1) & 3
                b = (lost + 3) & 3
                total = self.net[a] + self.net[b]
                ssum = self.share[a] + self.share[b]
            if ssum < ONE // 8:
                ssum = ONE // 8
            q = total // ssum
            total = q * ONE + ((total - q * ssum) * ONE) // ssum
        else:
            self._learn(total)
        self.total = total
        self.max_ch = mx
        if self.frozen and used >= 3:
            self._outvote(total)
        return total

    def _learn(self, total):
        """Each channel's share of the load, averaged over ~16 samples (the first taken as
        it is), while every channel reads well and the stack is in contact."""
        if total <= self.contact:
            return
        first = not self._learned
        self._learned = True
        acc = self._acc
        for i in range(self.n):
            r = ratio_q14(self.net[i], total)
            # 16x the average, so the average carries no rounding bias (a plain
            # s += (r - s) >> 4 stops up to 15 LSB short: 0.1 % of the load)
            acc[i] = r << 4 if first else acc[i] + r - ((acc[i] + 8) >> 4)
            self.share[i] = (acc[i] + 8) >> 4

    def _rest(self, k):
        """The summed reading of the channels in use other than k (returned), and their
        settled shares (left in _ref_rest: a tuple would allocate)."""
        rest = 0
        ref_rest = 0
        for j in range(self.n):
            if j != k and not self.excluded & (1 << j) and not self.bad_now[j]:
                rest += self.net[j]
                ref_rest += self.ref_share[j]
        self._ref_rest = ref_rest
        return rest

    def _deviation(self, k):
        """How far channel k's reading is from what the other channels in use imply by
        the shares frozen when the hold settled, in reference counts."""
        rest = self._rest(k)
        ref_rest = self._ref_rest
        if ref_rest <= 0:
            return 0
        return self.net[k] - scale(rest, ratio_q14(self.ref_share[k], ref_rest))

    def _outvote(self, total):
        """With three cells or more, the one whose reading departs from what the others
        imply (by the settled shares) while the others still agree among themselves.
        A drifting cell pulls the controller's total, but the others stay in proportion:
        they say how much it is off. Allocation-free."""
        if total <= self.contact:
            return
        worst = -1
        dev = 0
        for i in range(self.n):
            if self.excluded & (1 << i):
                continue
            d = self._deviation(i)
            if d < 0:
                d = -d
            if d > dev:
                dev = d
                worst = i
        if dev <= self.outvote_counts or not self._others_agree(worst):
            self._odd_n = 0
            return
        if worst != self._odd:
            self._odd = worst
            self._odd_n = 0
        self._odd_n += 1
        if self._odd_n >= OUTVOTE_SAMPLES:
            self._odd_n = 0
            self.excluded |= 1 << worst
            self.why[worst] = OUTVOTED
            self.newly |= 1 << worst

    def _others_agree(self, k):
        """The channels in use other than k still share their part of the load as they
        did when the hold settled (within half the outvote margin): k alone moved, not the
        load's centre. (A centre moving straight towards or away from k looks the same;
        the settled load's centre is assumed to stay put.)"""
        rest = self._rest(k)
        ref_rest = self._ref_rest
        if ref_rest <= 0:
            return False
        tol = self.outvote_counts >> 1
        for j in range(self.n):
            if j == k or self.excluded & (1 << j) or self.bad_now[j]:
                continue
            d = self.net[j] - scale(rest, ratio_q14(self.ref_share[j], ref_rest))
            if d > tol or d < -tol:
                return False
        return True

    def left(self):
        """How many load cells are not excluded."""
        k = 0
        for i in range(self.n):
            if not self.excluded & (1 << i):
                k += 1
        return k

    def lost(self):
        """The ADCs went silent: nothing they said before is a reference any more."""
        for i in range(self.n):
            self._have[i] = 0

    def freeze(self):
        """The shares as they are now are the reference the channels are held to."""
        for i in range(self.n):
            self.ref_share[i] = self.share[i]
        self.frozen = True

    def unfreeze(self):
        self.frozen = False

    def ack(self):
        """Take back every excluded channel that gives good conversions again; one that
        was outvoted only once it agrees with the others again (a drifted load cell stays
        out, and its alarm stands, until it is re-tared unloaded: see retare())."""
        for i in range(self.n):
            if self.excluded & (1 << i) and not self.bad_now[i]:
                if self.why[i] == OUTVOTED and self.frozen:
                    d = self._deviation(i)
                    if d > self.outvote_counts or d < -self.outvote_counts:
                        continue
                self.excluded &= ~(1 << i)
                self.why[i] = OK

    def retare(self):
        """New zeros for every channel (the caller has calibrated them): all are taken
        back, and their shares are learned afresh."""
        self.excluded = 0
        for i in range(self.n):
            self.why[i] = OK
            self._have[i] = 0
        self.frozen = False
        self._learned = False

    # --- the edges (floats, allocate) ---
    def forces_n(self, span0):
        """Each channel's force, N: measured, or for an excluded one its share of the total."""
        out = []
        for i in range(self.n):
            v = self.net[i] if not self.excluded & (1 << i) else self.total * self.share[i] // ONE
            out.append(v / span0)
        return out

    def describe(self, span0):
        f = self.forces_n(span0)
        return [
            {
                "force_n": round(f[i], 3),
                "state": REASONS[self.why[i]]
                if self.excluded & (1 << i)
                else ("ok" if not self.bad_now[i] else REASONS[self.bad_now[i]]),
                "share_pct": round(100 * self.share[i] / ONE, 2),
            }
            for i in range(self.n)
        ]


def uniformity_pct(forces):
    """Largest deviation of a channel from the mean, in % of the mean (0: even)."""
    n = len(forces)
    mean = sum(forces) / n
    if n < 2 or mean <= 0:
        return None
    return 100 * max(abs(f - mean) for f in forces) / mean


def centre_offset_mm(forces, radius_mm):
    """(x, y) of the load's centre from the axis, mm: channels evenly spaced on a circle
    of radius_mm, channel 0 on +x, counter-clockwise. None below 2 channels."""
    import math

    n = len(forces)
    tot = sum(forces)
    if n < 2 or tot <= 0:
        return None
    x = y = 0.0
    for i in range(n):
        a = 2 * math.pi * i / n
        x += forces[i] * math.cos(a)
        y += forces[i] * math.sin(a)
    return radius_mm * x / tot, radius_mm * y / tot
