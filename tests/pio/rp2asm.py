"""Assemble the firmware's `@rp2.asm_pio` programs in CPython, for the PIO emulator.

MicroPython assembles PIO programs on the board from the decorated function's body
(`pull(block)`, `jmp(x_dec, "pulse")`, ...). This module runs the same body in CPython
with those names bound to a recorder, encodes each instruction as the RP2040 datasheet
(section 3.4) lays it out, and can also print it as pioasm text, so an independent
assembler (adafruit_pioasm) can check the encoding. Only what our programs use is here;
anything else raises.
"""
import sys
import types
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

_JMP_COND = {None: 0, "not_x": 1, "x_dec": 2, "not_y": 3, "y_dec": 4, "x_not_y": 5, "pin": 6, "not_osre": 7}
_MOV_DST = {"pins": 0, "x": 1, "y": 2, "exec": 4, "pc": 5, "isr": 6, "osr": 7}
_MOV_SRC = {"pins": 0, "x": 1, "y": 2, "null": 3, "status": 5, "isr": 6, "osr": 7}
_SET_DST = {"pins": 0, "x": 1, "y": 2, "pindirs": 4}
_TEXT_COND = {"not_x": "!x", "x_dec": "x--", "not_y": "!y", "y_dec": "y--", "x_not_y": "x!=y",
              "pin": "pin", "not_osre": "!osre"}


class Sym(str):
    """A PIO operand name (x, osr, y_dec, block, ...)."""


class Program:
    def __init__(self, fn, kwargs):
        self.name = fn.__name__
        self.kwargs = kwargs
        self.instrs = []   # (op, args)
        self.labels = {}
        g = {n: Sym(n) for n in ("x", "y", "osr", "isr", "pins", "pindirs", "null", "status", "pc", "exec",
                                 "x_dec", "y_dec", "not_x", "not_y", "x_not_y", "pin", "not_osre",
                                 "block", "noblock", "iffull", "ifempty")}
        for op in ("pull", "push", "mov", "set", "jmp", "nop"):
            g[op] = self._recorder(op)
        g["label"] = self._label
        body = types.FunctionType(fn.__code__, g, fn.__name__)
        body()

    def _recorder(self, op):
        def emit(*args):
            self.instrs.append((op, args))
        return emit

    def _label(self, name):
        self.labels[name] = len(self.instrs)

    def opcodes(self):
        out = []
        for op, a in self.instrs:
            if op == "jmp":
                cond, target = (None, a[0]) if len(a) == 1 else a
                out.append((0 << 13) | (_JMP_COND[cond] << 5) | self.labels[target])
            elif op in ("pull", "push"):
                block = 0 if "noblock" in a else 1
                flag = 1 if ("ifempty" in a or "iffull" in a) else 0
                out.append((4 << 13) | ((1 if op == "pull" else 0) << 7) | (flag << 6) | (block << 5))
            elif op == "mov":
                out.append((5 << 13) | (_MOV_DST[a[0]] << 5) | _MOV_SRC[a[1]])
            elif op == "set":
                out.append((7 << 13) | (_SET_DST[a[0]] << 5) | (int(a[1]) & 31))
            elif op == "nop":
                out.append((5 << 13) | (2 << 5) | 2)  # mov y, y
            else:
                raise ValueError("not supported: " + op)
        return out

    def text(self):
        """The program as pioasm source (for adafruit_pioasm)."""
        at = {}
        for name, i in self.labels.items():
            at.setdefault(i, []).append(name)
        lines = []
        for i, (op, a) in enumerate(self.instrs):
            lines += ["%s:" % n for n in at.get(i, [])]
            if op == "jmp":
                lines.append("jmp %s" % a[0] if len(a) == 1 else "jmp %s, %s" % (_TEXT_COND[a[0]], a[1]))
            elif op in ("pull", "push"):
                lines.append("%s %s" % (op, " ".join(a) if a else "block"))
            elif op in ("mov", "set"):
                lines.append("%s %s, %s" % (op, a[0], a[1]))
            else:
                lines.append(op)
        lines += ["%s:" % n for n in at.get(len(self.instrs), [])]
        return "\n".join(lines)


def load_pico_board():
    """Import firmware/boards/pico.py in CPython with `machine` and `rp2` stood in for,
    so its decorated PIO programs become `Program`s."""
    rp2 = types.ModuleType("rp2")

    def asm_pio(**kwargs):
        return lambda fn: Program(fn, kwargs)

    class PIO:
        OUT_LOW, OUT_HIGH, IN_LOW, IN_HIGH = 0, 1, 2, 3
        SHIFT_LEFT, SHIFT_RIGHT = 0, 1

    rp2.asm_pio = asm_pio
    rp2.PIO = PIO
    machine = types.ModuleType("machine")
    mtime = types.ModuleType("time")  # MicroPython's time: ticks_* (only referenced here)
    for name in ("ticks_ms", "ticks_us", "ticks_diff", "sleep_us", "sleep_ms"):
        setattr(mtime, name, lambda *a: 0)
    saved = {k: sys.modules.get(k) for k in ("rp2", "machine", "time")}
    sys.modules.update(rp2=rp2, machine=machine, time=mtime)
    sys.path.insert(0, str(FIRMWARE))
    try:
        sys.modules.pop("boards.pico", None)
        import boards.pico as pico
        return pico
    finally:
        sys.path.remove(str(FIRMWARE))
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
