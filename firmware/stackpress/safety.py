"""Safety: conditions checked on every sample, each latched as an alarm.

Conditions -> action (see PROTOCOL.md for the table as the host sees it):
  sensor_timeout  no conversion for sample_timeout_ms   -> fault, motor stops
  adc_saturated   conversion at the ADC's full scale     -> fault, motor stops
  over_pressure   force above max_pressure or capacity   -> fault, motor stops
  travel_limit    position beyond travel_limit_um         -> fault, motor stops
A fault never moves the motor blind: with no trusted force the position is held
(the self-locking worm and screw keep the load). Alarms stay set until acknowledged.
"""
from stackpress.hx711 import FULL_SCALE, MIN_SCALE

SENSOR_TIMEOUT = 1
ADC_SATURATED = 2
OVER_PRESSURE = 4
TRAVEL_LIMIT = 8
CONFIG_RESET = 16
ALARM_NAMES = ("sensor_timeout", "adc_saturated", "over_pressure", "travel_limit", "config_reset")



class Safety:
    def __init__(self):
        self.latched = 0
        self.max_net = 1 << 29
        self.max_steps = 1 << 29

    def configure(self, max_net_counts, travel_limit_steps):
        self.max_net = int(max_net_counts)
        self.max_steps = int(travel_limit_steps)

    def check_sample(self, raw, net):
        """Return the alarm bits this sample trips (0 if none). Allocation-free."""
        a = 0
        if raw >= FULL_SCALE or raw <= MIN_SCALE:
            a = ADC_SATURATED
        elif net > self.max_net:
            a = OVER_PRESSURE
        self.latched |= a
        return a

    def check_move(self, position, steps):
        """Trip travel_limit for a move that would leave the allowed travel.

        Only outward moves trip, so a fixture past its limit can still be released.
        """
        to = position + steps
        if (to > self.max_steps and steps > 0) or (to < -self.max_steps and steps < 0):
            self.latched |= TRAVEL_LIMIT
            return TRAVEL_LIMIT
        return 0

    def trip(self, bits):
        self.latched |= bits

    def ack(self):
        self.latched = 0

    def names(self, bits=None):
        bits = self.latched if bits is None else bits
        return [n for i, n in enumerate(ALARM_NAMES) if bits & (1 << i)]
