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
_TEXT_COND = {
    "not_x": "!x",
    "x_dec": "x--",
    "not_y": "!y",
    "y_dec": "y--",
    "x_not_y": "x!=y",
    "pin": "pin",
    "not_osre": "!osre",
}


class Sym(str):
    """A PIO operand name (x, osr, y_dec, block, ...)."""


class Instr:
    """One recorded instruction; `.side(v)` and `[delay]` modify it, as on the board."""

    def __init__(self, op, args):
        self.op = op
        self.args = args
        self.side_value = None
        self.delay = 0

    def side(self, v):
        self.side_value = int(v)
        return self

    def __getitem__(self, delay):
        self.delay = int(delay)
        return self


class Program:
    def __init__(self, fn, kwargs):
        self.name = fn.__name__
        self.kwargs = kwargs
        init = kwargs.get("sideset_init")
        # MicroPython: side-set pins = how many initial states sideset_init names.
        self.sideset_count = 0 if init is None else (len(init) if isinstance(init, tuple) else 1)
        self.instrs = []  # Instr
        self.labels = {}
        g = {
            n: Sym(n)
            for n in (
                "x",
                "y",
                "osr",
                "isr",
                "pins",
                "pindirs",
                "null",
                "status",
                "pc",
                "exec",
                "x_dec",
                "y_dec",
                "not_x",
                "not_y",
                "x_not_y",
                "pin",
                "not_osre",
                "block",
                "noblock",
                "iffull",
                "ifempty",
                "gpio",
                "irq",
            )
        }
        for op in ("pull", "push", "mov", "set", "jmp", "nop", "wait", "in_"):
            g[op] = self._recorder(op)
        g["label"] = self._label
        body = types.FunctionType(fn.__code__, g, fn.__name__)
        body()

    def _recorder(self, op):
        def emit(*args):
            i = Instr(op, args)
            self.instrs.append(i)
            return i

        return emit

    def _label(self, name):
        self.labels[name] = len(self.instrs)

    def _delay_side(self, ins):
        """Bits 12:8: the side-set value in the top sideset_count bits, the delay below."""
        dbits = 5 - self.sideset_count
        if ins.delay >= (1 << dbits):
            raise ValueError("delay %d does not fit %d bits" % (ins.delay, dbits))
        if self.sideset_count and ins.side_value is None:
            raise ValueError("every instruction needs .side() (side-set is not optional here)")
        side = (ins.side_value or 0) << dbits
        return (side | ins.delay) << 8

    def opcodes(self):
        return [op | self._delay_side(ins) for op, ins in zip(self._bare(), self.instrs)]

    def _bare(self):
        out = []
        for ins in self.instrs:
            op, a = ins.op, ins.args
            if op == "wait":
                pol, src, index = a
                out.append((1 << 13) | (int(pol) << 7) | ({"gpio": 0, "pin": 1, "irq": 2}[src] << 5) | int(index))
            elif op == "in_":
                out.append((2 << 13) | (_MOV_SRC[a[0]] << 5) | (int(a[1]) & 31))  # 32 bits encode as 0
            elif op == "jmp":
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
        lines = [".side_set %d" % self.sideset_count] if self.sideset_count else []
        for i, ins in enumerate(self.instrs):
            op, a = ins.op, ins.args
            lines += ["%s:" % n for n in at.get(i, [])]
            if op == "jmp":
                t = "jmp %s" % a[0] if len(a) == 1 else "jmp %s, %s" % (_TEXT_COND[a[0]], a[1])
            elif op in ("pull", "push"):
                t = "%s %s" % (op, " ".join(a) if a else "block")
            elif op in ("mov", "set"):
                t = "%s %s, %s" % (op, a[0], a[1])
            elif op == "wait":
                t = "wait %d %s %d" % (int(a[0]), a[1], int(a[2]))
            elif op == "in_":
                t = "in %s, %d" % (a[0], int(a[1]))
            else:
                t = op
            if ins.side_value is not None:
                t += " side %d" % ins.side_value
            if ins.delay:
                t += " [%d]" % ins.delay
            lines.append(t)
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
    # The board imports the firmware's `stackpress` package, which is not the host's
    # (pytest may have imported that one already): swap it out meanwhile.
    host_pkg = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "stackpress" or k.startswith("stackpress.")}
    saved = {k: sys.modules.get(k) for k in ("rp2", "machine", "time")}
    sys.modules.update(rp2=rp2, machine=machine, time=mtime)
    sys.path.insert(0, str(FIRMWARE))
    try:
        sys.modules.pop("boards.pico", None)
        import boards.pico as pico

        return pico
    finally:
        sys.path.remove(str(FIRMWARE))
        for k in [k for k in sys.modules if k == "stackpress" or k.startswith("stackpress.")]:
            del sys.modules[k]
        sys.modules.update(host_pkg)
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
