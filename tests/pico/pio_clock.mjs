// A PIO program runs on the emulated clock at its divider (chip.mjs): a state machine at
// 1 MHz toggling a pin gives one pulse per 2 us of emulated time, however the host runs.
// rp2040js alone steps PIO from a host timer, so none comes while the chip runs.
// Prints the pulses counted in 3 ms; tests/pico/test_chip.py checks them.
import { fakeChip } from './fake_rom.mjs';

const { chip } = fakeChip([0xe7fe]); // b .
const { mcu } = chip;

const PIO0 = 0x50200000;
const PIN = 10;
mcu.writeUint32(0x40014000 + 8 * PIN + 4, 6); // GPIO10 to PIO0
mcu.writeUint32(PIO0 + 0x048, 0xe081); // set pindirs, 1
mcu.writeUint32(PIO0 + 0x04c, 0xe001); // set pins, 1
mcu.writeUint32(PIO0 + 0x050, 0xe000); // set pins, 0
mcu.writeUint32(PIO0 + 0x0c8, 125 << 16); // 125 MHz / 125
mcu.writeUint32(PIO0 + 0x0cc, (2 << 12) | (1 << 7)); // wrap 2 -> 1
mcu.writeUint32(PIO0 + 0x0dc, (1 << 26) | (PIN << 5)); // SET: one pin from GPIO10
let pulses = 0;
mcu.gpio[PIN].addListener((state, old) => {
  if (state === 1 && old !== 1) pulses++;
});
mcu.writeUint32(PIO0 + 0x000, 1); // SM0 on
chip.run(chip.clock.nanos + 3_000_000);
console.log(JSON.stringify({ pulses_in_3_ms: pulses }));
process.exit(0);
