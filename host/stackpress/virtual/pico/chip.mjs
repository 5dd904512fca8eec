// An RP2040 as MicroPython needs it, around rp2040js: what the package leaves out or does
// differently from the chip, made right here (each has a test in tests/pico/):
// - flash writes: the bootrom's flash_range_erase/program act on the flash (rp2040js's SSI
//   ignores them), and the filesystem's part of the flash is kept in a file, written at
//   once, so a killed process leaves it as a power cut leaves flash;
// - PIO: state machines run on the emulated clock at their clock divider (rp2040js steps
//   them from a timer of the host's, whatever the divider), and their pins are reported
//   after every PIO cycle, so no edge is lost when the core's time jumps;
// - the watchdog resets the chip (rp2040js only logs), and says why;
// - USB CDC: a read of the OUT endpoint waits for host data (rp2040js answers at once with
//   an empty packet, an interrupt storm that slows MicroPython about 3x), and host input
//   waits in an unbounded queue (rp2040js drops what its 512-byte FIFO cannot hold);
// - the flash's unique id (command 0x4B, which names the fixture in every log) is the one
//   given (rp2040js answers zeros);
// - idle: a core waiting for an interrupt skips to the next timer alarm, never past the
//   end of the slice it was asked to run, and not while a PIO machine runs; a core that
//   spins reading the timer (MicroPython's busy-wait in sleep_us) skips IDLE_SKIP_NS per
//   turn of its loop, so such a wait ends at most that late.

import fs from 'node:fs';
import { RP2040, USBCDC } from 'rp2040js';
import { decodeBlock } from 'uf2';

export const FLASH_BASE = 0x10000000;
const CLK_SYS_HZ = 125_000_000;
const CYCLE_NS = 1e9 / CLK_SYS_HZ;
const BKPT_ERASE = 0xe0;
const BKPT_PROGRAM = 0xe1;
const WATCHDOG_BASE = 0x40058;
const WATCHDOG_LOAD = 0x04;
const TIMER_BASE = 0x40054;
const IO_QSPI_BASE = 0x40018;
const SSI_BASE = 0x18000;
const SSI_DR0 = 0x60;
const QSPI_SS_CTRL = 0x0c; // IO_QSPI GPIO_QSPI_SS_CTRL: OUTOVER in bits 9:8, 2 = drive low
const FLASH_RUID = 0x4b; // then 4 dummy bytes, then the 8-byte id
const IDLE_SKIP_NS = 5_000;
const SPIN_INSTRUCTIONS = 200; // the same timer read again within this many: a busy-wait loop
export const WATCHDOG_TIMER = 1; // REASON bits: the timer ran out; a forced trigger (machine.reset)
export const WATCHDOG_FORCE = 2;

function romCode(a, b) {
  return a.charCodeAt(0) | (b.charCodeAt(0) << 8);
}

export class Chip {
  /**
   * bootrom: the RP2040 bootrom, 16 KB; uf2: the MicroPython image; fsFile/fsOffset: the
   * file holding the filesystem's part of the flash and where that part starts;
   * cutAfterWrites: a power cut during that flash erase or program (0: none).
   */
  constructor({ bootrom, uf2, fsFile, fsOffset, fsBytes, uniqueId = null, cutAfterWrites = 0, log = () => {} }) {
    const mcu = new RP2040();
    this.mcu = mcu;
    // rp2040js logs to stdout, which is the serial line here: its errors go to stderr, the
    // rest (every SEV, every USB transfer) nowhere
    const err = (name, msg) => log(name + ': ' + msg);
    const none = () => {};
    mcu.logger = { debug: none, info: none, warn: none, error: err };
    this.clock = mcu.clock;
    this.log = log;
    mcu.loadBootrom(new Uint32Array(bootrom.buffer, bootrom.byteOffset, bootrom.byteLength / 4));
    if (uf2) this._loadUF2(uf2);
    this.fsFd = fs.openSync(fsFile, 'r+');
    this.fsOffset = fsOffset;
    this.fsBytes = fsBytes;
    fs.readSync(this.fsFd, mcu.flash, fsOffset, Math.min(fsBytes, fs.fstatSync(this.fsFd).size), 0);
    this.cutAfterWrites = cutAfterWrites;
    this.flashWrites = 0;
    this._hookFlash();
    this._clockPio();
    this._watchSpins();
    if (uniqueId) this._flashId(uniqueId);
    this.watchdog = mcu.peripherals[WATCHDOG_BASE];
    this.onReset = () => {};
    this.watchdog.onWatchdogTrigger = () => this.onReset(this.watchdog.reason);
    this._watchFeeds();
    this.hostInput = [];
    this.hostInputBytes = 0;
    this.onSerialOut = () => {};
    this._setupUSB();
    mcu.core.PC = FLASH_BASE; // boot2 at the start of flash, as the bootrom would jump there
  }

