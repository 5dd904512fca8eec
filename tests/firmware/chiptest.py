# Runs firmware tests (tests/firmware/t_*.py) on a board, over `mpremote mount` of this
# folder: the firmware as flashed on the board (its own MicroPython: float32, 31-bit small
# ints, its heap), the tests and their doubles from the host. One line per test, as
# mpytest.py prints. tests/e2e/test_emulated_pico.py runs one module per boot of the
# emulated Pico (a fresh heap each, as mpytest.py gets a fresh process):
#   stackpress reset; stackpress repl
#   mpremote connect PORT resume mount tests/firmware exec "import chiptest; chiptest.run('t_app')"
import gc
import os
import sys


def run(name):
    if "/remote" not in sys.path:
        sys.path[:0] = ["/", "/remote"]
    os.chdir("/")  # mount leaves the cwd on /remote: the firmware opens its files from /
    try:
        mod = __import__(name)
    except Exception as e:
        print("FAIL", name, "import", repr(e))
        sys.print_exception(e)
        return
    for test in sorted(dir(mod)):
        if test.startswith("test_"):
            gc.collect()
            try:
                getattr(mod, test)()
                print("PASS", name, test)
            except Exception as e:
                print("FAIL", name, test, repr(e))
                sys.print_exception(e)
    gc.collect()
    print("heap free after", name, gc.mem_free())
