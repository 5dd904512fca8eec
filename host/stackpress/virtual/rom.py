# What the Pico's C runtime does at power-on, for the MicroPython unix port: mount the
# board's flash (a littlefs2 image file) as "/", then run main.py from it. Runs inside
# the board process; it is not part of the firmware and is never copied to a board.
import os
import sys
import vfs


class FileBlockDevice:
    """Block device over an image file; every write reaches the file at once, so a
    killed board process leaves the image as a power cut leaves flash."""

    def __init__(self, path, block_size):
        self.f = open(path, "r+b")
        self.bs = block_size
        self.f.seek(0, 2)
        self.count = self.f.tell() // block_size

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        self.f.seek(n * self.bs + (off or 0))
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.count
        if op == 5:
            return self.bs
        if op == 6:
            self.f.seek(arg * self.bs)
            self.f.write(b"\xff" * self.bs)
            self.f.flush()
        return 0


_bdev = FileBlockDevice(os.getenv("STACKPRESS_FLASH"), 4096)
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