  /** The chip starts after a watchdog reset: MicroPython reads the reason as WDT_RESET. */
  set resetReason(reason) {
    this.watchdog.reason = reason;
  }

  _loadUF2(uf2) {
    for (let at = 0; at + 512 <= uf2.length; at += 512) {
      const block = decodeBlock(uf2.subarray(at, at + 512));
      this.mcu.flash.set(block.payload, block.flashAddress - FLASH_BASE);
    }
  }

  // --- flash writes ---
  _hookFlash() {
    const rom = new Uint16Array(this.mcu.bootrom.buffer);
    const table = rom[0x14 >> 1];
    const patch = {};
    patch[romCode('R', 'E')] = BKPT_ERASE;
    patch[romCode('R', 'P')] = BKPT_PROGRAM;
    let found = 0;
    for (let i = table >> 1; rom[i]; i += 2) {
      if (patch[rom[i]] !== undefined) {
        rom[(rom[i + 1] & ~1) >> 1] = 0xbe00 | patch[rom[i]];
        found++;
      }
    }
    if (found !== 2) throw new Error('bootrom: flash_range_erase/program not found in its function table');
    this.mcu.onBreak = (code) => this._onBreak(code);
  }

  _onBreak(code) {
    const core = this.mcu.core;
    const r = core.registers;
    if (code === BKPT_ERASE) {
      this._flashWrite(r[0] >>> 0, new Uint8Array(r[1] >>> 0).fill(0xff), true);
    } else if (code === BKPT_PROGRAM) {
      const n = r[2] >>> 0;
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = this.mcu.readUint8((r[1] + i) >>> 0);
      this._flashWrite(r[0] >>> 0, data, false);
    } else {
      throw new Error('breakpoint ' + code + ' at 0x' + (core.PC >>> 0).toString(16));
    }
    core.PC = r[14] & ~1; // return to the caller, as the ROM function would
  }

  _flashWrite(offset, data, erase) {
    const flash = this.mcu.flash;
    let n = data.length;
    this.flashWrites++;
    const cut = this.cutAfterWrites && this.flashWrites === this.cutAfterWrites;
    if (cut) n = n >> 1; // the power goes half way through
    for (let i = 0; i < n; i++) {
      // NOR flash: an erase sets bits, a program only clears them
      flash[offset + i] = erase ? 0xff : flash[offset + i] & data[i];
    }
    const lo = Math.max(offset, this.fsOffset);
    const hi = Math.min(offset + n, this.fsOffset + this.fsBytes);
    if (hi > lo) fs.writeSync(this.fsFd, flash, lo, hi - lo, lo - this.fsOffset);
    if (cut) {
      this.log('power cut during flash write ' + this.flashWrites);
      process.kill(process.pid, 'SIGKILL');
    }
  }

  // --- PIO on the emulated clock ---
  _clockPio() {
    this.pioMachines = [];
    for (const pio of this.mcu.pio) {
      pio.run = () => {}; // stepped from run(), on the emulated clock
      for (const sm of pio.machines) {
        sm._accNs = 0;
        this.pioMachines.push({ pio, sm });
      }
    }
  }

  _pioRunning() {
    return !this.mcu.pio[0].stopped || !this.mcu.pio[1].stopped;
  }

  _stepPio(dtNs) {
    for (const pio of this.mcu.pio) {
      if (pio.stopped) continue;
      const due = [];
      for (const sm of pio.machines) {
        if (!sm.enabled) continue;
        sm._periodNs = ((sm.clockDivInt || 65536) + sm.clockDivFrac / 256) * CYCLE_NS;
        sm._accNs += dtNs;
        due.push(sm);
      }
      // One PIO cycle at a time, the pins reported after each: a pulse that rises and falls
      // within dtNs (a skipped busy-wait is 5 us) is still two edges to whoever watches the
      // pin, as an HX711 counts PD_SCK's rises.
      let stepped = true;
      while (stepped) {
        stepped = false;
        for (const sm of due) {
          if (sm._accNs >= sm._periodNs) {
            sm._accNs -= sm._periodNs;
            sm.step();
            stepped = true;
          }
        }
        if (stepped) pio.checkChangedPins();
      }
    }
  }

  // --- the watchdog, as the sim sees it ---
  _watchFeeds() {
    const wd = this.watchdog;
    const write = wd.writeUint32.bind(wd);
    this.watchdogFed = false; // LOAD written since the last look (taken by watchdogState)
    this.watchdogLoad = 0;
    wd.writeUint32 = (offset, value) => {
      if (offset === WATCHDOG_LOAD) {
        this.watchdogFed = true;
        this.watchdogLoad = value & 0xffffff;
      }
      write(offset, value);
    };
  }

  /** [fed since the last call, timeout in ms or 0 when off]: the RP2040's watchdog counts
   * down twice per microsecond tick (erratum RP2040-E1; the SDK loads twice the time). */
  watchdogState() {
    const fed = this.watchdogFed;
    this.watchdogFed = false;
    return [fed, this.watchdog.enable ? Math.round(this.watchdogLoad / 2000) : 0];
  }

