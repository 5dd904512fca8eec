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
