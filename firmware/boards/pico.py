"""Raspberry Pi Pico (RP2040) board: real pins, PIO step pulses, USB CDC serial.

Thin in this release: pins, clock, serial and the step-pulse program are here, but
the PIO timing has not yet been verified in an emulator or on a bench (tracked as
the real-hardware issue). Pin numbers are the reference build's; see hardware/.
"""

import math
import select
import sys
import time

import machine
import rp2

from stackpress.hx711 import GAIN_PULSES, HX711, signed24
from stackpress.mcp4725 import MCP4725

try:  # for type checkers only: the names of the PIO assembler (not a module on a board)
    from rp2.asm_pio import *  # noqa: F401,F403
except ImportError:
    pass

PINS = {
    "hx_sck": 2,  # HX711 PD_SCK
    "hx_dout": 3,  # HX711 #0 DOUT (load cell 0, on +x)
    "hx_dout1": 4,  # HX711 #1 DOUT (load cell 1, 120 degrees on), same PD_SCK
    "hx_dout2": 5,  # HX711 #2 DOUT (load cell 2, 240 degrees on), same PD_SCK
    "step": 10,  # driver STEP
    "dir": 11,  # driver DIR
    "enable": 12,  # driver EN (active low)
    "ntc": 26,  # frame thermistor: 10 kOhm NTC (B 3950) to GND, 10 kOhm to 3V3 (ADC0)
    "estop": 14,  # e-stop, normally closed to GND, internal pull-up: 1 = pressed or wire cut
    "end_stop": 15,  # end-of-travel switch, normally closed to GND, internal pull-up: 1 = open
    "dac_sda": 6,  # I2C1 SDA: MCP4725 DAC, the analog pressure output for a cycler
    "dac_scl": 7,  # I2C1 SCL
    "fault_line": 8,  # optocoupler LED (through 330 Ohm): lit = ok; dark (a fault, or no firmware) = fault
}
DAC_I2C = 1  # the I2C block GP6/GP7 belong to
DAC_I2C_TIMEOUT_US = 2000  # a bus held low costs a pass this long, not rp2's default 50 ms
LOAD_CELLS = 3  # the reference build: three load cells under the base plate (1 to 4; see hardware/)
HX711_RATE_SPS = 10  # RATE pin tied low on the reference build: 50 nV rms noise
NTC_R25_OHM = 10000
NTC_BETA_K = 3950
NTC_PULLUP_OHM = 10000
PIO_FREQ = 1_000_000  # 1 us per PIO cycle
CDC_PACKET = 64  # bytes of one full-speed USB bulk packet


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def _step_program():
    # TX FIFO: pulses - 1, then y. A pulse is high y + 3 cycles, low y + 4: a period of
    # 2y + 7 cycles (a `jmp y--` loop runs y + 1 times). One word back in the RX FIFO when
    # the move is done: one event per move, none per step. Verified in rp2040-pio-emulator
    # (tests/pio/test_pio_step.py).
    pull(block)
    mov(x, osr)
    pull(block)
    label("pulse")
    set(pins, 1)
    mov(y, osr)
    label("high")
    jmp(y_dec, "high")
    set(pins, 0)
    mov(y, osr)
    label("low")
    jmp(y_dec, "low")
    jmp(x_dec, "pulse")
    push(noblock)


@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW, in_shiftdir=rp2.PIO.SHIFT_LEFT)
def _hx711_program():
    # Side-set: PD_SCK; in_base: DOUT. TX FIFO once: the gain pulses after the 24 data
    # bits, minus 1. Then, on its own for ever: wait for DOUT low (a conversion ready),
    # clock 24 bits in MSB first and 1-3 more pulses (the next conversion's gain), push
    # the 24-bit word. At 1 MHz PD_SCK is high 2 us per bit (datasheet: 0.2-50 us; over
    # 60 us powers the chip down) and low >= 1 us (>= 0.2 us); DOUT is read 1 us after
    # the rising edge (valid 0.1 us after it). Interrupts and the CPU's pace can't touch
    # this timing. Verified in rp2040-pio-emulator (tests/pio/test_pio_hx711.py).
    pull(block).side(0)
    mov(y, osr).side(0)
    label("conversion")
    set(x, 23).side(0)
    wait(0, pin, 0).side(0)
    label("bit")
    nop().side(1)
    in_(pins, 1).side(1)
    jmp(x_dec, "bit").side(0)
    mov(x, y).side(0)
    label("gain")
    nop().side(1)[1]
    jmp(x_dec, "gain").side(0)[1]
    push(block).side(0)
    jmp("conversion").side(0)


