// No PIO edge is lost when the core's time jumps (chip.mjs reports the pins after every PIO
// cycle): a state machine at 1 MHz toggling a pin each cycle while the core spins on the
// timer, whose busy-wait chip.mjs skips 5 us at a time. rp2040js reported the pins once per
// batch of cycles, so a pulse within a batch vanished (an HX711 read through PIO lost
// PD_SCK rises and fell out of step). Prints the rises counted; test_chip.py checks them.
import { fakeChip, SPIN_ON_TIMER, togglePin } from './fake_rom.mjs';

const { chip } = fakeChip(SPIN_ON_TIMER);
const rises = togglePin(chip, 2);
chip.run(chip.clock.nanos + 3_000_000);
console.log(JSON.stringify({ rises_in_3_ms: rises(), skipped_ns: chip.skippedNs }));
process.exit(0);
