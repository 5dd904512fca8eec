// A stand-in for the RP2040 bootrom in chip tests: only the function table the flash hooks
// look for (flash_range_erase at 0x200, flash_range_program at 0x202), and a chip on it
// whose flash runs `program` (Thumb halfwords) from its start.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chip } from '../../host/stackpress/virtual/pico/chip.mjs';

export function fakeChip(program, fsBytes = 4096) {
  const rom = new Uint8Array(16384);
  const view = new DataView(rom.buffer);
  view.setUint16(0x14, 0x100, true);
  [
    ['RE', 0x201],
    ['RP', 0x203],
  ].forEach(([code, at], i) => {
    view.setUint16(0x100 + 4 * i, code.charCodeAt(0) | (code.charCodeAt(1) << 8), true);
    view.setUint16(0x102 + 4 * i, at, true);
  });
  const fsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chip-')), 'fs.img');
  fs.writeFileSync(fsFile, new Uint8Array(fsBytes)); // all zeros: an erase shows
  const chip = new Chip({ bootrom: rom, uf2: null, fsFile, fsOffset: 0xa0000, fsBytes });
  const code = new Uint8Array(new Uint16Array(program).buffer);
  chip.mcu.flash.set(code, 0);
  return { chip, fsFile };
}

// A program that spins reading the timer, as MicroPython's busy-wait in sleep_us does.
export const SPIN_ON_TIMER = [
  0x4901, // ldr r1, [pc, #4]  -> TIMERAWL
  0x6808, // loop: ldr r0, [r1]
  0xe7fd, // b loop
  0xbf00, // nop
  0x4028,
  0x4005, // 0x40054028: TIMERAWL
];

/** PIO0's SM0 toggling GPIO `pin` every cycle at 1 MHz (a rise every 2 us), started; returns
 * a function that tells the rises seen on the pin so far. */
export function togglePin(chip, pin) {
  const { mcu } = chip;
  const PIO0 = 0x50200000;
  mcu.writeUint32(0x40014000 + 8 * pin + 4, 6); // the pin to PIO0
  mcu.writeUint32(PIO0 + 0x048, 0xe081); // set pindirs, 1
  mcu.writeUint32(PIO0 + 0x04c, 0xe001); // set pins, 1
  mcu.writeUint32(PIO0 + 0x050, 0xe000); // set pins, 0
  mcu.writeUint32(PIO0 + 0x0c8, 125 << 16); // 125 MHz / 125
  mcu.writeUint32(PIO0 + 0x0cc, (2 << 12) | (1 << 7)); // wrap 2 -> 1
  mcu.writeUint32(PIO0 + 0x0dc, (1 << 26) | (pin << 5)); // SET: one pin from `pin`
  let rises = 0;
  mcu.gpio[pin].addListener((state, old) => {
    if (state === 1 && old !== 1) rises++;
  });
  mcu.writeUint32(PIO0 + 0x000, 1); // SM0 on
  return () => rises;
}
