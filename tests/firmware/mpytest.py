# Minimal test runner for the MicroPython unix port: runs every test_* function of
# the module named on the command line and prints one line per test.
import gc
import sys

sys.path[:0] = [sys.argv[2], sys.argv[3]]  # firmware/, tests/firmware/
mod = __import__(sys.argv[1])
failed = 0
for name in sorted(dir(mod)):
    if name.startswith("test_"):
        gc.collect()
        try:
            getattr(mod, name)()
            print("PASS", name)
        except Exception as e:
            failed += 1
            print("FAIL", name, repr(e))
            sys.print_exception(e)
sys.exit(1 if failed else 0)
