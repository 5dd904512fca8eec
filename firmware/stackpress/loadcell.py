"""Load-cell calibration: raw ADC counts -> net counts -> force.

Control runs in net counts (raw - tare) so that the hot path stays in small ints;
newtons and megapascals exist only at the edges (commands, telemetry), where the
float conversion is allowed to allocate.
"""

# 10 kN, 2 mV/V cell at 5 V excitation into an HX711 at gain 128 (±19.53 mV full
# scale over ±2**23 counts): 1 uV/N -> 429.5 counts/N. Used until calibrated.
NOMINAL_SPAN_COUNTS_PER_N = 429.5


class LoadCell:
    def __init__(self, tare_counts=0, span_counts_per_n=NOMINAL_SPAN_COUNTS_PER_N):
        self.tare_counts = int(tare_counts)
        self.span_counts_per_n = float(span_counts_per_n)

    def net(self, raw):
        return raw - self.tare_counts

    def force_n(self, net):
        return net / self.span_counts_per_n

    def counts(self, force_n):
        return int(force_n * self.span_counts_per_n + 0.5)

    def as_dict(self):
        return {"tare_counts": self.tare_counts, "span_counts_per_n": self.span_counts_per_n}
