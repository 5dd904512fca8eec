"""The virtual board: a Pico's pins, clock and USB serial, wired to the fixture model.

Runs on the MicroPython unix port inside `stackpress sim`. The physical world lives
in the sim process, not here, so a reset of this board leaves pressure, position and
the cell as they were. Each `idle()` is one lockstep exchange with the model: this
board reports the step pulses emitted during one ADC conversion period, the model
advances virtual time by that period and answers with the next conversion, which
this module's pin-level HX711 then shifts out to the unmodified driver.

Link frames (little-endian; 20 bytes board -> model, 32 bytes back; REQUEST and REPLY
below are their one definition: the board announces them in its first line to the model,
"lockstep REQUEST REPLY\n", and the sim packs and unpacks with what it was told):
  board -> model: u32 seq, i32 steps (signed microsteps), u32 flags (bit 0: the
                  watchdog was fed since the last frame; bit 1 the driver disabled; bit 2
                  the LED on; bit 3 the fault line energised, "ok"), u32 watchdog timeout
                  in ms (0: not armed), i32 the analog output's DAC code (-1: none
                  written since the board started). The sim keeps the watchdog: a board
                  that stops feeding it, or stops talking (hung), is reset as a Pico's
                  would be.
  model -> board: u32 seq, u32 ticks_ms (wraps at 2**30), i32 counts of load cell 0,
                  u32 flags, i32 frame thermistor reading in milli-degC, i32 counts of
                  load cells 1, 2, 3
  flags from model: bit 0 a conversion is ready; bits 1-2 the switch inputs; bits 3-6
  which load cells have one (a disconnected one has none); bit 7 the machine has a core
  to spare, so spin on the next reply rather than sleep; seq 0 (hello) puts the
  conversion period in microseconds in the counts field. The number of load cells
  comes from the sim in STACKPRESS_LOAD_CELLS (all share one PD_SCK).
STACKPRESS_BOARD_STATS=N: every N exchanges, a line on stderr with the microseconds per
sample this board worked (the firmware's pass: pins, control, records) and waited for the
model's reply (the link and the model): bench/sample_profile.py reads it.
"""

import os
import select
import struct
import sys

TICKS_PERIOD = 1 << 30  # as on the RP2040: ticks_ms wraps after ~12.4 days
_TICKS_MASK = TICKS_PERIOD - 1
_TICKS_HALF = TICKS_PERIOD >> 1
READY = 1
REQUEST = "<IiIIi"  # struct formats of the link frames (see above)
REPLY = "<IIiIiiii"
SPIN = 400  # non-blocking reads of the model's reply before a blocking wait (~0.5 ms)
SPIN_OK = 128  # reply flag: the sim sees CPU to spare (spinning on a busy machine takes it from the model)


def _env(name):
    """An environment variable the sim sets. The chip models here also run on a Pico (the
    firmware's tests run there too: tests/firmware/chiptest.py), whose os has no getenv."""
    getenv = getattr(os, "getenv", None)
    return getenv(name) if getenv else None


def ticks_diff(a, b):
    # The unix port's time.ticks_diff wraps at 2**62; the Pico's at 2**30.
    return ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


class HX711Chip:
    """Pin-level HX711: DOUT low when a conversion waits; bits out on PD_SCK rises."""

    def __init__(self):
        self.word = 0
        self.bit = 0
        self.dout = 1
        self.pending = False
        self.extra_pulses = 0

    def load(self, counts):
        # A new conversion overwrites one that was never read, as on the chip.
        self.word = counts & 0xFFFFFF
        self.bit = 0
        self.pending = True
        self.dout = 0

    def rise(self):
        if self.pending and self.bit < 24:
            self.dout = (self.word >> (23 - self.bit)) & 1
            self.bit += 1
            return
        self.pending = False
        self.dout = 1
        self.extra_pulses += 1


