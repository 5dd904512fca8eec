"""The soak's emulated-Pico scenario: the firmware on the MicroPython a Pico runs (an
emulated RP2040 running the official image: `stackpress sim --board pico`, README "The
firmware on an emulated Pico") holds 40 MPa for an hour of the chip's time while the cell
breathes, and its heap is read every ten minutes with the `heap` command.

Runs only where the image and bootrom are given (STACKPRESS_RP2_UF2,
STACKPRESS_RP2_BOOTROM); `make soak` says in one line why it skipped it otherwise. The
chip runs at about real time, so this takes about an hour of wall time.

Passes when the fixture held throughout (every sample within 0.4 MPa, no alarm, one
boot), no record or reply was lost to memory, the heap in use after the hour is within
4 KB of what it was a minute into the hold (no leak), and the largest free block is still
at least half what it was then and at least 16 KB (no creeping fragmentation: a status
reply needs about 5 KB, written in pieces).
"""

import time

from harness import SETPOINT_MPA, Host, Sim, figures_time, log, scenario, settle

from stackpress.virtual import pico

HEAP_EVERY_S = 600
LEAK_BYTES = 4096
MIN_LARGEST_BYTES = 16384


def unavailable():
    """Why this scenario can't run here (None if it can)."""
    try:
        pico.check(None, None)
    except pico.PicoUnavailable as e:
        return str(e)
    return None


def _now_s(host):
    for r in reversed(host.records):
        if r.get("t") == "tel":
            return r["device_ms"] / 1000
    return 0.0


def run_pico_hour(seed, hold_s=3600.0):
    # One charge and discharge (two hours) begins five minutes in: the cell breathes all hour.
    scen = scenario("pico_hour", [], cycles=1, rest_s=300)
    sim = Sim("pico_hour", scen, seed, truth_every=0, extra=("--board", "pico"))
    host = Host(sim)
    heaps = []
    wall0 = time.monotonic()
    try:
        settle(sim, host)
        start_s = _now_s(host)
        end_s = start_s + hold_s
        # A chip at about real time: the wait is on its clock, the bound a broken run's.
        deadline = time.monotonic() + 4 * hold_s + 1800
        next_s = start_s + 60
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError("pico_hour: the chip's time stuck at %.0f s" % _now_s(host))
            host.pump(0.5)
            now_s = _now_s(host)
            if now_s >= next_s or now_s >= end_s:
                h = host.cmd("heap")
                h["t_s"] = now_s
                heaps.append(h)
                log(
                    "pico_hour: %.0f s, heap %d B used, %d B free, largest block %d B"
                    % (h["t_s"], h["heap_alloc_bytes"], h["heap_free_bytes"], h["heap_largest_free_bytes"])
                )
                next_s += HEAP_EVERY_S
            if now_s >= end_s:
                break
        st = host.cmd("status")
    finally:
        host.close()
        res = figures_time(sim)
    wall_s = time.monotonic() - wall0
    tel = [r for r in host.tel() if r["device_ms"] / 1000 > start_s + 60]
    worst = max(max(abs(r["p_max_mpa"] - SETPOINT_MPA), abs(r["p_min_mpa"] - SETPOINT_MPA)) for r in tel)
    alarms = sorted({a for r in tel for a in r["alarms"]})
    states = sorted({r["state"] for r in tel})
    first, last = heaps[0], heaps[-1]
    grew = last["heap_alloc_bytes"] - first["heap_alloc_bytes"]
    ok = (
        states == ["hold"]
        and not alarms
        and worst < 0.4
        and res["boots"] == 1
        and last["memory_errors"] == 0
        and st["frames_dropped"] == 0
        and grew <= LEAK_BYTES
        and last["heap_largest_free_bytes"] >= max(MIN_LARGEST_BYTES, first["heap_largest_free_bytes"] // 2)
    )
    detail = (
        "%.0f s on the chip in %.0f s of wall time (%.2fx), states %s, alarms %s, worst sample %.3f MPa off, "
        "boots %d; heap at %.0f s: %d B used, %d B free, largest block %d B; at %.0f s: %d B used, %d B free, "
        "largest block %d B; memory errors %d"
        % (
            _now_s(host),
            wall_s,
            _now_s(host) / wall_s,
            states,
            alarms or "none",
            worst,
            res["boots"],
            first["t_s"],
            first["heap_alloc_bytes"],
            first["heap_free_bytes"],
            first["heap_largest_free_bytes"],
            last["t_s"],
            last["heap_alloc_bytes"],
            last["heap_free_bytes"],
            last["heap_largest_free_bytes"],
            last["memory_errors"],
        )
    )
    return ok, detail, {"pico_heap_growth_bytes": grew}
