// USB CDC input and idle time on the emulated chip (chip.mjs), without an image:
// - the firmware's read of the OUT endpoint waits for host data (rp2040js answers at once
//   with an empty packet: an interrupt storm), and 2000 bytes written at once all arrive,
//   in order (rp2040js keeps 512 and drops the rest);
// - a core waiting for an interrupt skips to the next alarm, and a run ends exactly where
//   it was asked to, never past it;
// - a core spinning on the timer (MicroPython's busy-wait) skips ahead in steps.
// Prints what it saw; tests/pico/test_chip.py checks it.
import { fakeChip, SPIN_ON_TIMER } from './fake_rom.mjs';

const result = {};

// --- USB CDC: the OUT endpoint ---
{
  const { chip } = fakeChip([0xe7fe]); // b .
  const OUT_EP = 2;
  chip.cdc.outEndpoint = OUT_EP; // as after the host configured the device
  const done = [];
  chip.mcu.usbCtrl.endpointReadDone = (ep, data) => done.push([ep, Uint8Array.from(data)]);
  chip.mcu.usbCtrl.onEndpointRead(OUT_EP, 64); // the firmware arms a 64-byte read, no data yet
  result.answered_before_data = done.length;
  const sent = Uint8Array.from({ length: 2000 }, (_, i) => (i * 7) & 0xff);
  chip.hostWrite(sent.subarray(0, 1500));
  chip.hostWrite(sent.subarray(1500));
  while (done.length < 100 && chip.hostInputBytes > 0) chip.mcu.usbCtrl.onEndpointRead(OUT_EP, 64);
  const got = new Uint8Array(done.reduce((n, [, d]) => n + d.length, 0));
  let at = 0;
  for (const [, d] of done) {
    got.set(d, at);
    at += d.length;
  }
  result.bytes_received = got.length;
  result.in_order = got.length === sent.length && got.every((b, i) => b === sent[i]);
  result.largest_packet = Math.max(...done.map(([, d]) => d.length));
  result.empty_packets = done.filter(([, d]) => d.length === 0).length;
}

// --- a core waiting for an interrupt ---
{
  const { chip } = fakeChip([0xbf30, 0xe7fe]); // wfi; b .
  const { clock } = chip;
  chip.run(clock.nanos + 1000); // executes the wfi
  result.waiting = chip.mcu.core.waiting;
  const t0 = clock.nanos;
  let firedAt = null;
  clock.createAlarm(() => (firedAt = clock.nanos)).schedule(1_000_000);
  const before = chip.instructions;
  chip.run(t0 + 10_000_123);
  result.alarm_fired_after_ns = firedAt === null ? null : firedAt - t0;
  result.ran_ns = clock.nanos - t0;
  result.instructions_while_waiting = chip.instructions - before;
}

// --- a core spinning on the timer ---
{
  const { chip } = fakeChip(SPIN_ON_TIMER);
  const { clock } = chip;
  const t0 = clock.nanos;
  chip.run(t0 + 1_000_000);
  result.spin_ran_ns = clock.nanos - t0;
  result.spin_instructions = chip.instructions;
  result.spin_skipped_ns = chip.skippedNs;
}

console.log(JSON.stringify(result));
process.exit(0);
