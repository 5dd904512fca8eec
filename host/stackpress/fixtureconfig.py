"""A fixture's settings in a TOML file on the host: pull, diff, push.

The file holds every setting with its unit and allowed range in a comment, so it reads
as a record of how a fixture was set up. `push` checks the file against the fixture's own
schema (names, ranges), shows what changes, and sets only that; what the fixture refuses
(the cell area and the step size while it controls pressure: they change what every force
reading means) is reported and left as it was.
"""

from __future__ import annotations

import datetime
import json
import tomllib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackpress.connect import FixtureLink


class ConfigFileError(Exception):
    pass


def settings(link: FixtureLink, with_help: bool = False) -> dict[str, Any]:
    """The fixture's settings {key: {value, unit, min, max[, help]}}; the meanings come in a
    reply of their own (both together would not fit the fixture's output queue)."""
    cfg = link.command("config")["config"]
    if with_help:
        helps = link.command("config", help=True)["help"]
        for k, d in cfg.items():
            d["help"] = helps.get(k, "")
    return cfg


def render(info: dict[str, Any], cfg: dict[str, Any]) -> str:
    lines = [
        "# stackpress fixture settings: `stackpress config push FILE` sets them on a fixture",
        "# pulled %s from %s (board %s, firmware %s)"
        % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            info.get("port", "?"),
            info.get("board"),
            info.get("firmware_version"),
        ),
        "",
    ]
    for k, d in cfg.items():
        lines.append("# %s [%s, %g..%g]" % (d["help"], d["unit"], d["min"], d["max"]))
        v = d["value"]
        lines.append("%s = %s" % (k, repr(int(v)) if float(v).is_integer() and isinstance(v, int) else repr(float(v))))
        lines.append("")
    return "\n".join(lines)


def read(path: str, cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigFileError("can't read %s: %s" % (path, e.strerror)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigFileError("%s is not valid TOML: %s" % (path, e)) from None
    unknown = sorted(set(doc) - set(cfg))
    if unknown:
        raise ConfigFileError("%s: unknown settings %s (known: %s)" % (path, ", ".join(unknown), ", ".join(cfg)))
    for k, v in doc.items():
        d = cfg[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigFileError("%s: %s must be a number in %s, got %r" % (path, k, d["unit"], v))
        if not d["min"] <= v <= d["max"]:
            raise ConfigFileError(
                "%s: %s = %g %s is out of range: %g to %g %s" % (path, k, v, d["unit"], d["min"], d["max"], d["unit"])
            )
    return doc


def differences(doc: dict[str, Any], cfg: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    return [
        (k, cfg[k]["value"], v, cfg[k]["unit"])
        for k, v in doc.items()
        if abs(float(v) - float(cfg[k]["value"])) > 1e-9 * max(1.0, abs(float(v)))
    ]


def config_file(link: FixtureLink, action: str, path: str, as_json: bool = False) -> int:
    cfg = settings(link, with_help=action == "pull")
    if action == "pull":
        info = dict(link.command("hello"), port=link.port)
        with open(path, "w") as f:
            f.write(render(info, cfg))
        print(
            json.dumps({"written": path, "settings": len(cfg)})
            if as_json
            else "wrote %d settings to %s" % (len(cfg), path)
        )
        return 0
    doc = read(path, cfg)
    diff = differences(doc, cfg)
    if action == "diff" or not diff:
        if as_json:
            print(json.dumps([{"key": k, "fixture": a, "file": b, "unit": u} for k, a, b, u in diff]))
        elif not diff:
            print("the fixture's settings match %s" % path)
        else:
            for k, a, b, u in diff:
                print("%-24s fixture %-12g file %-12g %s" % (k, a, b, u))
        return 0 if action == "push" or not diff else 1
    refused, done = [], []
    for k, a, b, u in diff:
        try:
            r = link.command("set", key=k, value=b)
            done.append((k, a, r["value"], u))
        except Exception as e:  # the fixture's refusal says why (DeviceError)
            refused.append((k, getattr(e, "msg", str(e))))
    if as_json:
        print(
            json.dumps(
                {
                    "set": [{"key": k, "was": a, "now": b, "unit": u} for k, a, b, u in done],
                    "refused": [{"key": k, "why": m} for k, m in refused],
                }
            )
        )
    else:
        for k, a, b, u in done:
            print("%-24s %g -> %g %s" % (k, a, b, u))
        for k, m in refused:
            print("%-24s refused: %s" % (k, m))
    return 4 if refused else 0
