"""stackpress host tool: talks to a fixture over its serial protocol; never in its control loop.

From a notebook or a script (docs/scripting.md):

    import stackpress
    df = stackpress.read_log("run.csv")      # a pandas DataFrame; metadata in df.attrs
    with stackpress.open_fixture() as fx:    # the one fixture attached, or port="..."
        print(fx.command("status")["pressure_mpa"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

    from .connect import FixtureLink

__version__ = "0.9.0"


def read_log(paths: str | Path | Sequence[str | Path], compact: bool = False) -> pandas.DataFrame:
    """Every telemetry record of a stackpress log (a .csv or .sqlite file, or all the files
    of a rotating one) as a pandas DataFrame with typed columns; `attrs` holds "meta" (the
    log's metadata), "events" and "notes". `compact`: measured values as float32, half the
    memory. Raises stackpress.logfile.LogError for a file that is not a stackpress log.
    The columns and attrs: stackpress/logtable.py."""
    from .logtable import read_log as read

    return read(paths, compact=compact)


def read_cycler(path: str | Path, tz: str | None = None) -> pandas.DataFrame:
    """A battery cycler's own file (EC-Lab, Arbin, Neware, Maccor, BDF: stackpress/cycler.py;
    `pip install 'stackpress[cycler]'`) as a DataFrame: test_time_s, time_utc, voltage_v,
    current_a (positive: charging), cycle, step, temperature_c; `attrs` says which library read
    it and what its clock is. `tz`: the zone of the file's local times (default: this
    computer's). Raises stackpress.cycler.CyclerError when no maintained reader reads it."""
    from .cycler import read

    c = read(path, tz)
    c.table.attrs.update(reader=c.reader, clock=c.clock, notes=c.notes)
    return c.table


def open_fixture(port: str | None = None, timeout_s: float = 3.0) -> FixtureLink:
    """The fixture on `port` (default: $STACKPRESS_PORT, else the one fixture attached),
    its protocol version checked. Use it in a `with` block; `command(name, **args)` sends
    one of the fixture's commands (firmware/stackpress/PROTOCOL.md) and returns its reply,
    raising stackpress.link.DeviceError when the fixture refuses. A stackpress logger or
    monitor on the same port keeps running: this goes through it, and its log records what
    was done, in your name."""
    from .connect import open_link
    from .discover import only_fixture

    fx = open_link(port or os.environ.get("STACKPRESS_PORT") or only_fixture(), timeout_s)
    try:
        fx.hello()
    except BaseException:
        fx.close()
        raise
    return fx
