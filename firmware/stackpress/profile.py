"""A pressure profile: a schedule of ramps and holds that the firmware runs itself.

Each step ramps to `mpa` at `rate_mpa_s` (up or down) and then holds there for `hold_s`
seconds of holding. Time in fault does not count, nor time with the board off (the Pico
has no clock that runs while it is off): a hold is never cut short by a fault or a power
cut, it is lengthened by them. A hold of -1 lasts until `profile_stop`. After the last
step the fixture goes on holding its setpoint. The schedule and where it is are persisted
with the rest of the state, so a reset resumes the step it was in, with the hold time it
had done (up to the last periodic save).
"""

MAX_STEPS = 24
UNTIL_STOPPED = -1
MAX_HOLD_S = 100 * 86400  # 100 days: any longer is a typo


class ProfileError(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg


def check(steps, max_mpa, min_rate, max_rate):
    """The steps as [[mpa, rate_mpa_s, hold_s], ...] with floats and ints, or ProfileError
    naming the step, the value and what is allowed."""
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ProfileError("'steps' must be a list of 1 to %d steps [mpa, rate_mpa_s, hold_s]" % MAX_STEPS)
    out = []
    for i, s in enumerate(steps):
        if (
            not isinstance(s, list)
            or len(s) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in s)
        ):
            raise ProfileError("step %d: must be [mpa, rate_mpa_s, hold_s], three numbers; got %r" % (i + 1, s))
        mpa, rate, hold = s
        if not 0.1 <= mpa <= max_mpa:
            raise ProfileError("step %d: %s MPa out of range: 0.1 to %.3f MPa" % (i + 1, mpa, max_mpa))
        if not min_rate <= rate <= max_rate:
            raise ProfileError(
                "step %d: rate %s MPa/s out of range: %s to %s MPa/s" % (i + 1, rate, min_rate, max_rate)
            )
        # the range first: int() of nan or inf raises
        if not (0 <= hold <= MAX_HOLD_S or hold == UNTIL_STOPPED) or hold != int(hold):
            raise ProfileError(
                "step %d: hold %s s out of range: a whole number of s from 0 to %d, or -1 "
                "(until stopped)" % (i + 1, hold, MAX_HOLD_S)
            )
        if hold == UNTIL_STOPPED and i != len(steps) - 1:
            raise ProfileError("step %d: only the last step can hold until stopped (-1)" % (i + 1))
        out.append([float(mpa), float(rate), int(hold)])
    return out


class Profile:
    def __init__(self):
        self.steps = []
        self.running = False
        self.index = 0
        self.holding = False  # the current step has reached its setpoint
        self.held_s = 0  # hold time done in this step (s + ms: no big ints on the RP2040)
        self.held_ms = 0
        self._last = 0  # type: int | None

    def start(self):
        self.running = True
        self.index = 0
        self._step_reset()

    def _step_reset(self):
        self.holding = False
        self.held_s = 0
        self.held_ms = 0

    def next(self):
        """Go to the next step; False when there is none (the profile is done)."""
        if self.index + 1 >= len(self.steps):
            self.running = False
            return False
        self.index += 1
        self._step_reset()
        return True

    def stop(self):
        self.running = False

    def step(self):
        return self.steps[self.index]

    def tick(self, holding, now, ticks_diff):
        """Call every sample while running, `holding` when the fixture holds the step's
        setpoint. True when the step's hold is over. Allocation-free."""
        if not holding or self._last is None:
            # Not holding, or the first tick after a reset: the board's clock restarted,
            # so nothing before now counts (a reset lengthens a hold, never shortens it).
            self._last = now
            if not holding:
                return False
        if not self.holding:
            self.holding = True
            self._last = now
        ms = self.held_ms + ticks_diff(now, self._last)
        self._last = now
        while ms >= 1000:
            ms -= 1000
            self.held_s += 1
        self.held_ms = ms
        hold = self.steps[self.index][2]
        return hold != UNTIL_STOPPED and self.held_s >= hold

    def remaining_s(self):
        """Hold time left in this step (None: until stopped or not reached yet)."""
        hold = self.steps[self.index][2]
        if hold == UNTIL_STOPPED or not self.holding:
            return None
        return max(0, hold - self.held_s)

    def state(self):
        return {
            "steps": self.steps,
            "running": self.running,
            "index": self.index,
            "holding": self.holding,
            "held_s": self.held_s,
        }

    def restore(self, doc, max_mpa, min_rate, max_rate):
        """From the persisted state; a schedule that no longer validates is dropped."""
        if not isinstance(doc, dict):
            return
        try:
            self.steps = check(doc.get("steps"), max_mpa, min_rate, max_rate)
        except ProfileError:
            self.steps = []
            return
        i = doc.get("index", 0)
        h = doc.get("held_s", 0)
        self.running = doc.get("running") is True and isinstance(i, int) and 0 <= i < len(self.steps)
        self.index = i if self.running else 0
        self.holding = doc.get("holding") is True and self.running
        self.held_s = h if isinstance(h, int) and h >= 0 else 0
        self.held_ms = 0
        self._last = None