class SckPin:
    """PD_SCK, wired to every chip (one or several HX711s on one clock)."""

    def __init__(self, chips):
        self._chips = chips if isinstance(chips, list) else [chips]
        self._level = 0

    def value(self, v=None):
        if v is None:
            return self._level
        if v and not self._level:
            for c in self._chips:
                c.rise()
        self._level = 1 if v else 0


class DoutPin:
    def __init__(self, chip):
        self._chip = chip

    def value(self, v=None):
        return self._chip.dout


class OutPin:
    def __init__(self):
        self.level = 0

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0


class StepPulses:
    """Emits step pulses over virtual time at the commanded rate, like PIO would."""

    def __init__(self, dir_pin):
        self._dir = dir_pin
        self._left = 0
        self._rate = 0
        self._sign = 1
        self._acc = 0

    def start(self, n, rate_hz):
        self._sign = 1 if self._dir.level else -1
        self._left = n
        self._rate = rate_hz
        self._acc = 0

    def remaining(self):
        return self._left

    def stop(self):
        left = self._left
        self._left = 0
        return left

    def advance(self, dt_us):
        left = self._left
        if not left:
            return 0
        acc = self._acc + self._rate * dt_us
        n = acc // 1000000
        if n >= left:
            n = left
            acc = 0
        else:
            acc -= n * 1000000
        self._acc = acc
        self._left = left - n
        return self._sign * n


class DAC:
    """The analog output's 12-bit DAC (an MCP4725 on the Pico): the code goes to the model
    in every request, where the DAC's errors and the cycler's input are modelled."""

    bits = 12

    def __init__(self):
        self.code = -1

    def write(self, code):
        self.code = code
        return True


def wire(board, load_cells=1):
    """Give `board` the pin-level HX711s and the step-pulse model (test doubles share it)."""
    board.chips = [HX711Chip() for _ in range(load_cells)]
    board.chip = board.chips[0]
    board.hx_sck = SckPin(board.chips)
    board.hx_dout = [DoutPin(c) for c in board.chips] if load_cells > 1 else DoutPin(board.chip)
    board.dir_pin = OutPin()
    board.step_pulses = StepPulses(board.dir_pin)
    board.irq_off = None
    board.irq_on = None
    board.dac = DAC()


def _u32(b, i):
    return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)


def _i32(b, i):
    v = _u32(b, i)
    return v - 0x100000000 if v & 0x80000000 else v


def park():
    """Nothing to stop: the model moves the motor only on this board's lockstep requests,
    and a board in safe mode (stackpress/safemode.py) sends none."""


def reset():
    # machine.reset() on a Pico: the chip restarts and nothing after it runs. Here the
    # board process ends (the sim boots it again, as a Pico comes back); sys.exit alone
    # would leave it at the unix port's REPL (-i), hung until the watchdog.
    os.system("kill -TERM $PPID")
    sys.exit(0)


def unique_id():
    """The virtual flash chip's id (the sim derives it from the image file's path)."""
    return _env("STACKPRESS_CHIP_ID") or "0000000000000000"