def step_delay(rate_hz, pio_freq=PIO_FREQ):
    """y for a step rate: the period 2y + 7 cycles, rounded so it is never faster."""
    return max(0, (pio_freq // rate_hz - 6) // 2)


class StepPulses:
    """Pulses from PIO. The program reports the end of a move in the RX FIFO; while it
    runs, the pulses left are estimated from the elapsed time (for a stop mid-move)."""

    def __init__(self, step_pin):
        self._sm = rp2.StateMachine(0, _step_program, freq=PIO_FREQ, set_base=step_pin)
        # A soft reset leaves a running state machine running (micropython#9316): stop it
        # before anything else, whatever the previous firmware was doing.
        self._sm.active(0)
        self._n = 0
        self._rate = 1
        self._t0 = time.ticks_us()

    def start(self, n, rate_hz):
        y = step_delay(rate_hz)
        self._sm.active(0)
        self._sm.restart()
        while self._sm.rx_fifo():
            self._sm.get()
        self._sm.put(n - 1)
        self._sm.put(y)
        self._sm.active(1)
        self._n = n
        self._rate = PIO_FREQ // (2 * y + 7)
        self._t0 = time.ticks_us()

    def remaining(self):
        if not self._n:
            return 0
        if self._sm.rx_fifo():
            self._sm.get()
            self._n = 0
            return 0
        done = time.ticks_diff(time.ticks_us(), self._t0) * self._rate // 1000000
        return max(1, self._n - done)

    def stop(self):
        left = self.remaining()
        self._sm.active(0)  # also needed on soft reset: PIO outlives the VM (micropython#9316)
        self._n = 0
        return left


class PioHX711(HX711):
    """The HX711 read by a PIO state machine: the firmware's HX711 driver with the
    clocking done in hardware. A conversion waits in the RX FIFO (4 deep: a loop that
    was busy for up to 4 conversion periods still gets every one, in order)."""

    def __init__(self, sm_id, sck, dout, gain=128):
        self._sm = rp2.StateMachine(sm_id, _hx711_program, freq=PIO_FREQ, sideset_base=sck, in_base=dout)
        self._sm.active(0)  # a soft reset leaves it running (micropython#9316)
        self._sm.restart()
        while self._sm.rx_fifo():
            self._sm.get()
        self._sm.put(GAIN_PULSES[gain] - 1)
        self._sm.active(1)
        self.n = 1
        self.full = self.expect = 1
        self.values = [0]
        self._waiting = False
        self._since = 0

    def ready(self):
        return 1 if self._sm.rx_fifo() > 0 else 0

    def read(self):
        self.values[0] = signed24(self._sm.get())
        return 1


def park():
    """Stop the step pulses and disable the driver, with nothing else set up: for the safe
    boot (stackpress/safemode.py). The worm is self-locking: the force stays."""
    rp2.StateMachine(0).active(0)
    machine.Pin(PINS["step"], machine.Pin.OUT, value=0)
    machine.Pin(PINS["enable"], machine.Pin.OUT, value=1)
    machine.Pin(PINS["fault_line"], machine.Pin.OUT, value=0)  # the cycler sees a fault
    _dac().power_down()  # 0 V: no pressure signal the cycler could believe


def _dac():
    i2c = machine.I2C(
        DAC_I2C,
        scl=machine.Pin(PINS["dac_scl"]),
        sda=machine.Pin(PINS["dac_sda"]),
        freq=400_000,
        timeout=DAC_I2C_TIMEOUT_US,
    )
    return MCP4725(i2c)


def reset():
    machine.reset()


def unique_id():
    """The flash chip's 64-bit id: names this fixture in every log."""
    return "%02x" * 8 % tuple(machine.unique_id())


class Board:
    load_cells = LOAD_CELLS
    name = "pico"
    root = "/"
    sample_rate_sps = HX711_RATE_SPS

    def __init__(self):
        sck = machine.Pin(PINS["hx_sck"], machine.Pin.OUT, value=0)
        douts = [machine.Pin(PINS["hx_dout" + ("%d" % i if i else "")], machine.Pin.IN) for i in range(self.load_cells)]
        self.adc = None  # type: HX711 | None
        if self.load_cells == 1:
            self.adc = PioHX711(1, sck, douts[0])
        else:
            # Several chips on one PD_SCK are clocked together from the CPU (the PIO
            # program reads one DOUT), with interrupts off: no pulse stays high for the
            # 60 us that would power a chip down. About 1 ms a conversion.
            self.adc = HX711(sck, douts, irq_off=machine.disable_irq, irq_on=machine.enable_irq)
        self.dir_pin = machine.Pin(PINS["dir"], machine.Pin.OUT, value=0)
        self.enable_pin = machine.Pin(PINS["enable"], machine.Pin.OUT, value=0)
        self.step_pulses = StepPulses(machine.Pin(PINS["step"], machine.Pin.OUT, value=0))
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._ipoll = self._poll.ipoll
        self._stdin_into = sys.stdin.buffer.readinto
        self._stdout_write = sys.stdout.buffer.write
        self._opoll = select.poll()
        self._opoll.register(sys.stdout, select.POLLOUT)
        self._oipoll = self._opoll.ipoll
        self._wdt = None  # type: machine.WDT | None
        self._wdt_timer = None  # type: machine.Timer | None

        self._ntc = machine.ADC(PINS["ntc"])
        self._estop = machine.Pin(PINS["estop"], machine.Pin.IN, machine.Pin.PULL_UP).value
        self._end_stop = machine.Pin(PINS["end_stop"], machine.Pin.IN, machine.Pin.PULL_UP).value
        self._led = machine.Pin("LED", machine.Pin.OUT, value=0).value  # GP25 on a Pico, WL_GPIO0 on a Pico W
        self._fault_line = machine.Pin(PINS["fault_line"], machine.Pin.OUT, value=0).value
        self.dac = _dac()

    def inputs(self):
        """Bit 0: the e-stop circuit is open; bit 1: the end-stop circuit is open."""
        return self._estop() | (self._end_stop() << 1)

    def driver_enable(self, on):
        self.enable_pin.value(0 if on else 1)  # TMC2209 EN is active low

    def led(self, on):
        self._led(on)

    def fault_line(self, ok):
        """The fault line for the cycler: the optocoupler lit (1) while all is well."""
        self._fault_line(ok)

    def unique_id(self):
        return unique_id()

    def temperature_c(self):
        """The frame thermistor, degC (Beta equation), averaged over 8 reads. Allocates."""
        acc = 0
        for _ in range(8):
            acc += self._ntc.read_u16()
        x = acc / (8 * 65535)
        if not 0.01 < x < 0.99:
            return None  # open or shorted thermistor
        r = NTC_PULLUP_OHM * x / (1 - x)
        return 1 / (1 / 298.15 + math.log(r / NTC_R25_OHM) / NTC_BETA_K) - 273.15

    ticks_ms = staticmethod(time.ticks_ms)
    ticks_diff = staticmethod(time.ticks_diff)

    def idle(self):
        # sleep_ms waits in WFE (rp2's sleep_us spins up to 1 ms): the core rests between
        # passes instead of running ~1500 empty ones a second. A conversion waits in the
        # chip for 100 ms and the step pulses run in PIO, so 1 ms costs nothing; the
        # e-stop is still read every pass, at least every ~1.5 ms.
        time.sleep_ms(1)

    def serial_read(self, buf):
        for _ in self._ipoll(0):
            return self._stdin_into(buf)
        return 0

    def serial_write(self, b):
        """Write what USB CDC takes now, never waiting on a host that does not read:
        only when the port polls writable, and one 64-byte USB packet at a time."""
        for _ in self._oipoll(0):
            return self._stdout_write(b[:CDC_PACKET]) or 0
        return 0

    def reset_cause(self):
        c = machine.reset_cause()
        return "watchdog" if c == machine.WDT_RESET else "power_on" if c == machine.PWRON_RESET else "soft"

    def watchdog_start(self, timeout_ms):
        # Once started, rp2's watchdog can't be stopped; it runs on through a soft reset.
        self._wdt = machine.WDT(timeout=min(timeout_ms, 8388))

    def watchdog_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def watchdog_park(self):
        """At the REPL (mpremote flashing) nothing runs the loop: a timer feeds the
        watchdog until the next reset (a soft reset stops timers; main.py takes over)."""
        wdt = self._wdt
        if wdt is not None:
            self._wdt_timer = machine.Timer(-1, period=1000, callback=lambda t: wdt.feed())

    def serial_flush(self):
        time.sleep_ms(20)

    def reset(self):
        self.step_pulses.stop()
        reset()
