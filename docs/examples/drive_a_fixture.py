# %% [markdown]
# # Driving a fixture from Python
#
# A script, or a notebook: each `# %%` is a cell (Jupyter with jupytext, VS Code, Spyder).
# `make test` runs it against the virtual fixture (tests/e2e/test_scripting_examples.py).
#
#     python docs/examples/drive_a_fixture.py [PORT] [SETPOINT_MPA]
#
# With no port it uses $STACKPRESS_PORT, else the one fixture attached. A logger or a
# monitor on the same port keeps running: this goes through it, and the log records each
# command with this program's name and your user name.

# %%
import sys

import stackpress
from stackpress.link import DeviceError

port = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
setpoint_mpa = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0

# %% [markdown]
# Look before you move: a command that changes force checks the state it assumes.

# %%
fx = stackpress.open_fixture(port)  # in a script, `with stackpress.open_fixture() as fx:`
st = fx.command("status")
print(
    "fixture %s: %s at %.3f MPa, firmware %s"
    % (st["fixture_id"], st["state"], st["pressure_mpa"], st["firmware_version"])
)
if st["state"] == "fault" or st["alarms"]:
    sys.exit("the fixture has alarms %s: see to them first ('stackpress status')" % st["alarms"])

# %% [markdown]
# Hold, then follow the records until it has settled: the fixture's own time
# (`device_ms`) says how long that took, whatever the machine's load.

# %%
try:
    fx.command("hold", mpa=setpoint_mpa)
except DeviceError as e:
    sys.exit("the fixture refused: %s" % e)
start_ms = None
for rec in fx.records(600):
    if rec["t"] != "tel":
        continue
    start_ms = rec["device_ms"] if start_ms is None else start_ms
    if rec["state"] == "hold" and abs(rec["pressure_mpa"] - setpoint_mpa) < 0.01:
        print(
            "holding %.4f MPa after %.1f s of the fixture's time"
            % (rec["pressure_mpa"], (rec["device_ms"] - start_ms) / 1000)
        )
        break
else:
    sys.exit("not holding %.3f MPa within 600 s" % setpoint_mpa)

# %% [markdown]
# A setting by name, with its unit (`stackpress config` lists them all).

# %%
cfg = fx.command("config")["config"]["ramp_rate_mpa_s"]
print("ramp_rate_mpa_s = %g %s" % (cfg["value"], cfg["unit"]))

# %%
fx.close()  # the port is free for the next program
