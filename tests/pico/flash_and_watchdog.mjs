// Flash writes reach the flash and its file (rp2040js's SSI ignores them), and the watchdog
// resets the chip (rp2040js only logs). Prints what it saw; tests/pico/test_chip.py checks.
import fs from 'node:fs';
import { fakeChip } from './fake_rom.mjs';

// erase 4096 bytes at 0xA0000, then program the first 16 bytes of this code there
const program = [
  0x4804, // ldr r0, [pc, #16]   -> 0xA0000
  0x4905, // ldr r1, [pc, #20]   -> 4096
  0x4b05, // ldr r3, [pc, #20]   -> 0x201 (flash_range_erase)
  0x4798, // blx r3
  0x4802, // ldr r0, [pc, #8]    -> 0xA0000
  0x4905, // ldr r1, [pc, #20]   -> 0x10000000 (this code)
  0x2210, // movs r2, #16
  0x4b05, // ldr r3, [pc, #20]   -> 0x203 (flash_range_program)
  0x4798, // blx r3
  0xe7fe, // b .
  0x0000, 0x000a, // 0xA0000
  0x1000, 0x0000, // 4096
  0x0201, 0x0000, // flash_range_erase
  0x0000, 0x1000, // 0x10000000
  0x0203, 0x0000, // flash_range_program
];
const { chip, fsFile } = fakeChip(program);
chip.run(chip.clock.nanos + 100_000);
const file = fs.readFileSync(fsFile);
const code = Buffer.from(new Uint16Array(program.slice(0, 8)).buffer);
const result = {
  programmed: file.subarray(0, 16).equals(code),
  erased_rest: file.subarray(16).every((b) => b === 0xff),
  in_flash: Buffer.from(chip.mcu.flash.subarray(0xa0000, 0xa0010)).equals(code),
};

// the watchdog: 1 ms, not fed
let reset = null;
chip.onReset = (reason) => {
  reset = reason;
  chip.watchdog.writeUint32(0, 0); // the board ends its process here; this test goes on
};
chip.mcu.writeUint32(0x40058004, 2000); // LOAD: 1 ms (two counts per us, erratum RP2040-E1)
chip.mcu.writeUint32(0x40058000, 1 << 30); // CTRL: enable
chip.run(chip.clock.nanos + 900_000);
result.reset_before_1ms = reset;
chip.run(chip.clock.nanos + 200_000);
result.reset_after_1ms = reset;
console.log(JSON.stringify(result));
process.exit(0);