  // --- the flash's unique id ---
  /** uniqueId: 8 bytes, answered to 0x4B while the flash's chip select is driven low. */
  _flashId(uniqueId) {
    const qspi = this.mcu.peripherals[IO_QSPI_BASE];
    const ssi = this.mcu.peripherals[SSI_BASE];
    let cmd = -1;
    let index = 0;
    const rx = [];
    const qspiWrite = qspi.writeUint32.bind(qspi);
    qspi.writeUint32 = (offset, value) => {
      if (offset === QSPI_SS_CTRL && ((value >> 8) & 3) === 2) {
        cmd = -1; // a new command begins
        index = 0;
        rx.length = 0;
      }
      qspiWrite(offset, value);
    };
    const ssiWrite = ssi.writeUint32.bind(ssi);
    const ssiRead = ssi.readUint32.bind(ssi);
    ssi.writeUint32 = (offset, value) => {
      if (offset === SSI_DR0) {
        if (index === 0) cmd = value & 0xff;
        rx.push(cmd === FLASH_RUID && index >= 5 && index < 13 ? uniqueId[index - 5] : 0);
        index++;
      }
      ssiWrite(offset, value);
    };
    ssi.readUint32 = (offset) => (offset === SSI_DR0 && rx.length ? rx.shift() : ssiRead(offset));
  }

  // --- busy-waits on the timer ---
  _watchSpins() {
    const timer = this.mcu.peripherals[TIMER_BASE];
    const read = timer.readUint32.bind(timer);
    this.instructions = 0;
    this.skipNs = 0;
    this.skippedNs = 0; // emulated time skipped in busy-waits, and idle with the core waiting
    this.idleNs = 0;
    const lastRead = new Map(); // PC of a timer read -> the instruction count then
    timer.readUint32 = (offset) => {
      const pc = this.mcu.core.PC;
      const at = lastRead.get(pc);
      if (at !== undefined && this.instructions - at < SPIN_INSTRUCTIONS) this.skipNs = IDLE_SKIP_NS;
      if (lastRead.size > 64) lastRead.clear();
      lastRead.set(pc, this.instructions);
      return read(offset);
    };
  }

  // --- USB CDC ---
  _setupUSB() {
    const cdc = new USBCDC(this.mcu.usbCtrl);
    this.cdc = cdc;
    this.pendingRead = 0;
    cdc.onDeviceConnected = () => this.log('USB CDC connected');
    cdc.onSerialData = (buf) => this.onSerialOut(buf);
    const usb = this.mcu.usbCtrl;
    usb.onEndpointRead = (endpoint, size) => {
      if (endpoint !== cdc.outEndpoint) return;
      this.pendingRead = size;
      this._serveRead();
    };
  }

  /** Bytes from the host, for the firmware's USB serial input. */
  hostWrite(bytes) {
    this.hostInput.push(bytes);
    this.hostInputBytes += bytes.length;
    this._serveRead();
  }

  _serveRead() {
    if (!this.pendingRead || !this.hostInputBytes) return;
    const n = Math.min(this.pendingRead, this.hostInputBytes);
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const head = this.hostInput[0];
      const take = Math.min(head.length, n - got);
      out.set(head.subarray(0, take), got);
      got += take;
      if (take === head.length) this.hostInput.shift();
      else this.hostInput[0] = head.subarray(take);
    }
    this.hostInputBytes -= n;
    this.pendingRead = 0;
    this.mcu.usbCtrl.endpointReadDone(this.cdc.outEndpoint, out);
  }

  // --- running ---
  /** Run the chip until the emulated clock reaches `untilNs`. */
  run(untilNs) {
    const { mcu, clock } = this;
    const core = mcu.core;
    while (clock.nanos < untilNs) {
      if (core.waiting) {
        // To the next alarm (it may raise an interrupt that wakes the core), never past it.
        let dt = untilNs - clock.nanos;
        const next = clock.nextAlarm;
        if (next && next.nanos - clock.nanos < dt) dt = Math.max(0, next.nanos - clock.nanos);
        if (this._pioRunning() && dt > 1000) dt = 1000; // a PIO machine may wake the core
        clock.tick(dt);
        this.idleNs += dt;
        if (this._pioRunning()) this._stepPio(dt);
      } else {
        let dt = core.executeInstruction() * CYCLE_NS;
        this.instructions++;
        if (this.skipNs) {
          const next = clock.nextAlarm;
          let skip = Math.min(this.skipNs, untilNs - clock.nanos - dt);
          if (next) skip = Math.min(skip, next.nanos - clock.nanos - dt);
          if (skip > 0) {
            dt += skip;
            this.skippedNs += skip;
          }
          this.skipNs = 0;
        }
        clock.tick(dt);
        if (this._pioRunning()) this._stepPio(dt);
      }
    }
  }
}
