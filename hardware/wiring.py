"""Draw hardware/wiring.svg from the pin map the firmware uses (firmware/boards/pico.py).

    python hardware/wiring.py            # rewrite wiring.svg
    python hardware/wiring.py --check    # exit 1 if wiring.svg is not what the pin map gives

The GPIO numbers come from `PINS` in the board module (read with ast: nothing of the
firmware runs here), so the picture and the code cannot disagree; `make test` checks it.
What each signal connects to on the modules is the reference build's, below.
"""

import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOARD = HERE.parent / "firmware" / "boards" / "pico.py"
SVG = HERE / "wiring.svg"

# Pico pin numbers (1-40) of each GPIO and of the supply pins, from the Pico pinout.
_LEFT = [
    "GP0",
    "GP1",
    "GND",
    "GP2",
    "GP3",
    "GP4",
    "GP5",
    "GND",
    "GP6",
    "GP7",
    "GP8",
    "GP9",
    "GND",
    "GP10",
    "GP11",
    "GP12",
    "GP13",
    "GND",
    "GP14",
    "GP15",
]
_RIGHT = [
    "GP16",
    "GP17",
    "GND",
    "GP18",
    "GP19",
    "GP20",
    "GP21",
    "GND",
    "GP22",
    "RUN",
    "GP26",
    "GP27",
    "AGND",
    "GP28",
    "ADC_VREF",
    "3V3",
    "3V3_EN",
    "GND",
    "VSYS",
    "VBUS",
]
PICO_PINS = {name: i + 1 for i, name in enumerate(_LEFT)}
PICO_PINS.update({name: 21 + i for i, name in enumerate(_RIGHT) if name not in ("GND",)})
PICO_PINS["GND"] = 38  # one of eight

# signal in PINS -> (module, terminal on the module, wire colour)
SIGNALS = {
    "hx_sck": ("HX711 #0", "SCK", "#1f77b4"),
    "hx_dout": ("HX711 #0", "DT", "#17becf"),
    "hx_dout1": ("HX711 #1", "DT", "#0d8a9a"),
    "hx_dout2": ("HX711 #2", "DT", "#095f6b"),
    "step": ("TMC2209", "STEP", "#d62728"),
    "dir": ("TMC2209", "DIR", "#ff7f0e"),
    "enable": ("TMC2209", "EN", "#8c564b"),
    "ntc": ("NTC divider", "ADC", "#2ca02c"),
    "estop": ("E-stop (NC)", "C", "#e377c2"),
    "end_stop": ("End stop (NC)", "C", "#9467bd"),
    "dac_sda": ("MCP4725 DAC", "SDA", "#bcbd22"),
    "dac_scl": ("MCP4725 DAC", "SCL", "#7f7f00"),
    "fault_line": ("PC817 (fault line)", "A", "#ff1493"),
}
# module -> terminals (top to bottom) and fixed wires: terminal -> (Pico pin or None, note)
MODULES = {
    "HX711 #0": (
        ["VCC", "VDD", "SCK", "DT", "GND", "E+", "E-", "A-", "A+"],
        {
            "VCC": ("VBUS", "5 V: analog supply and bridge excitation"),
            "VDD": ("3V3", "logic level"),
            "GND": ("GND", ""),
            "E+": (None, "load cell 0 red (excitation +)"),
            "E-": (None, "load cell 0 black (excitation -)"),
            "A-": (None, "load cell 0 white (signal -)"),
            "A+": (None, "load cell 0 green (signal +)"),
        },
    ),
    "HX711 #1": (
        ["VCC", "VDD", "SCK", "GND", "E+ .. A+", "DT"],
        {
            "VCC": ("VBUS", ""),
            "VDD": ("3V3", ""),
            "GND": ("GND", ""),
            "SCK": (None, "to HX711 #0 SCK: one PD_SCK for all"),
            "E+ .. A+": (None, "load cell 1, as on #0"),
        },
    ),
    "HX711 #2": (
        ["VCC", "VDD", "SCK", "GND", "E+ .. A+", "DT"],
        {
            "VCC": ("VBUS", ""),
            "VDD": ("3V3", ""),
            "GND": ("GND", ""),
            "SCK": (None, "to HX711 #0 SCK: one PD_SCK for all"),
            "E+ .. A+": (None, "load cell 2, as on #0"),
        },
    ),
    "TMC2209": (
        ["VIO", "EN", "STEP", "DIR", "GND", "VM", "A1/A2", "B1/B2"],
        {
            "VIO": ("3V3", "logic level"),
            "GND": ("GND", "shared with the motor supply's 0 V"),
            "VM": (None, "12-24 V motor supply, 100 uF at the driver"),
            "A1/A2": (None, "motor coil A"),
            "B1/B2": (None, "motor coil B"),
        },
    ),
    "E-stop (NC)": (["C", "NC"], {"NC": ("GND", "mushroom switch, normally closed: pressed or a cut wire reads open")}),
    "End stop (NC)": (["C", "NC"], {"NC": ("GND", "microswitch at the end of the screw's travel, normally closed")}),
    "MCP4725 DAC": (
        ["VDD", "GND", "SDA", "SCL", "A0", "VOUT"],
        {
            "VDD": (None, "3.300 V from a REF3033 (its reference); pull-ups: 4.7 kOhm to Pico 3V3 only"),
            "GND": ("GND", "and to the cycler's aux input - (one point)"),
            "A0": ("GND", "address 0x60"),
            "VOUT": (None, "1 kOhm, 1 uF to GND, to the cycler's aux input + (shielded pair)"),
        },
    ),
    "PC817 (fault line)": (
        ["A", "K", "C", "E"],
        {
            "K": ("GND", ""),
            "C": (None, "to the cycler's external stop/pause input (isolated)"),
            "E": (None, "to that input's common; lit = ok, dark = fault"),
        },
    ),
    "NTC divider": (
        ["3V3", "ADC", "AGND"],
        {
            "3V3": ("3V3", "through 10 kOhm 1 %"),
            "AGND": ("AGND", "through the 10 kOhm NTC (B 3950) glued to the frame"),
        },
    ),
}


