# Runs every firmware test (t_*.py) on a board, over `mpremote mount` of this folder: the
# firmware as flashed on the board (its own MicroPython: float32, 31-bit small ints, its
# heap), the tests and their doubles from the host. One line per test, as mpytest.py
# prints. tests/e2e/test_emulated_pico.py runs it on the emulated Pico:
#   stackpress repl; mpremote connect PORT resume mount tests/firmware exec "import chiptest"
import gc
import os
import sys

sys.path[:0] = ["/", "/remote"]
os.chdir("/")  # mount leaves the cwd on /remote: the firmware opens its files from /
for f in sorted(os.listdir("/remote")):
    if not (f.startswith("t_") and f.endswith(".py")):
        continue
    name = f[:-3]
    try:
        mod = __import__(name)
    except Exception as e:
        print("FAIL", name, "import", repr(e))
        sys.print_exception(e)
        continue
    for test in sorted(dir(mod)):
        if test.startswith("test_"):
            gc.collect()
            try:
                getattr(mod, test)()
                print("PASS", name, test)
            except Exception as e:
                print("FAIL", name, test, repr(e))
                sys.print_exception(e)
    mod = None
    for k in list(sys.modules):
        if k.startswith("t_") or k == "plant":
            del sys.modules[k]  # each module's tests start from the same heap
    gc.collect()
    print("heap free after", name, gc.mem_free())
