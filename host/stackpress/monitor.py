"""Live view of a fixture: pressure against setpoint, force, position, alarms.

Full-screen with rich on a terminal (works over SSH); on anything else (a pipe,
CI) it prints one plain line per second, so it can be tested headless.
"""
import collections
import sys
import time

from .chart import line_chart


def _panel(info, last, hist_p, hist_e, hist_x, events):
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    t = Table.grid(padding=(0, 2))
    t.add_column(justify="right", style="bold")
    t.add_column()
    state = last.get("state", "?")
    colour = {"hold": "green", "ramp": "yellow", "fault": "bold white on red"}.get(state, "cyan")
    err = last.get("pressure_mpa", 0) - last.get("setpoint_mpa", 0)
    t.add_row("state", Text(state.upper(), style=colour))
    t.add_row("pressure", "%.4f MPa  (setpoint %.3f, error %+.4f)" % (last.get("pressure_mpa", 0),
                                                                    last.get("setpoint_mpa", 0), err))
    t.add_row("force", "%.2f N" % last.get("force_n", 0))
    t.add_row("position", "%.4f um" % last.get("position_um", 0))
    thk, temp = last.get("thickness_um"), last.get("temperature_c")
    t.add_row("cell", "thickness %s   frame %s" % ("-" if thk is None else "%+.3f um" % thk,
                                                  "-" if temp is None else "%.2f degC" % temp))
    alarms = last.get("alarms", [])
    t.add_row("alarms", Text(", ".join(alarms).upper() + "  (stackpress ack)", style="bold white on red")
              if alarms else Text("none", style="green"))
    t.add_row("", "")
    t.add_row("pressure\nMPa", "\n".join(line_chart(hist_p, height=5, ref=last.get("setpoint_mpa"), min_span=0.01)))
    t.add_row("error\nkPa", "\n".join(line_chart(hist_e, height=5, ref=0.0, min_span=2.0)))
    t.add_row("position\num\n(cell\nbreathing)", "\n".join(line_chart(hist_x, height=5, min_span=0.5)))
    t.add_row("events", "\n".join(events) or "-")
    title = "stackpress · %s · %s · firmware %s" % (info["port"], info["board"], info["firmware_version"])
    return Panel(t, title=title, subtitle="seq %s · Ctrl-C to quit" % last.get("seq", "-"))


def monitor(link, duration_s=None, out=None):
    out = out or sys.stdout
    info = dict(link.command("status"), port=link.port)
    hist_p = collections.deque(maxlen=60)
    hist_e = collections.deque(maxlen=60)
    hist_x = collections.deque(maxlen=60)
    events = collections.deque(maxlen=4)
    last = {}
    bucket_s = 1.0
    next_t = 0.0
    live = None
    if out.isatty():
        from rich.console import Console
        from rich.live import Live
        live = Live(console=Console(file=out), auto_refresh=False, screen=False)
        live.start()
    try:
        for rec in link.records(duration_s):
            if rec["t"] == "evt":
                events.append("#%s %s %s" % (rec["seq"], rec["kind"],
                                             rec.get("state") or ",".join(rec.get("alarms", []))))
                continue
            last = rec
            now = time.monotonic()
            if now < next_t:
                continue
            next_t = now + bucket_s
            hist_p.append(rec["pressure_mpa"])
            hist_e.append((rec["pressure_mpa"] - rec["setpoint_mpa"]) * 1000 if rec["setpoint_mpa"] else 0.0)
            hist_x.append(rec["position_um"])
            if live is not None:
                live.update(_panel(info, last, hist_p, hist_e, hist_x, events), refresh=True)
            else:
                print("%s seq=%d state=%s pressure_mpa=%.4f setpoint_mpa=%.3f force_n=%.2f position_um=%.4f "
                      "thickness_um=%s temperature_c=%s alarms=%s"
                      % (time.strftime("%H:%M:%S"), rec["seq"], rec["state"], rec["pressure_mpa"],
                         rec["setpoint_mpa"], rec["force_n"], rec["position_um"], rec.get("thickness_um"),
                         rec.get("temperature_c"), "|".join(rec["alarms"]) or "-"), file=out, flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    except OSError:  # the terminal went away (SSH dropped): stop quietly
        return 1
    finally:
        if live is not None:
            try:
                live.stop()
            except OSError:
                pass
    return 0
