"""The virtual board timing itself (STACKPRESS_BOARD_STATS=N, boards/virtual.py): every N
exchanges with the model, a line on stderr with the microseconds per sample the board worked
(the firmware's pass: pins, control, records) and waited for the model's reply (the link and
the model). bench/sample_profile.py reads it."""

import sys
import time


def timed(exchange, every):
    """`exchange`, timed."""
    st = [0, 0, 0, 0]  # exchanges, us working, us waiting, when the last reply came

    def run(steps):
        t0 = time.ticks_us()
        counts = exchange(steps)
        t1 = time.ticks_us()
        if st[3]:
            st[1] += time.ticks_diff(t0, st[3])
            st[2] += time.ticks_diff(t1, t0)
            st[0] += 1
        st[3] = t1
        if st[0] >= every:
            n = st[0]
            said = "board stats: %d samples, working %.1f us, waiting %.1f us a sample\n"
            sys.stderr.write(said % (n, st[1] / n, st[2] / n))
            st[0] = st[1] = st[2] = 0
        return counts

    return run
