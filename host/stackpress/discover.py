"""Finding the fixtures attached to this computer.

A real fixture is a Pico on USB (Raspberry Pi's vendor id 0x2E8A); its stable name is
the /dev/serial/by-id/ link, which survives an unplug. A virtual fixture registers its
port in a runtime directory while `stackpress sim` runs. Only these candidates are
opened, never other serial devices (a cycler's port, a modem), and each must answer
`hello` as a stackpress fixture to count.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

PICO_VID = 0x2E8A


def runtime_dir() -> str:
    base = os.environ.get("STACKPRESS_RUNTIME_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or "/tmp", "stackpress-%d" % os.getuid())
    return os.path.join(base, "sims")


def register(port: str) -> None:
    """This process (a virtual fixture) is reachable on `port`."""
    d = runtime_dir()
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "%d.json" % os.getpid())
    with open(path + ".new", "w") as f:
        json.dump({"port": port, "pid": os.getpid()}, f)
    os.replace(path + ".new", path)


def unregister() -> None:
    try:
        os.unlink(os.path.join(runtime_dir(), "%d.json" % os.getpid()))
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def virtual_ports() -> list[str]:
    ports = []
    for path in sorted(glob.glob(os.path.join(runtime_dir(), "*.json"))):
        try:
            with open(path) as f:
                entry = json.load(f)
        except (OSError, ValueError):
            continue
        if _alive(entry.get("pid", 0)):
            ports.append(entry["port"])
        else:
            try:
                os.unlink(path)  # a sim that was killed left it
            except OSError:
                pass
    return ports


def usb_ports() -> list[str]:
    """Picos on USB, by their stable /dev/serial/by-id/ name where there is one."""
    from serial.tools import list_ports

    by_id = {}
    for link in glob.glob("/dev/serial/by-id/*"):
        by_id[os.path.realpath(link)] = link
    return [by_id.get(os.path.realpath(p.device), p.device) for p in list_ports.comports() if p.vid == PICO_VID]


def candidate_ports() -> list[str]:
    return usb_ports() + virtual_ports()


def probe(port: str) -> tuple[dict[str, Any] | None, str | None]:
    """(hello reply, None) if a stackpress fixture answers on `port`, else (None, why)."""
    from .connect import open_link
    from .link import DeviceError, LinkError

    try:
        with open_link(port, timeout_s=1.5) as link:
            return link.hello(), None
    except (LinkError, DeviceError) as e:
        return None, str(e)


def only_fixture() -> str:
    """The port of the one fixture attached, for a command given no --port (as mpremote
    connects to the one board there is); with none or several, an error that says which."""
    from .link import LinkError

    ports = candidate_ports()
    if len(ports) > 1:  # a Pico running something else is no fixture: ask each
        ports = [p for p in ports if probe(p)[0] is not None]
    if len(ports) == 1:
        return ports[0]
    if not ports:
        raise LinkError(
            "no port given and no fixture found (a Pico on USB, or 'stackpress sim' running): "
            "use --port PATH or set STACKPRESS_PORT"
        )
    raise LinkError("no port given and %d fixtures found: --port one of %s" % (len(ports), ", ".join(ports)))
