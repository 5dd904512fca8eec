// No PIO edge is lost when the core's time jumps (chip.mjs reports the pins after every PIO
// cycle): a state machine at 1 MHz toggling a pin each cycle while the core spins on the
// timer, whose busy-wait chip.mjs skips 5 us at a time. rp2040js reported the pins once per
// batch of cycles, so a pulse within a batch vanished (an HX711 read through PIO lost
// PD_SCK rises and fell out of step). Prints the rises counted; test_chip.py checks them.
import { fakeChip } from './fake_rom.mjs';

const { chip } = fakeChip([
  0x4901, // ldr r1, [pc, #4]  -> TIMERAWL
  0x6808, // loop: ldr r0, [r1]
  0xe7fd, // b loop
  0xbf00, // nop
  0x4028,
  0x4005, // 0x40054028: TIMERAWL
]);
const { mcu } = chip;

const PIO0 = 0x50200000;
const PIN = 2;
mcu.writeUint32(0x40014000 + 8 * PIN + 4, 6); // GPIO2 to PIO0
mcu.writeUint32(PIO0 + 0x048, 0xe081); // set pindirs, 1
mcu.writeUint32(PIO0 + 0x04c, 0xe001); // set pins, 1
mcu.writeUint32(PIO0 + 0x050, 0xe000); // set pins, 0
mcu.writeUint32(PIO0 + 0x0c8, 125 << 16); // 125 MHz / 125
mcu.writeUint32(PIO0 + 0x0cc, (2 << 12) | (1 << 7)); // wrap 2 -> 1
mcu.writeUint32(PIO0 + 0x0dc, (1 << 26) | (PIN << 5)); // SET: one pin from GPIO2
let rises = 0;
mcu.gpio[PIN].addListener((state, old) => {
  if (state === 1 && old !== 1) rises++;
});
mcu.writeUint32(PIO0 + 0x000, 1); // SM0 on
chip.run(chip.clock.nanos + 3_000_000);
console.log(JSON.stringify({ rises_in_3_ms: rises, skipped_ns: chip.skippedNs }));
process.exit(0);
