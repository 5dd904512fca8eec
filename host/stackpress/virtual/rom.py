# What the Pico's C runtime does at power-on, for the MicroPython unix port: mount the
# board's flash (a littlefs2 image file) as "/", then run main.py from it. Runs inside
# the board process; it is not part of the firmware and is never copied to a board.
import os
import sys

import vfs


class FileBlockDevice:
    """Block device over an image file; every write reaches the file at once, so a
    killed board process leaves the image as a power cut leaves flash."""

    def __init__(self, path, block_size, cut_after_writes=0):
        self.f = open(path, "r+b")
        # The sim's power cut during a flash write: the k-th program or erase gets half
        # way, then the power goes (SIGKILL: nothing of the board runs after it).
        self.cut = cut_after_writes
        self.bs = block_size
        # Made once: the Pico erases flash in C; a 4 KB bytes per erase here would come
        # out of the firmware's heap, which a real board never asks of it.
        self.erased = b"\xff" * block_size
        self.f.seek(0, 2)
        self.count = self.f.tell() // block_size

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.readinto(buf)

    def _count(self, at, data):
        if self.cut:
            self.cut -= 1
            if not self.cut:
                self.f.seek(at)
                self.f.write(memoryview(data)[: len(data) // 2])  # a slice of bytes would copy 2 KB of heap
                self.f.flush()
                os.system("kill -9 $PPID")

    def writeblocks(self, n, buf, off=None):
        self._count(n * self.bs + (off or 0), buf)
        self.f.seek(n * self.bs + (off or 0))
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.count
        if op == 5:
            return self.bs
        if op == 6:
            self._count(arg * self.bs, self.erased)
            self.f.seek(arg * self.bs)
            self.f.write(self.erased)
            self.f.flush()
        return 0


_bdev = FileBlockDevice(os.getenv("STACKPRESS_FLASH"), 4096, int(os.getenv("STACKPRESS_CUT_AFTER_WRITES") or 0))
vfs.umount("/")
vfs.mount(vfs.VfsLfs2(_bdev, readsize=32, progsize=32, lookahead=32), "/")
os.chdir("/")
sys.path[:] = ["", "/lib", ".frozen"]
del _bdev
try:
    import main  # noqa: F401  (runs the firmware; returns when it hands over the REPL)
except SystemExit:
    raise
except BaseException as e:
    sys.print_exception(e)
