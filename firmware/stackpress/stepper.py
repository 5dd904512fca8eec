"""Step/dir stepper driver that keeps the motor position in microsteps.

Pulses come from a generator the board injects (PIO on the Pico, a timed model in
the virtual fixture); this module owns direction, position and the rule that a new
move waits for the previous one, so position is exact even when a move is cut.
Nothing here allocates: moves are issued from the control iteration.
"""


class Stepper:
    def __init__(self, pulses, dir_pin, rate_hz, invert_dir=False):
        self._pulses = pulses
        self._dir_pin = dir_pin
        self._invert = 1 if invert_dir else 0
        self.rate_hz = rate_hz
        self.position = 0
        self._dir = -1
        self._moving = 0  # signed steps of the move in flight

    def move(self, steps):
        """Start a relative move of `steps` microsteps (+ = more compression)."""
        if steps == 0 or self._pulses.remaining() > 0:
            return 0
        d = 1 if steps > 0 else 0
        if d != self._dir:
            self._dir = d
            self._dir_pin.value(d ^ self._invert)
        self._pulses.start(steps if steps > 0 else -steps, self.rate_hz)
        self.position += steps
        self._moving = steps
        return steps

    def last_dir(self):
        """+1 or -1: the direction of the last move; 0 before the first."""
        return 0 if self._dir < 0 else (1 if self._dir else -1)

    def moving(self):
        return self._pulses.remaining() > 0

    def stop(self):
        """Stop at once; correct the position by the pulses that never went out."""
        left = self._pulses.stop()
        if left:
            self.position -= left if self._moving > 0 else -left
        self._moving = 0
