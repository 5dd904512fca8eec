"""Reading the fixture and scenario files: every value there has a unit and a source."""
import json
from pathlib import Path

HARDWARE = Path(__file__).resolve().parents[3] / "hardware"
DEFAULT_FIXTURE = HARDWARE / "fixture.json"
DEFAULT_SCENARIO = HARDWARE / "scenarios" / "standard.json"


def _values(node):
    """Strip {'value', 'unit', 'source'} wrappers down to their values, recursively."""
    if isinstance(node, dict):
        if "value" in node:
            return node["value"]
        return {k: _values(v) for k, v in node.items() if not k.startswith("_")}
    return node


def load(path):
    with open(path) as f:
        return _values(json.load(f))
