"""Live view of a fixture: pressure against setpoint, force, position, alarms, profile.

Full-screen with rich on a terminal (works over SSH); on anything else (a pipe,
CI) it prints one plain line per second, so it can be tested headless. Keys (typed at
the terminal, or piped in): `a` acknowledges the alarms, `s` asks for a new setpoint
(digits, Enter) and holds it only after `y`, `q` quits.
"""

from __future__ import annotations

import collections
import json
import os
import select
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .chart import LABEL_WIDTH, line_chart, time_axis
from .link import DeviceError, LinkError
from .protocol import state_words
from .refusal import in_cli_words
from .timebase import device_elapsed_s

if TYPE_CHECKING:
    from typing import IO

    from rich.panel import Panel

    from stackpress.connect import FixtureLink


class Keys:
    """Keystrokes to actions, with the setpoint confirmed before anything is sent."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self.buf = ""
        self.value: float | None = None
        self.prompt = "keys: a ack alarms · s new setpoint · q quit"

    def _idle(self, msg: str | None = None) -> None:
        self.mode = None
        self.prompt = msg or "keys: a ack alarms · s new setpoint · q quit"

    def feed(self, ch: str) -> tuple[Any, ...] | None:
        """One character; returns an action ("ack",), ("hold", mpa), ("quit",) or None."""
        if self.mode is None:
            if ch == "a":
                return ("ack",)
            if ch == "q":
                return ("quit",)
            if ch == "s":
                self.mode, self.buf = "number", ""
                self.prompt = "new setpoint, MPa (Enter; Esc cancels): "
            return None
        if ch == "\x1b":
            self._idle("setpoint change cancelled")
        elif self.mode == "number":
            if ch in "0123456789." and len(self.buf) < 8:
                self.buf += ch
                self.prompt = "new setpoint, MPa (Enter; Esc cancels): " + self.buf
            elif ch in "\x7f\b":
                self.buf = self.buf[:-1]
                self.prompt = "new setpoint, MPa (Enter; Esc cancels): " + self.buf
            elif ch in "\r\n":
                try:
                    self.value = float(self.buf)
                except ValueError:
                    self._idle("not a number: %r" % self.buf)
                    return None
                self.mode = "confirm"
                self.prompt = "hold %.3f MPa? y to confirm, any other key cancels" % self.value
        elif self.mode == "confirm":
            if ch in "\r\n":
                return None  # the Enter after the number, when piped
            v = self.value
            self._idle()
            if ch in "yY":
                return ("hold", v)
            self.prompt = "setpoint change cancelled"
        return None


class KeyReader:
    """Characters from stdin without waiting: cbreak mode on a terminal, or a pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self.fd = None
        self.saved = None
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        if os.isatty(fd):
            import termios
            import tty

            self.saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        self.fd = fd

    def read(self) -> str:
        if self.fd is None:
            return ""
        out = ""
        while select.select([self.fd], [], [], 0)[0]:
            b = os.read(self.fd, 64)
            if not b:
                self.fd = None  # end of the piped keys
                break
            out += b.decode(errors="replace")
        return out

    def close(self) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.saved = None


def _act(link: FixtureLink, action: tuple[Any, ...], events: collections.deque[str]) -> None:
    try:
        if action[0] == "ack":
            r = link.command("ack")
            events.append("ack: cleared %s, now %s" % (", ".join(r["cleared"]) or "nothing", state_words(r["state"])))
        elif action[0] == "hold":
            r = link.command("hold", mpa=action[1])
            events.append("hold %.3f MPa: %s" % (r["setpoint_mpa"], r["state"]))
    except DeviceError as e:  # a refusal is shown, not fatal: it says what is allowed
        key = "the monitor's 'a' key" if action[0] == "ack" else "the monitor's 's' key"
        events.append("%s refused: %s" % (action[0], in_cli_words(e.code, e.msg, key)))
    except LinkError as e:
        events.append("%s not sent: %s" % (action[0], e))


def _profile_line(p: dict[str, Any] | None) -> str:
    if not p or not p.get("running"):
        return "none running"
    mpa, rate, hold = p["steps"][p["step"] - 1]
    what = (
        "holding, %d s left" % p["remaining_s"]
        if p.get("remaining_s") is not None
        else "holding until stopped"
        if p.get("holding")
        else "ramping at %g MPa/s" % rate
    )
    return "step %d of %d: %.3f MPa, %s" % (p["step"], len(p["steps"]), mpa, what)