def read_pins(path=BOARD):
    tree = ast.parse(Path(path).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PINS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit("no PINS in %s" % path)


def render(pins):
    missing = sorted(set(pins) - set(SIGNALS))
    if missing:
        raise SystemExit("pins with no drawing (add them to SIGNALS in hardware/wiring.py): %s" % missing)
    height = 60 + sum(26 + 26 * len(t) + 18 for t, _ in MODULES.values()) + 50
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="%d" font-family="sans-serif" '
        'font-size="12">' % height,
        '<rect width="1000" height="%d" fill="white"/>' % height,
        '<text x="20" y="28" font-size="16" font-weight="bold">stackpress reference build: Pico wiring '
        "(drawn from PINS in firmware/boards/pico.py)</text>",
    ]
    # the Pico: its used pins, in pin-number order
    used = sorted(
        {("GP%d" % g) for g in pins.values()} | {"3V3", "VBUS", "GND", "AGND"}, key=lambda n: PICO_PINS.get(n, 99)
    )
    px, py, row = 40, 70, 34
    out.append(
        '<rect x="%d" y="%d" width="170" height="%d" rx="8" fill="#e8f5e9" stroke="#2e7d32"/>'
        % (px, py, row * len(used) + 30)
    )
    out.append('<text x="%d" y="%d" font-weight="bold">Raspberry Pi Pico</text>' % (px + 10, py + 18))
    anchor = {}
    for i, name in enumerate(used):
        y = py + 40 + i * row
        num = PICO_PINS[name]
        label = "%s (pin %d)" % (name, num)
        out.append('<text x="%d" y="%d">%s</text>' % (px + 10, y + 4, label))
        out.append('<circle cx="%d" cy="%d" r="4" fill="#2e7d32"/>' % (px + 170, y))
        anchor[name] = (px + 170, y)
    # the modules
    mx, my = 470, 60
    term_at = {}
    for mod, (terms, fixed) in MODULES.items():
        h = 26 + 26 * len(terms)
        out.append('<rect x="%d" y="%d" width="120" height="%d" rx="6" fill="#e3f2fd" stroke="#1565c0"/>' % (mx, my, h))
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (mx + 8, my + 17, mod))
        for j, t in enumerate(terms):
            y = my + 38 + 26 * j
            term_at[(mod, t)] = (mx, y)
            out.append('<circle cx="%d" cy="%d" r="4" fill="#1565c0"/>' % (mx, y))
            out.append('<text x="%d" y="%d">%s</text>' % (mx + 8, y + 4, t))
            if t in fixed:
                pin, note = fixed[t]
                if pin is not None:
                    sx, sy = anchor[pin]
                    out.append(
                        '<path d="M%d %d C %d %d, %d %d, %d %d" stroke="#9e9e9e" fill="none" '
                        'stroke-dasharray="4 3"/>' % (sx, sy, sx + 120, sy, mx - 120, y, mx, y)
                    )
                    note = "Pico %s%s" % (pin, ", " + note if note else "")
                out.append('<text x="%d" y="%d" fill="#555">%s</text>' % (mx + 130, y + 4, note))
        my += h + 18
    for key, (mod, term, colour) in sorted(SIGNALS.items()):
        if key not in pins:
            continue
        sx, sy = anchor["GP%d" % pins[key]]
        tx, ty = term_at[(mod, term)]
        out.append(
            '<path d="M%d %d C %d %d, %d %d, %d %d" stroke="%s" stroke-width="2.5" fill="none"/>'
            % (sx, sy, sx + 140, sy, tx - 140, ty, tx, ty, colour)
        )
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (sx + 14, sy - 5, colour, key))
    out.append(
        '<text x="20" y="%d" fill="#555">Dashed: supplies. Every HX711\'s RATE tied low (10 samples/s). One '
        "common ground for Pico, HX711s, TMC2209 and the motor supply.</text>" % (height - 30)
    )
    out.append(
        '<text x="20" y="%d" fill="#555">Coloured: the firmware\'s signals, named as in PINS.</text>' % (height - 12)
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    svg = render(read_pins())
    if "--check" in argv:
        if not SVG.exists() or SVG.read_text() != svg:
            print(
                "hardware/wiring.svg does not match PINS in firmware/boards/pico.py: run 'python hardware/wiring.py'",
                file=sys.stderr,
            )
            return 1
        return 0
    SVG.write_text(svg)
    print("wrote %s" % SVG)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
