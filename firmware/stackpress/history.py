"""What the fixture said, kept in RAM so a host that was away can ask for it again.

Telemetry records are kept as fixed-point integers in one preallocated array (56 bytes
a record; 400 records: 21.9 KB, 33 min at a 5 s telemetry period, 6.7 min at 1 s; with
several load cells a record is 4 bytes a cell longer and fewer are kept: 329 with three,
27 min at 5 s); the
record a host reads, live or replayed, is always formatted from these integers, so a
replayed record is byte for byte the one sent live. Events are rare and kept as the
frames that were sent. Both share the sequence numbers of one boot; a reset empties
the history (the records of a boot that the host never read are then lost, and the
host is told where).
"""

import uctypes

from stackpress.controller import MODE_NAMES
from stackpress.protocol import Parts

TEL_RECORDS = 400  # the boards keep this many (one place: boards and tests read it here)
EVT_RECORDS = 32
# Fields of a telemetry entry (integers; NONE where a value is absent).
# ALARMS_N: the alarm bits (16) and, above them, the samples since the previous record.
(
    SEQ,
    S,
    MS_MODE,
    ALARMS_N,
    P_10PA,
    SP_100PA,
    REF_10PA,
    FORCE_MN,
    POS_01NM,
    RAW,
    PMIN_10PA,
    PMAX_10PA,
    THK_01NM,
    TEMP_MC,
) = range(14)
WIDTH = 14
CH0_MN = 14  # with several load cells, each one's force follows (mN)
NONE = -0x40000000  # a small int on every port (RP2040: 31-bit)
# The telemetry record as a host reads it; the one description of it (`schema` sends it):
# FIELDS in order, then with several load cells each one's force and SPREAD. FIELDS[4:14]
# are scaled: the value is the entry's integer at SCALED_AT[k] / SCALE[k] (the integer
# itself at scale 1), None where the entry holds NONE.
FIELDS = (
    "seq",
    "device_ms",
    "state",
    "n_samples",
    "pressure_mpa",
    "setpoint_mpa",
    "ref_mpa",
    "p_min_mpa",
    "p_max_mpa",
    "force_n",
    "position_um",
    "thickness_um",
    "temperature_c",
    "raw_counts",
    "alarms",
)
SCALED_AT = (P_10PA, SP_100PA, REF_10PA, PMIN_10PA, PMAX_10PA, FORCE_MN, POS_01NM, THK_01NM, TEMP_MC, RAW)
SCALE = (1e5, 1e4, 1e5, 1e5, 1e5, 1e3, 1e4, 1e4, 1e3, 1)
SPREAD = ("uniformity_pct", "centre_x_mm", "centre_y_mm")
CHANNEL = "force_ch%d_n"


def fields(load_cells):
    """The telemetry record's fields in order (after "t" and "boot", which every record has)."""
    f = list(FIELDS)
    if load_cells > 1:
        for i in range(load_cells):
            f.append(CHANNEL % i)
        f.extend(SPREAD)
    return f


def fix(x, scale):
    """A value as an integer in units of 1/scale (a small int on the RP2040 for every
    value the fixture reports: pressure to 10 Pa, force to 1 mN, position to 0.1 nm)."""
    v = x * scale
    return int(v + 0.5) if v >= 0 else -int(0.5 - v)