class Board:
    load_cells = int(_env("STACKPRESS_LOAD_CELLS") or 1)
    name = "virtual"
    root = "/"

    def __init__(self):
        import socket  # here: the unix port's, not a Pico's, where the chip models above also run

        host, port = _env("STACKPRESS_MODEL").split(":")
        s = socket.socket()
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        self._sock = s
        s.write(("lockstep %s %s\n" % (REQUEST, REPLY)).encode())
        self._req = bytearray(struct.calcsize(REQUEST))
        self._rep = bytearray(struct.calcsize(REPLY))
        self._temp_mc = 25000
        self._seq = 0
        self._wdt_ms = 0
        self._fed = 0
        self._outputs = 0  # request flags: bit 1 driver disabled, bit 2 LED on, bit 3 fault line ok
        self._inputs = 0
        self._spins = 0
        wire(self, self.load_cells)
        self._readinto = s.readinto
        every = int(_env("STACKPRESS_BOARD_STATS") or 0)
        if every:  # a module of its own: no heap for it unless asked
            from boards.virtual_stats import timed

            self._exchange = timed(self._exchange, every)
        self.period_us = self._exchange(0)  # hello: the model tells the ADC's period
        self.sample_rate_sps = 1000000 // self.period_us
        # Lockstep costs a wake-up per sample when the two sides sleep between messages;
        # spinning briefly on the reply (it comes within tens of us at full speed) avoids
        # it, and the blocking poll after the spin keeps a paced fixture idle.
        s.setblocking(False)
        self._spoll = select.poll()
        self._spoll.register(s, select.POLLIN)
        self._sipoll = self._spoll.ipoll
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._ipoll = self._poll.ipoll
        self._stdin_into = sys.stdin.buffer.readinto
        self._stdout_write = sys.stdout.buffer.write

    def _exchange(self, steps):
        req = self._req
        struct.pack_into(REQUEST, req, 0, self._seq, steps, self._fed | self._outputs, self._wdt_ms, self.dac.code)
        self._fed = 0
        self._seq = (self._seq + 1) & 0x3FFFFFFF
        self._sock.write(req)
        rep = self._rep
        n = self._readinto(rep)
        spins = self._spins
        while n is None:
            if spins:
                spins -= 1
            else:
                for _ in self._sipoll(-1):
                    break
            n = self._readinto(rep)
        if n != len(rep):
            sys.exit(3)  # the fixture went away: a board without a world stops
        self._temp_mc = _i32(rep, 16)
        self._ticks_now = _u32(rep, 4) & _TICKS_MASK
        counts = _i32(rep, 8)
        flags = _u32(rep, 12)
        self._inputs = (flags >> 1) & 3
        self._spins = SPIN if flags & SPIN_OK else 0
        if flags & READY:
            chips = self.chips
            for i in range(len(chips)):
                if flags & (8 << i):
                    chips[i].load(counts if i == 0 else _i32(rep, 16 + 4 * i))
        return counts

    # --- the board interface the app uses ---
    def ticks_ms(self):
        return self._ticks_now

    ticks_diff = staticmethod(ticks_diff)

    def temperature_c(self):
        """The frame thermistor, degC (None on a board without one). Allocates a float."""
        return self._temp_mc / 1000

    def inputs(self):
        """Bit 0: the e-stop circuit is open; bit 1: the end-stop circuit is open (the model's)."""
        return self._inputs

    def driver_enable(self, on):
        self._outputs = (self._outputs & ~2) | (0 if on else 2)

    def led(self, on):
        self._outputs = (self._outputs & ~4) | (4 if on else 0)

    def fault_line(self, ok):
        """The fault line for the cycler: energised (1) while all is well."""
        self._outputs = (self._outputs & ~8) | (8 if ok else 0)

    def idle(self):
        """Wait for the next conversion: one period of virtual time."""
        self._exchange(self.step_pulses.advance(self.period_us))

    def serial_read(self, buf):
        for _ in self._ipoll(0):
            return self._stdin_into(buf)
        return 0

    def serial_write(self, b):
        # The sim drains this pipe at once and does the buffering (and dropping) of
        # USB CDC, so this never waits for the host.
        return self._stdout_write(b)

    def unique_id(self):
        return unique_id()

    def scenario(self):
        """What the model simulates ("standard, seed 0"): in every log of a virtual fixture."""
        return _env("STACKPRESS_SCENARIO")

    def reset_cause(self):
        """'power_on', 'watchdog' or 'soft', as the sim says it started this board."""
        return _env("STACKPRESS_RESET_CAUSE") or "power_on"

    def watchdog_start(self, timeout_ms):
        self._wdt_ms = timeout_ms
        self._fed = 1

    def watchdog_feed(self):
        self._fed = 1

    def watchdog_park(self):
        # At the REPL (mpremote) a timer feeds the watchdog on the Pico; here the sim is
        # told it is no longer watched.
        self._wdt_ms = 0
        self.idle()

    def serial_flush(self):
        pass

    def reset(self):
        reset()
