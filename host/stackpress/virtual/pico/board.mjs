// The emulated Pico board of the virtual fixture: an RP2040 (chip.mjs) running the
// MicroPython image the user gave, with the stackpress firmware on its flash, wired to the
// fixture model in `stackpress sim` as the unix-port board is (firmware/boards/virtual.py
// defines the lockstep frames; this board announces and speaks the same ones):
// - every conversion period of emulated time it reports the STEP pulses the PIO program
//   sent (signed by DIR), the driver's EN and the LED, and takes the next conversion of
//   each load cell, the thermistor and the switch inputs;
// - each load cell's HX711 is modelled at its pins: DOUT low when a conversion waits, a
//   bit out on each PD_SCK rise, 25 to 27 pulses a read, and PD_SCK high over 60 us powers
//   the chip down (it then gives nothing until it has settled again);
// - the NTC divider on ADC0 and the normally-closed switches on their inputs;
// - the analog output's MCP4725 DAC on I2C1 (its fast-mode write: the code goes to the
//   model in every request) and the fault line's GPIO;
// - USB CDC is this process's stdin and stdout; logs go to stderr;
// - a reset of the chip (watchdog, machine.reset) ends this process with an exit code
//   (the sim starts the chip again: a reset resets the chip, not the world).
// STACKPRESS_PICO_CLOCK_START_S starts the chip's timer there, not at 0 (ticks_ms wraps
// at 2**30 ms, 12.4 days: a test starts it just before). Pins and the NTC's values come from firmware/boards/pico.py, through the sim
// (STACKPRESS_PICO, JSON).

import fs from 'node:fs';
import net from 'node:net';
import { Chip, WATCHDOG_FORCE, WATCHDOG_TIMER } from './chip.mjs';

const REQUEST = '<IiIIi';
const REPLY = '<IIiIiiii';
const WATCHDOG_EXIT = 75; // the chip reset itself through its watchdog: timed out
const FORCED_RESET_EXIT = 76; // forced (machine.reset); pico/__init__.py has both
const HX711_POWER_DOWN_NS = 60_000;
const HX711_SETTLE_CONVERSIONS = 4; // datasheet: 400 ms settling at 10 SPS after power-up
const SLICE_NS = 5_000_000; // host input is taken between slices of this much emulated time

function log(msg) {
  process.stderr.write('pico: ' + msg + '\n');
}

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error('missing ' + name);
  return process.argv[i + 1];
}

const cfg = JSON.parse(process.env.STACKPRESS_PICO);
const pins = cfg.pins;

class HX711Pins {
  constructor(chip, dout) {
    this.chip = chip;
    this.dout = chip.mcu.gpio[dout];
    this.word = 0;
    this.pulses = 25; // nothing to shift out
    this.pending = null;
    this.asleep = 0; // conversions still to settle after a power-down
    this.dout.setInputValue(true);
  }

  convert(counts) {
    if (this.asleep > 0) {
      this.asleep--;
      return;
    }
    if (this.pulses > 0 && this.pulses < 25) {
      this.pending = counts; // a read under way keeps its word
      return;
    }
    this.word = counts & 0xffffff;
    this.pulses = 0;
    this.dout.setInputValue(false);
  }

  rise() {
    if (this.pulses >= 25) {
      this.pulses++;
      return;
    }
    this.pulses++;
    if (this.pulses <= 24) this.dout.setInputValue(((this.word >> (24 - this.pulses)) & 1) === 1);
    else this.dout.setInputValue(true); // the 25th pulse: DOUT high until the next conversion
    if (this.pulses === 25 && this.pending !== null) {
      const c = this.pending;
      this.pending = null;
      this.convert(c);
    }
  }

  powerDown() {
    this.pulses = 25;
    this.pending = null;
    this.asleep = HX711_SETTLE_CONVERSIONS;
    this.dout.setInputValue(true);
  }
}

function ntcFraction(tempC) {
  const { r25_ohm, beta_k, pullup_ohm } = cfg.ntc;
  const r = r25_ohm * Math.exp(beta_k * (1 / (tempC + 273.15) - 1 / 298.15));
  return r / (r + pullup_ohm);
}

