"""Reading the fixture and scenario files: every value there has a unit and a source.

A scenario names its fixture file (relative to itself) and may override fixture values
in `fixture_set`; `--set fixture.KEY=V` / `--set scenario.KEY=V` override either from the
command line with dotted keys, e.g. `fixture.springs.present=false`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import bundled

HARDWARE = bundled.HARDWARE
DEFAULT_FIXTURE = HARDWARE / "fixture.json"
DEFAULT_SCENARIO = HARDWARE / "scenarios" / "standard.json"


def _values(node: Any) -> Any:
    """Strip {'value', 'unit', 'source'} wrappers down to their values, recursively."""
    if isinstance(node, dict):
        if "value" in node:
            return node["value"]
        return {k: _values(v) for k, v in node.items() if not k.startswith("_")}
    if isinstance(node, list):
        return [_values(v) for v in node]
    return node


def load(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return _values(json.load(f))


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set tree[a][b][c] for 'a.b.c'; the key must already exist (a typo is an error)."""
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        if not isinstance(node, dict) or p not in node:
            raise KeyError("no parameter %r" % dotted)
        node = node[p]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise KeyError("no parameter %r" % dotted)
    node[parts[-1]] = value


def resolve(
    scenario_path: str | Path | None = None, fixture_path: str | Path | None = None, sets: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fixture, scenario) value trees, with the scenario's and the caller's overrides."""
    sc_path = Path(scenario_path or DEFAULT_SCENARIO)
    scenario = load(sc_path)
    if fixture_path:
        fx_path = Path(fixture_path)
    elif scenario.get("fixture"):
        fx_path = (sc_path.parent / scenario["fixture"]).resolve()
    else:
        fx_path = DEFAULT_FIXTURE
    fixture = load(fx_path)
    for k, v in (scenario.get("fixture_set") or {}).items():
        apply(fixture, k, v)
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep:
            raise KeyError("--set takes KEY=VALUE, got %r" % item)
        where, _, dotted = key.partition(".")
        if where not in ("fixture", "scenario"):
            raise KeyError("--set keys start with 'fixture.' or 'scenario.', got %r" % key)
        apply(fixture if where == "fixture" else scenario, dotted, parse_value(text))
    return fixture, scenario
