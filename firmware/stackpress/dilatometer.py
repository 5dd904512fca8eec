"""Dilatometry: the cell's thickness change, from the motor's travel while holding.

While the force is held constant the springs and frame keep their compression, so the
plunger's travel is the cell's thickness change with the sign turned: the motor backs
off as the cell swells. What the force did move is taken out with the fixture's
small-signal stiffness (the stack sticks while holding, so that is the right one), and
the frame's thermal growth against the column with its coefficient and the frame
thermistor. Units at the edges: called from telemetry, never from the control iteration.
"""


class Dilatometer:
    def __init__(self):
        self.ref = None  # (position_steps, force_n, temperature_c or None, setpoint_mpa)

    def reference(self, position_steps, force_n, temperature_c, setpoint_mpa):
        self.ref = (position_steps, force_n, temperature_c, setpoint_mpa)

    def clear(self):
        self.ref = None

    def thickness_um(self, position_steps, force_n, temperature_c, um_per_step, stiffness_n_per_um, um_per_k):
        """Thickness change (um, + = thicker) since the reference, or None without one."""
        if self.ref is None:
            return None
        p0, f0, t0, _ = self.ref
        d = (p0 - position_steps) * um_per_step + (force_n - f0) / stiffness_n_per_um
        if t0 is not None and temperature_c is not None:
            d -= um_per_k * (temperature_c - t0)
        return d

    def as_list(self):
        return list(self.ref) if self.ref is not None else None

    def restore(self, saved):
        if isinstance(saved, list) and len(saved) == 4:
            self.ref = tuple(saved)
