"""How much heap is left, and in what pieces: the `heap` command (PROTOCOL.md).

A heap that has run for weeks is fragmented (MicroPython's collector moves nothing): its
free bytes may be crumbs that no reply fits in. The largest block is found by trying
allocations, from the top down with the collector off, so a failed try costs a scan of
the heap's table (about 1 ms on a Pico) and not a collection (about 13 ms): three
collections in all, about 0.1 s of the loop's time on the emulated Pico. For a person or
a soak to ask for, not for polling.
"""

import gc


def _largest(top, step):
    """The largest block one allocation gets, at most `top` bytes, in steps of `step`."""
    gc.disable()
    try:
        n = top
        while n > 0:
            try:
                bytearray(n)
                return n
            except MemoryError:
                n -= step
        return 0
    finally:
        gc.enable()
        gc.collect()  # the block found is garbage


def report(memory_errors):
    gc.collect()
    free = gc.mem_free()
    coarse = max(16, free // 16)
    fine = max(16, free // 256)
    # Within 1/16 of the free bytes in at most 16 tries, then within 1/256 in 16 more.
    largest = _largest(min(free, _largest(free, coarse) + coarse - fine), fine)
    return {
        "heap_alloc_bytes": gc.mem_alloc(),
        "heap_free_bytes": gc.mem_free(),
        "heap_largest_free_bytes": largest,
        "memory_errors": memory_errors,
    }
