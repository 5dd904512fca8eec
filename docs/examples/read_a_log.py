# %% [markdown]
# # A log in pandas
#
# A script, or a notebook: each `# %%` is a cell. `make test` runs it on a log of the
# virtual fixture (tests/e2e/test_scripting_examples.py).
#
#     python docs/examples/read_a_log.py LOG [LOG ...]   # a .csv, a .sqlite, or a rotating log's files

# %%
import sys

import matplotlib

matplotlib.use("Agg")  # in a notebook, leave this out to see the figure inline
import matplotlib.pyplot as plt

import stackpress

paths = sys.argv[1:] or ["run.csv"]
df = stackpress.read_log(paths)

# %% [markdown]
# One row per telemetry record, typed: `host_time_utc` is a UTC timestamp, `state` and
# `alarms` categories, every measured value a float with its unit in its name. What the
# log says about itself is in `df.attrs`.

# %%
meta = df.attrs["meta"]
print(
    "fixture %s, firmware %s, %d records over %.2f h (%s)"
    % (
        meta.get("fixture_id"),
        meta.get("firmware_version"),
        len(df),
        df["elapsed_s"].iloc[-1] / 3600,
        meta["time_axis"],
    )
)
print("events:", [e["kind"] for e in df.attrs["events"]])
print("notes:", len(df.attrs["notes"]))
print(df.set_index("host_time_utc").filter(regex="_mpa$").tail(3).to_string())  # every pressure column

# %% [markdown]
# The hold error per setpoint, in kPa: only records in a hold, and not the first one
# after a ramp (its lowest and highest samples still hold the ramp's end).

# %%
hold = df[
    (df["state"] == "hold") & (df["state"].shift() == "hold") & (df["setpoint_mpa"] == df["setpoint_mpa"].shift())
]
err_kpa = (hold["pressure_mpa"] - hold["setpoint_mpa"]) * 1000
per_setpoint = err_kpa.groupby(hold["setpoint_mpa"]).agg(
    records="size", mean_kpa="mean", rms_kpa=lambda e: (e**2).mean() ** 0.5, max_abs_kpa=lambda e: e.abs().max()
)
print(per_setpoint.to_string())

# %% [markdown]
# Pressure and thickness on one time axis.

# %%
fig, (ax_p, ax_t) = plt.subplots(2, 1, sharex=True, figsize=(8, 5), layout="constrained")
t_min = df["elapsed_s"] / 60
ax_p.plot(t_min, df["pressure_mpa"], lw=0.8, label="pressure")
ax_p.plot(t_min, df["setpoint_mpa"], "k--", lw=0.8, label="setpoint")
ax_p.set_ylabel("pressure / MPa")
ax_p.legend()
ax_t.plot(t_min, df["thickness_um"], color="tab:purple", lw=0.8)
ax_t.set_ylabel("thickness change / µm")
ax_t.set_xlabel("time / min")
out = "read_a_log.png"
fig.savefig(out, dpi=120)
print("figure:", out)
