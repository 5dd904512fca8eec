"""Dilatometry: the cell's thickness change, from the motor's travel while holding.

While the force is held constant the springs and frame keep their compression, so the
plunger's travel is the cell's thickness change with the sign turned: the motor backs
off as the cell swells. What the force did move is taken out with the fixture's
small-signal stiffness (the stack sticks while holding, so that is the right one), and
the frame's thermal growth against the column with its coefficient and the frame
thermistor. Units at the edges: called from telemetry, never from the control iteration.

The disc springs have friction: on the way to the hold they slid (along their loading
curve, if the force rose to the setpoint), and they stick at the hold. A force that then
rises past its highest since the reference (a sudden swelling of the cell, before the loop
backs off) makes them slide on: they take up part of the swelling at the same force, and
the motor's travel misses it. The instrument tracks that excursion (less its first newton,
ripple and noise), and with the stiffness
the ramp showed while the springs slid, the part they took up is added back
(`slip_um`, in status as thickness_slip_um). Below its highest the stack sticks, so
ripples and a shrinking cell need nothing.
"""


class Dilatometer:
    def __init__(self):
        self.ref = None  # (position_steps, force_n, temperature_c or None, setpoint_mpa)
        # um of slide per N of excursion: + the springs slide on a force rise (the hold
        # was reached from below), - on a fall; and the largest excursion that way, N.
        self.slip_um_per_n = 0.0
        self.excursion_n = 0.0

    def reference(self, position_steps, force_n, temperature_c, setpoint_mpa, slip_um_per_n=0.0):
        self.ref = (position_steps, force_n, temperature_c, setpoint_mpa)
        self.slip_um_per_n = slip_um_per_n
        self.excursion_n = 0.0

    def clear(self):
        self.ref = None
        self.excursion_n = 0.0

    def slip_um(self):
        """The thickness change the springs took up by sliding since the reference, um."""
        return self.slip_um_per_n * self.excursion_n

    def thickness_um(self, position_steps, force_n, temperature_c, um_per_step, stiffness_n_per_um, um_per_k):
        """Thickness change (um, + = thicker) since the reference, or None without one."""
        if self.ref is None:
            return None
        p0, f0, t0, _ = self.ref
        d = (p0 - position_steps) * um_per_step + (force_n - f0) / stiffness_n_per_um
        if t0 is not None and temperature_c is not None:
            d -= um_per_k * (temperature_c - t0)
        return d + self.slip_um()

    def as_list(self):
        return list(self.ref) + [self.slip_um_per_n, self.excursion_n] if self.ref is not None else None

    def restore(self, saved):
        if isinstance(saved, list) and len(saved) in (4, 6):
            self.ref = tuple(saved[:4])
            if len(saved) == 6:
                self.slip_um_per_n, self.excursion_n = saved[4], saved[5]