class Traces:
    """What the charts show: a point per second of wall time (the last record then), each
    with the fixture's own time, stitched across its boots, for the time axis."""

    def __init__(self, points: int = 240) -> None:
        self.pressure: collections.deque[float] = collections.deque(maxlen=points)
        self.error_kpa: collections.deque[float | None] = collections.deque(maxlen=points)
        self.thickness: collections.deque[float | None] = collections.deque(maxlen=points)
        self.held: collections.deque[bool] = collections.deque(maxlen=points)
        self._boot: collections.deque[Any] = collections.deque(maxlen=points)
        self._device_ms: collections.deque[int] = collections.deque(maxlen=points)

    @property
    def t_s(self) -> list[float]:
        """Each point's time on the fixture's clock, stitched across its boots."""
        return list(device_elapsed_s(list(self._boot), list(self._device_ms)))

    def add(self, rec: dict[str, Any]) -> None:
        held = rec.get("state") == "hold"
        self._boot.append(rec.get("boot"))
        self._device_ms.append(rec.get("device_ms", 0))
        self.pressure.append(rec["pressure_mpa"])
        self.error_kpa.append((rec["pressure_mpa"] - rec["setpoint_mpa"]) * 1000 if held else None)
        thk = rec.get("thickness_um")
        self.thickness.append(thk if thk is not None else rec.get("position_um"))
        self.held.append(held)


SCREEN = (80, 24)  # the smallest terminal the panel is laid out for
FIXED_ROWS = 11  # borders 2, state 1, force 1, cell 1, alarms 1, keys 1, time axis 1, profile 1, events 2
NAME_WIDTH = 10  # "load cells"