class History:
    def __init__(self, tel_records=TEL_RECORDS, evt_records=EVT_RECORDS, load_cells=1):
        self.width = w = WIDTH + (load_cells if load_cells > 1 else 0)
        self.load_cells = load_cells
        self._ch = fields(load_cells)[len(FIELDS) :] if load_cells > 1 else None
        # The same bytes whatever the number of load cells (fewer, wider records): the
        # heap has no room for a bigger block.
        self.cap = tel_records = tel_records * WIDTH // w
        # One buffer seen as int32s: an array would need a second buffer as big to fill.
        self._buf = bytearray(4 * w * tel_records)
        self.tel = uctypes.struct(
            uctypes.addressof(self._buf), {"v": (uctypes.ARRAY | 0, uctypes.INT32 | w * tel_records)}
        ).v
        self.n = 0  # entries held
        self.head = 0  # index of the next entry to write
        self.evt_cap = evt_records
        self.evts = []  # (seq, frame), oldest first
        self.gone = 0  # the newest sequence number no longer held (overwritten)
        self._ti = 0  # replay cursor: telemetry entries left to go, next event index, last seq
        self._tleft = 0
        self._ei = 0
        self._to = 0

    def slot(self):
        """Offset of the entry to fill next (the oldest, when full: it is gone from here)."""
        o = self.head * self.width
        if self.n == self.cap and self.tel[o + SEQ] > self.gone:
            self.gone = self.tel[o + SEQ]
        return o

    def commit(self):
        self.head = (self.head + 1) % self.cap
        if self.n < self.cap:
            self.n += 1

    def record(self, o, boot, alarm_names, spread):
        """The telemetry record (fields(), as protocol.Parts) of entry `o`: `alarm_names` names alarm
        bits, `spread` gives (uniformity, centre) of several load cells' forces."""
        h = self.tel
        mm = h[o + MS_MODE]
        an = h[o + ALARMS_N]
        # In parts of at most 8 fields (protocol.Parts, written as one object): one table of
        # all 26 fields of three load cells took a 368 B block.
        d = {
            "t": "tel",
            "boot": boot,
            "seq": h[o + SEQ],
            "device_ms": h[o + S] * 1000 + (mm & 1023),
            "state": MODE_NAMES[mm >> 10],
            "n_samples": an >> 16,
            "alarms": alarm_names(an & 0xFFFF),
        }
        p = Parts((d,))
        for k in range(len(SCALED_AT)):
            v = h[o + SCALED_AT[k]]
            p.put(FIELDS[4 + k], None if v == NONE else v if k == 9 else v / SCALE[k])
        if self._ch:
            f = [round(h[o + CH0_MN + i] / 1e3, 3) for i in range(self.load_cells)]
            for i in range(self.load_cells):
                p.put(self._ch[i], f[i])
            u, c = spread(f)
            p.put(SPREAD[0], None if u is None else round(u, 2))
            p.put(SPREAD[1], None if c is None else round(c[0], 3))
            p.put(SPREAD[2], None if c is None else round(c[1], 3))
        return p

    def add_event(self, seq, frame):
        self.evts.append((seq, frame))
        if len(self.evts) > self.evt_cap:
            s = self.evts.pop(0)[0]
            if s > self.gone:
                self.gone = s

    def _first(self):
        return (self.head - self.n) % self.cap

    def oldest_seq(self):
        """From this sequence number on, every record is still held."""
        return self.gone + 1

    # --- replay ---
    def start(self, from_seq, to_seq):
        """Set the cursor on the records with from_seq <= seq <= to_seq."""
        i = self._first()
        left = self.n
        while left and self.tel[i * self.width + SEQ] < from_seq:
            i = (i + 1) % self.cap
            left -= 1
        self._ti = i
        self._tleft = left
        self._ei = 0
        while self._ei < len(self.evts) and self.evts[self._ei][0] < from_seq:
            self._ei += 1
        self._to = to_seq

    def replaying(self):
        return self._to > 0

    def next(self):
        """The next record of the replay in sequence order: (entry offset, None) for a
        telemetry entry, (None, frame) for an event, or None at the end."""
        t_seq = self.tel[self._ti * self.width + SEQ] if self._tleft else None
        # Events may have been dropped from the front since start(): re-find by seq.
        e_seq = self.evts[self._ei][0] if self._ei < len(self.evts) else None
        if t_seq is not None and t_seq > self._to:
            t_seq = None
        if e_seq is not None and e_seq > self._to:
            e_seq = None
        if t_seq is None and e_seq is None:
            self._to = 0
            return None
        if e_seq is None or (t_seq is not None and t_seq < e_seq):
            off = self._ti * self.width
            self._ti = (self._ti + 1) % self.cap
            self._tleft -= 1
            return off, None
        self._ei += 1
        return None, self.evts[self._ei - 1][1]

    def stop(self):
        self._to = 0
