"""Safety: conditions checked on every sample, each latched as an alarm until `ack`.

Condition          trips when                                    action
sensor_timeout     no conversion for sample_timeout_ms           fault: hold position
adc_saturated      a conversion at the ADC's full scale           fault: hold position
stuck_reading      stuck_samples identical conversions in a row   fault: hold position
implausible_jump   a conversion max_jump_n away from the last     fault: hold position
over_pressure      force above max_pressure_mpa x cell area       fault: back off at once
overload           force above the load cell's rated capacity     fault: back off at once
motor_stall        steps in contact that do not change the force  fault: stop, hold position
travel_limit       a move beyond travel_limit_um                  fault: stop, hold position
watchdog_reset     the board was reset by its watchdog            reported at boot, resumes
config_reset       stored settings unreadable: defaults in use    reported at boot
estop              the e-stop input is open (pressed, or its      fault: stop, driver off (the
                   wire cut: normally closed)                     worm holds the load); ack
                                                                  refused until released
end_stop           the end-stop input is open                     fault: stop; moves towards it
                                                                  stay refused while it is open
channel_fault      one of several load cells fails (any of the    it is left out, the total
                   sensor conditions, or outvoted by the others)  estimated from the others:
                                                                  control goes on (2 needed)
nonuniform_load    uniformity_pct above max_nonuniformity_pct     reported (a warning event
                   while holding                                  while ramping)
hold_deviation     while holding, the pressure further than       reported; the hold goes on
                   hold_alarm_band_mpa from the setpoint for
                   hold_alarm_after_s (swinging: over a third
                   of the time); a loop setting gone wrong, a
                   motor that can't follow
estimate_uncertain with a load cell left out, the total (an      reported; the hold goes on
                   estimate) may be off by more than              on the estimate
                   estimate_alarm_mpa: the cells left show
                   that the load has moved since they were
                   all read
A fault never moves the motor blind: with no trusted force reading the position is
held (the self-locking worm and screw keep the load); backing off from over-pressure
needs a trusted reading, and its limits count from the calibrated zero (a tare can't
raise them). `ack` is refused until the load cell is trusted again
(TRUST_SAMPLES good conversions in a row). The same table is in PROTOCOL.md. The
sensor conditions are judged per load cell in loadcells.py: they trip here when too
few cells are left to trust the total.
"""

from stackpress.loadcells import JUMP, NO_DATA, SATURATED, STUCK

SENSOR_TIMEOUT = 1
ADC_SATURATED = 2
OVER_PRESSURE = 4
TRAVEL_LIMIT = 8
CONFIG_RESET = 16
STUCK_READING = 32
IMPLAUSIBLE_JUMP = 64
OVERLOAD = 128
MOTOR_STALL = 256
WATCHDOG_RESET = 512
ESTOP = 1024
END_STOP = 2048
CHANNEL_FAULT = 4096
NONUNIFORM = 8192
HOLD_DEVIATION = 16384
ESTIMATE_UNCERTAIN = 32768  # the last of the record's 16 alarm bits (history.py)
ALARM_NAMES = (
    "sensor_timeout",
    "adc_saturated",
    "over_pressure",
    "travel_limit",
    "config_reset",
    "stuck_reading",
    "implausible_jump",
    "overload",
    "motor_stall",
    "watchdog_reset",
    "estop",
    "end_stop",
    "channel_fault",
    "nonuniform_load",
    "hold_deviation",
    "estimate_uncertain",
)
# The board's inputs() bits: 1 = that normally-closed circuit is open.
IN_ESTOP = 1
IN_END_STOP = 2
SENSOR_BAD = SENSOR_TIMEOUT | ADC_SATURATED | STUCK_READING | IMPLAUSIBLE_JUMP
TOO_MUCH = OVER_PRESSURE | OVERLOAD
TRUST_SAMPLES = 8
_BIG = 1 << 29


