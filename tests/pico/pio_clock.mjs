// A PIO program runs on the emulated clock at its divider (chip.mjs): a state machine at
// 1 MHz toggling a pin gives one pulse per 2 us of emulated time, however the host runs.
// rp2040js alone steps PIO from a host timer, so none comes while the chip runs.
// Prints the pulses counted in 3 ms; tests/pico/test_chip.py checks them.
import { fakeChip, togglePin } from './fake_rom.mjs';

const { chip } = fakeChip([0xe7fe]); // b .
const pulses = togglePin(chip, 10);
chip.run(chip.clock.nanos + 3_000_000);
console.log(JSON.stringify({ pulses_in_3_ms: pulses() }));
process.exit(0);
