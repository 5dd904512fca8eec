"""Room kept for opening a file on a fragmented heap.

Opening a file on littlefs takes one block of heap for the file and its cache: 592 B on
the virtual board (64-bit, progsize 32: a 128 B cache), about 1.3 KB on a Pico (progsize
256 as its port mounts the flash: a 1 KB cache). A heap that has run for weeks has tens of
KB free in crumbs (MicroPython's collector moves nothing), and then a state save, a `set`
or a `config` failed with MemoryError while control went on (the misuse soak saw it).

So a block is kept at the top of the heap, placed there once the firmware is built
(place()). The allocator takes the lowest free block that fits, so what runs later lives
below it: given up to an open that finds no block, the room is where the file goes, the
small allocations that follow go to the crumbs below, and the room is whole again once the
file is closed and dropped. It is taken back then (or, if something still holds the file,
within a second: App.housekeeping). Kept low in the heap instead (taken at import), it
filled with small objects once given up and could not be taken back (t_memory.py).
"""

import gc

ROOM_BYTES = 1536  # a Pico's file: 1 KB of cache and under 0.2 KB of littlefs state

# Not while the firmware is built: its peak is there, and the room, once given up to an
# open, was not taken back among the modules loading (a start after a failed one then
# failed on the virtual board at 188k of heap; now it starts there).
_room = None


def place():
    """Take the room at the top of the heap: a filler takes the free room below it first,
    and is let go."""
    global _room
    _room = None
    gc.collect()
    n = gc.mem_free() - ROOM_BYTES - 1024
    filler = None
    while n > 0 and filler is None:
        try:
            filler = bytearray(n)
        except MemoryError:
            n = n * 7 // 8  # a built firmware's free heap is mostly one block at the top
    retake()
    filler = None  # noqa: F841 -- let go, now that the room is above it
    gc.collect()


def retake():
    """Take the room back if it was given up (the allocator collects first when it must).
    Allocation-free while the room is kept."""
    global _room
    if _room is None:
        try:
            _room = bytearray(ROOM_BYTES)
        except MemoryError:
            pass  # the file is still held, or the room was split: the next second


def kept():
    return _room is not None


def open_file(path, mode="r"):
    """open(), giving up the room when no block of the heap holds the file. Whoever opens
    closes, drops the file and calls retake()."""
    global _room
    try:
        return open(path, mode)
    except MemoryError:
        if _room is None:
            raise
    _room = None  # garbage now: the allocator collects it when it finds no block
    try:
        return open(path, mode)
    except BaseException:
        retake()
        raise


def use(path, mode, fn):
    """fn(file) on the file at `path` opened in `mode`; returns what fn returns."""
    f = open_file(path, mode)
    try:
        return fn(f)
    finally:
        f.close()
        f = None  # the file and its cache become garbage: the room can be taken back
        retake()