class Safety:
    def __init__(self):
        self.latched = 0
        self.max_net = _BIG
        self.overload_net = _BIG
        self.backoff_net = _BIG
        self.travel_limit_steps = _BIG
        self.max_jump = _BIG
        self.stuck_samples = 1 << 20
        self.good_run = 0
        self.bad = 0  # why the last conversion was not trusted (alarm bits), 0 if it was
        # stall watch: signed steps and the force at the start of a window
        self.stall_window = 10
        self.stall_counts = _BIG
        self.cps_q4 = 16
        self._sw_n = 0
        self._sw_steps = 0
        self._sw_net0 = 0
        self._sw_strikes = 0
        self.inputs = 0
        self.end_dir = 0  # the direction (+1/-1) that reached the open end stop; 0: unknown
        self.band = _BIG  # hold deviation: the band (counts) and a leaky count of samples outside it
        self.band_limit = 1 << 20
        self.outside = 0

    def configure(self, c, counts_per_n, sample_rate_sps, zero_shift_counts=0):
        """The limits from the settings `c` (config.py's names and units) in this
        fixture's counts (`counts_per_n`: load cell 0's span) and samples.
        `zero_shift_counts`: how far the tare has moved the zero above the calibrated one.
        A reading is that much below the force from the calibrated zero, so the force
        limits come down by it: a tare (under load, or walked up) never raises them."""
        span = counts_per_n
        area = c["cell_area_mm2"]
        max_net_counts = c["max_pressure_mpa"] * area * span
        overload_counts = c["load_cell_capacity_n"] * span
        counts_per_step = c["stiffness_n_per_um"] * c["um_per_step"] * span
        lift = max(0, int(zero_shift_counts))
        self.max_net = int(max_net_counts) - lift
        self.overload_net = int(overload_counts) - lift
        # Back off to 90 % of the lower limit: below every accepted setpoint (<= 95 %).
        self.backoff_net = int(0.9 * min(max_net_counts, overload_counts)) - lift
        self.travel_limit_steps = int(c["travel_limit_um"] / c["um_per_step"])
        self.max_jump = max(1, int(c["max_jump_n"] * span))
        self.stuck_samples = int(c["stuck_samples"])
        self.stall_window = max(1, int(sample_rate_sps))  # one second
        self.stall_counts = max(1, int(c["stall_force_n"] * span))
        self.cps_q4 = max(1, int(counts_per_step * 16))
        self.stall_reset(0)
        self.band = max(1, int(c["hold_alarm_band_mpa"] * area * span))
        self.band_limit = 2 * max(1, int(c["hold_alarm_after_s"] * sample_rate_sps))
        self.outside = 0

    def trusted(self):
        return self.good_run >= TRUST_SAMPLES

    def check_sample(self, reasons, healthy, net, max_ch):
        """The alarm bits this sample trips (0 if none). `reasons`: the load cells'
        verdict (a mask of loadcells reason codes) when the total is not to be trusted;
        `healthy`: enough cells gave a good conversion; `max_ch`: the most loaded cell's
        reading, for its rating. Allocation-free.

        A sample with any of SENSOR_BAD is not to be used for control."""
        a = 0
        if reasons:
            if reasons & (1 << SATURATED):
                a |= ADC_SATURATED
            if reasons & (1 << STUCK):
                a |= STUCK_READING
            if reasons & (1 << JUMP):
                a |= IMPLAUSIBLE_JUMP
            if reasons & (1 << NO_DATA):
                a |= SENSOR_TIMEOUT
            if not a:
                a = STUCK_READING  # a reason without a bit of its own: never trusted silently
        elif max_ch > self.overload_net:
            a = OVERLOAD
        elif net > self.max_net:
            a = OVER_PRESSURE
        if healthy and not a & SENSOR_BAD:
            if self.good_run < TRUST_SAMPLES:
                self.good_run += 1
            self.bad = 0
        else:
            self.good_run = 0
            self.bad = a & SENSOR_BAD
        self.latched |= a
        return a

    def no_data(self):
        """The ADC went silent: nothing it said before counts any more."""
        self.good_run = 0
        self.bad = SENSOR_TIMEOUT
        self.latched |= SENSOR_TIMEOUT

    def check_inputs(self, inputs, last_dir):
        """The e-stop and end-stop inputs, read every sample: the alarm bits newly
        tripped. `last_dir` is the direction of the last move (+1, -1, 0: none yet).
        Allocation-free."""
        new = 0
        if inputs & IN_ESTOP and not self.latched & ESTOP:
            new = ESTOP
        if inputs & IN_END_STOP:
            if not self.inputs & IN_END_STOP:
                self.end_dir = last_dir
                if not self.latched & END_STOP:
                    new |= END_STOP
        else:
            self.end_dir = 0
        self.inputs = inputs
        self.latched |= new
        return new

    def check_move(self, position, steps):
        """Trip travel_limit for a move that would leave the allowed travel, end_stop for
        one towards an open end stop (any move, if which way reached it is unknown).

        Only outward moves trip, so a fixture past its limit can still be released.
        """
        if self.inputs & IN_END_STOP:
            e = self.end_dir
            if e == 0 or (steps > 0 and e > 0) or (steps < 0 and e < 0):
                self.latched |= END_STOP
                return END_STOP
        to = position + steps
        if (to > self.travel_limit_steps and steps > 0) or (to < -self.travel_limit_steps and steps < 0):
            self.latched |= TRAVEL_LIMIT
            return TRAVEL_LIMIT
        return 0

    def stall_reset(self, net):
        self._sw_n = 0
        self._sw_steps = 0
        self._sw_net0 = net

    def check_stall(self, steps, net):
        """Call once per sample while in contact and controlling. Over each window the
        steps moved must change the force by at least 1/8 of what the configured
        stiffness says (a fixture 8x softer than configured still passes); two windows
        in a row that don't trip motor_stall. Allocation-free."""
        self._sw_steps += steps
        self._sw_n += 1
        if self._sw_n < self.stall_window:
            return 0
        s = self._sw_steps
        if s < -_BIG // self.cps_q4 or s > _BIG // self.cps_q4:
            s = _BIG // self.cps_q4 if s > 0 else -(_BIG // self.cps_q4)
        expect = (s * self.cps_q4) >> 4
        seen = net - self._sw_net0
        if expect < 0:
            expect = -expect
            seen = -seen
        self.stall_reset(net)
        if expect >= self.stall_counts and seen < (expect >> 3):
            self._sw_strikes += 1
            if self._sw_strikes >= 2:
                self._sw_strikes = 0
                self.latched |= MOTOR_STALL
                return MOTOR_STALL
        elif expect >= self.stall_counts:
            self._sw_strikes = 0
        return 0

    def check_hold(self, net, target):
        """Call once per sample while holding: a sample outside the band counts up by two,
        one inside down by one, so an excursion that lasts after_samples, or an oscillation
        that spends over a third of its time outside, trips hold_deviation; noise inside
        the band never does. Allocation-free."""
        d = net - target
        if d > self.band or d < -self.band:
            self.outside += 2
            if self.outside >= self.band_limit:
                self.outside = 0
                self.latched |= HOLD_DEVIATION
        elif self.outside:
            self.outside -= 1

    def trip(self, bits):
        self.latched |= bits

    def ack(self):
        self.latched = 0
        self._sw_strikes = 0

    def names(self, bits=None):
        bits = self.latched if bits is None else bits
        return [n for i, n in enumerate(ALARM_NAMES) if bits & (1 << i)]