def _panel(
    info: dict[str, Any],
    last: dict[str, Any],
    traces: Traces,
    events: Sequence[str],
    prompt: str = "",
    profile: dict[str, Any] | None = None,
    size: tuple[int, int] = SCREEN,
) -> Panel:
    """The live view, laid out for a terminal of `size` (columns, rows): 80x24 at least."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    width, height = max(size[0], SCREEN[0]), max(size[1], SCREEN[1])
    t = Table.grid(padding=(0, 1))
    t.add_column(justify="right", style="bold", min_width=NAME_WIDTH, no_wrap=True)
    t.add_column(no_wrap=True, overflow="ellipsis")
    state = last.get("state", "?")
    colour = {"hold": "green", "ramp": "yellow", "fault": "bold white on red"}.get(state, "cyan")
    p, sp = last.get("pressure_mpa", 0.0), last.get("setpoint_mpa", 0.0)
    t.add_row(
        Text(state.upper(), style=colour),
        "%.4f MPa   setpoint %.3f MPa   error %+.2f kPa" % (p, sp, (p - sp) * 1000),
    )
    t.add_row("force", "%.2f N   position %.3f µm" % (last.get("force_n", 0.0), last.get("position_um", 0.0)))
    chans = sorted((k for k in last if k.startswith("force_ch")), key=lambda k: int(k[8:-2]))
    if chans:  # several load cells: each one's share, how even, where the load sits
        u = last.get("uniformity_pct")
        t.add_row(
            "load cells",
            "  ".join("%s: %.1f N" % (k[8:-2], last[k]) for k in chans)
            + "  uniformity %s  centre (%s, %s) mm"
            % ("-" if u is None else "%.2f %%" % u, last.get("centre_x_mm", "-"), last.get("centre_y_mm", "-")),
        )
    thk, temp = last.get("thickness_um"), last.get("temperature_c")
    t.add_row(
        "cell",
        "thickness %s   frame %s"
        % ("-" if thk is None else "%+.3f µm" % thk, "-" if temp is None else "%.2f °C" % temp),
    )
    alarms = last.get("alarms", [])
    t.add_row(
        "alarms",
        Text(", ".join(alarms).upper() + "  (a: ack)", style="bold white on red")
        if alarms
        else Text("none", style="green"),
    )
    t.add_row("keys", Text(prompt, style="bold"))  # high up: a short terminal never cuts it off
    rows = max(2, min(8, (height - FIXED_ROWS - (1 if chans else 0)) // 3))
    cols = max(10, width - 4 - NAME_WIDTH - 2 - LABEL_WIDTH)  # borders and padding 4, between columns 2
    held = list(traces.held)
    t.add_row(
        "pressure\nMPa",
        "\n".join(line_chart(traces.pressure, cols, rows, ref=last.get("setpoint_mpa"), min_span=0.01, focus=held)),
    )
    t.add_row("hold\nerror\nkPa", "\n".join(line_chart(traces.error_kpa, cols, rows, ref=0.0, min_span=2.0)))
    t.add_row(
        "thickness\nµm" if thk is not None else "position\nµm",
        "\n".join(line_chart(traces.thickness, cols, rows, min_span=0.5)),
    )
    t.add_row("", time_axis(traces.t_s, cols))
    t.add_row("profile", _profile_line(profile))
    t.add_row("events", "\n".join(list(events)[-2:]) or "-")
    title = "stackpress · %s · %s · firmware %s" % (info["port"], info["board"], info["firmware_version"])
    return Panel(t, title=title, subtitle="seq %s · a ack · s setpoint · q quit" % last.get("seq", "-"), width=width)


def _wait_for_fixture(
    link: FixtureLink,
    info: dict[str, Any],
    why: str,
    end: float | None,
    say: Callable[[str], None],
) -> FixtureLink | None:
    """The same fixture (its id) back on its port, or None once the duration is over."""
    from .connect import open_link

    try:
        link.close()
    except OSError:
        pass
    say("fixture gone (%s): waiting for it on %s; Ctrl-C ends" % (why, info["port"]))
    while end is None or time.monotonic() < end:
        try:
            new = open_link(info["port"])
            try:
                st = new.command("status")
            except (LinkError, DeviceError):
                new.close()
                raise LinkError(info["port"]) from None
            if st.get("fixture_id") == info.get("fixture_id"):
                info.update(st)
                say("fixture back on %s" % info["port"])
                return new
            new.close()
        except LinkError:
            pass
        time.sleep(0.5)
    return None


def monitor(
    link: FixtureLink,
    duration_s: float | None = None,
    out: IO[str] | None = None,
    keys_in: IO[str] | None = None,
    as_json: bool = False,
) -> int:
    """The panel on a terminal; plain lines otherwise; with `as_json`, JSON lines: a record
    a second, every event, and {"t": "note", "text": ...} for what the monitor itself says
    (a prompt, an action's outcome, a fixture gone and back)."""
    out = out or sys.stdout
    info = dict(link.command("status"), port=link.port)
    keys = Keys()
    reader = KeyReader(keys_in if keys_in is not None else sys.stdin)
    profile = None
    next_profile = 0.0
    shown_prompt = None
    traces = Traces()
    events: collections.deque[str] = collections.deque(maxlen=4)
    last: dict[str, Any] = {}
    bucket_s = 1.0
    next_t = 0.0
    live = None
    if out.isatty() and not as_json:
        from rich.console import Console
        from rich.live import Live

        live = Live(console=Console(file=out), auto_refresh=False, screen=False)
        live.start()
    end = None if duration_s is None else time.monotonic() + duration_s
    stopped = False

    def draw() -> None:
        size = (live.console.size.width, live.console.size.height)
        live.update(_panel(info, last, traces, events, keys.prompt, profile, size), refresh=True)

    def say(text: str) -> None:
        if as_json:
            print(json.dumps({"t": "note", "text": text}), file=out, flush=True)
        elif live is None:
            print(text, file=out, flush=True)
        else:
            events.append(text)
            draw()

    try:
        while not stopped:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                for rec in link.records(left):
                    quit_ = False
                    for ch in reader.read():
                        action = keys.feed(ch)
                        if action and action[0] == "quit":
                            quit_ = True
                        elif action:
                            _act(link, action, events)
                        if keys.prompt != shown_prompt and live is None:
                            say(keys.prompt)
                        shown_prompt = keys.prompt
                    if quit_:
                        stopped = True
                        break
                    if rec["t"] == "evt":
                        if as_json:
                            print(json.dumps(rec), file=out, flush=True)
                        events.append(
                            "#%s %s %s" % (rec["seq"], rec["kind"], rec.get("state") or ",".join(rec.get("alarms", [])))
                        )
                        continue
                    last = rec
                    now = time.monotonic()
                    if now < next_t:
                        continue
                    next_t = now + bucket_s
                    if now >= next_profile:
                        next_profile = now + 5.0
                        try:
                            profile = link.command("profile")
                        except Exception:  # an older firmware: no profiles
                            profile = None
                    traces.add(rec)
                    if live is not None:
                        draw()
                    elif as_json:
                        print(json.dumps(rec), file=out, flush=True)
                        while events:  # said as JSON already, or as notes
                            e = events.popleft()
                            if not e.startswith("#"):
                                say(e)
                    else:
                        chans = "".join(
                            " %s=%s" % (k, rec[k])
                            for k in sorted(rec)
                            if k.startswith("force_ch") or k in ("uniformity_pct", "centre_x_mm", "centre_y_mm")
                        )
                        print(
                            "%s seq=%d state=%s pressure_mpa=%.4f setpoint_mpa=%.3f force_n=%.2f position_um=%.4f "
                            "thickness_um=%s temperature_c=%s%s alarms=%s"
                            % (
                                time.strftime("%H:%M:%S"),
                                rec["seq"],
                                rec["state"],
                                rec["pressure_mpa"],
                                rec["setpoint_mpa"],
                                rec["force_n"],
                                rec["position_um"],
                                rec.get("thickness_um"),
                                rec.get("temperature_c"),
                                chans,
                                "|".join(rec["alarms"]) or "-",
                            ),
                            file=out,
                            flush=True,
                        )
                        while events:
                            print("event: %s" % events.popleft(), file=out, flush=True)
                else:
                    break  # the duration is over
            except LinkError as e:  # unplugged, reset, its owner gone: wait for it, as the logger does
                link = _wait_for_fixture(link, info, str(e), end, say)
                if link is None:
                    break
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    except OSError:  # the terminal went away (SSH dropped): stop quietly
        return 1
    finally:
        reader.close()
        if live is not None:
            try:
                live.stop()
            except OSError:
                pass
    return 0