async function main() {
  const chip = new Chip({
    bootrom: fs.readFileSync(arg('--bootrom')),
    uf2: fs.readFileSync(arg('--uf2')),
    fsFile: arg('--fs'),
    fsOffset: cfg.fs_offset,
    fsBytes: cfg.fs_bytes,
    uniqueId: process.env.STACKPRESS_CHIP_ID ? Buffer.from(process.env.STACKPRESS_CHIP_ID, 'hex') : null,
    cutAfterWrites: Number(process.env.STACKPRESS_CUT_AFTER_WRITES || 0),
    log,
  });
  if (process.env.STACKPRESS_RESET_CAUSE === 'watchdog') chip.resetReason = WATCHDOG_TIMER;
  const { mcu, clock } = chip;
  const startS = Number(process.env.STACKPRESS_PICO_CLOCK_START_S || 0);
  if (startS > 0) clock.tick(startS * 1e9); // nothing is scheduled yet: the timer reads from here
  chip.onReset = (reason) => {
    log('chip reset by its watchdog (' + (reason & WATCHDOG_FORCE ? 'forced' : 'timed out') + ')');
    process.exit(reason & WATCHDOG_FORCE ? FORCED_RESET_EXIT : WATCHDOG_EXIT);
  };
  chip.onSerialOut = (buf) => process.stdout.write(buf);
  process.stdin.on('data', (d) => chip.hostWrite(new Uint8Array(d)));
  process.stdin.on('end', () => process.exit(0));

  // The load cells' HX711s on one PD_SCK
  const cells = [];
  for (let i = 0; i < cfg.load_cells; i++) cells.push(new HX711Pins(chip, pins['hx_dout' + (i ? i : '')]));
  let sckRoseNs = 0;
  mcu.gpio[pins.hx_sck].addListener((state, old) => {
    if (state === 1 && old !== 1) {
      sckRoseNs = clock.nanos;
      for (const c of cells) c.rise();
    } else if (state === 0 && old === 1 && clock.nanos - sckRoseNs > HX711_POWER_DOWN_NS) {
      log('HX711 powered down: PD_SCK high ' + Math.round((clock.nanos - sckRoseNs) / 1000) + ' us');
      for (const c of cells) c.powerDown();
    }
  });
  // The MCP4725 on I2C1 at 0x60: two bytes, power-down bits and the code's top 4, then its low 8
  const DAC_ADDRESS = 0x60;
  let dacCode = -1; // never written: the chip's power-on value (0 V)
  let dacBytes = [];
  const i2c = mcu.i2c[1];
  i2c.onStart = () => {
    dacBytes = [];
    i2c.completeStart();
  };
  i2c.onConnect = (address) => i2c.completeConnect(address === DAC_ADDRESS);
  i2c.onWriteByte = (value) => {
    dacBytes.push(value);
    i2c.completeWrite(true);
  };
  i2c.onStop = () => {
    if (dacBytes.length === 2) dacCode = dacBytes[0] & 0x30 ? 0 : ((dacBytes[0] & 0x0f) << 8) | dacBytes[1];
    i2c.completeStop();
  };
  // Step pulses, signed by DIR (1: more compression)
  let steps = 0;
  mcu.gpio[pins.step].addListener((state, old) => {
    if (state === 1 && old !== 1) steps += mcu.gpio[pins.dir].outputValue ? 1 : -1;
  });
  const switches = (inputs) => {
    mcu.gpio[pins.estop].setInputValue((inputs & 1) !== 0);
    mcu.gpio[pins.end_stop].setInputValue((inputs & 2) !== 0);
  };
  switches(0);

  // The lockstep link to the model
  const [host, port] = process.env.STACKPRESS_MODEL.split(':');
  const sock = net.connect(Number(port), host);
  sock.setNoDelay(true);
  sock.write('lockstep ' + REQUEST + ' ' + REPLY + '\n');
  let rx = Buffer.alloc(0);
  let waiter = null;
  sock.on('data', (d) => {
    rx = Buffer.concat([rx, d]);
    if (waiter && rx.length >= 32) {
      const w = waiter;
      waiter = null;
      w();
    }
  });
  sock.on('close', () => process.exit(3)); // a board without a world stops
  let seq = 0;
  const exchange = async (nSteps, flags) => {
    // The chip resets itself when its watchdog runs out; the sim, told of it too, resets a
    // board process that stops (hung: its emulator is not running either).
    const [fed, wdtMs] = chip.watchdogState();
    const req = Buffer.alloc(20);
    req.writeUInt32LE(seq, 0);
    req.writeInt32LE(nSteps, 4);
    req.writeUInt32LE(flags | (fed ? 1 : 0), 8);
    req.writeUInt32LE(wdtMs, 12);
    req.writeInt32LE(dacCode, 16);
    seq = (seq + 1) & 0x3fffffff;
    sock.write(req);
    if (rx.length < 32) await new Promise((resolve) => (waiter = resolve));
    const rep = rx.subarray(0, 32);
    rx = rx.subarray(32);
    return rep;
  };
  const hello = await exchange(0, 0);
  const periodNs = hello.readInt32LE(8) * 1000;
  log('the model converts every ' + periodNs / 1e6 + ' ms');

  // STACKPRESS_PICO_STATS=1: every 100 periods, the speed and where emulated time went
  let last = { ns: clock.nanos, wall: performance.now(), instructions: 0 };
  const stats =
    process.env.STACKPRESS_PICO_STATS &&
    (() => {
      const now = { ns: clock.nanos, wall: performance.now(), instructions: chip.instructions };
      const ns = now.ns - last.ns;
      log(
        `${(ns / 1e6 / (now.wall - last.wall)).toFixed(2)}x real time; ` +
          `${(((now.instructions - last.instructions) / ns) * 1e3).toFixed(1)} M instructions per emulated s; ` +
          `core waiting ${((100 * chip.idleNs) / ns).toFixed(1)} %, in busy-waits skipped ${((100 * chip.skippedNs) / ns).toFixed(1)} %`,
      );
      last = now;
      chip.idleNs = chip.skippedNs = 0;
    });
  let next = clock.nanos + periodNs;
  for (;;) {
    while (clock.nanos < next) {
      chip.run(Math.min(next, clock.nanos + SLICE_NS));
      await new Promise((resolve) => setImmediate(resolve)); // host input, in emulated order
    }
    const outputs =
      (mcu.gpio[pins.enable].outputValue ? 2 : 0) |
      (mcu.gpio[25].outputValue ? 4 : 0) |
      (mcu.gpio[pins.fault_line].outputValue ? 8 : 0);
    const n = steps;
    steps = 0;
    const rep = await exchange(n, outputs);
    const flags = rep.readUInt32LE(12);
    switches((flags >> 1) & 3);
    const ntc = ntcFraction(rep.readInt32LE(16) / 1000);
    mcu.adc.channelValues[0] = Math.round(ntc * 4095);
    if (flags & 1) {
      for (let i = 0; i < cells.length; i++) {
        if (flags & (8 << i)) cells[i].convert(rep.readInt32LE(i === 0 ? 8 : 16 + 4 * i));
      }
    }
    next += periodNs;
    if (stats && seq % 100 === 0) stats();
  }
}

main().catch((e) => {
  log(e.stack || String(e));
  process.exit(2);
});
