"""One home for each idea, checked in the code itself (read with ast; nothing of it runs):

- every change of the firmware's mode is in instrument.py: the controller's mode methods are
  called nowhere else, and commands.py reaches the instrument only through its verbs and
  queries, never its parts (controller, safety, load cells, stepper, ...);
- the telemetry record is described once, in the firmware's history.py: no other module
  lists its fields (the host builds its columns from the fixture's `schema`);
- the protocol version is written once (firmware/stackpress/version.json), and so is the
  virtual board's lockstep frame layout (firmware/boards/virtual.py).
"""

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware" / "stackpress"
# What the instrument is made of: the App may use them, a command may not.
PARTS = {"ctrl", "safety", "loadcells", "stepper", "dil", "profile", "adc", "board", "event"}
MODE_CHANGES = {"set_mode", "hold", "release"}


def _python_files():
    skip = {ROOT / "soak" / "out", ROOT / "bench" / "out", ROOT / ".venv"}
    for p in sorted(ROOT.rglob("*.py")):
        if not any(s in p.parents for s in skip) and ".git" not in p.parts:
            yield p


def _tree(path):
    return ast.parse(path.read_text(), str(path))


def test_every_change_of_mode_is_in_the_instrument():
    found = []
    for path in sorted(FIRMWARE.glob("*.py")):
        if path.name in ("instrument.py", "controller.py"):
            continue
        for node in ast.walk(_tree(path)):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func if node.func.attr in MODE_CHANGES else None
            elif isinstance(node, ast.Assign):
                target = next((t for t in node.targets if isinstance(t, ast.Attribute) and t.attr == "mode"), None)
            if target is not None and isinstance(target.value, ast.Attribute) and target.value.attr == "ctrl":
                found.append("%s:%d" % (path.name, node.lineno))
    assert found == [], "the controller's mode changed outside instrument.py at " + ", ".join(found)


def _instrument_names(tree):
    """Names bound to `app.instrument` in a function (e.g. `ins = app.instrument`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr == "instrument":
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_commands_call_the_instruments_verbs_never_its_parts():
    tree = _tree(FIRMWARE / "commands.py")
    aliases = _instrument_names(tree)
    used, wrong = set(), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        v = node.value
        is_instrument = (isinstance(v, ast.Attribute) and v.attr == "instrument") or (
            isinstance(v, ast.Name) and v.id in aliases
        )
        if is_instrument:
            used.add(node.attr)
            if node.attr in PARTS or node.attr.startswith("_"):
                wrong.append("%s (line %d)" % (node.attr, node.lineno))
        elif isinstance(v, ast.Name) and v.id == "app" and node.attr.startswith("_"):
            wrong.append("app.%s (line %d)" % (node.attr, node.lineno))
    assert wrong == [], "commands.py reaches into the instrument: " + ", ".join(wrong)
    # ... and what it does use exists there (a verb renamed in one place only fails here)
    instrument = _tree(FIRMWARE / "instrument.py")
    cls = next(n for n in instrument.body if isinstance(n, ast.ClassDef) and n.name == "Instrument")
    defined = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    defined |= {
        t.attr for n in ast.walk(cls) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Attribute)
    }
    assert used - defined == set(), used - defined


def _record_fields():
    tree = _tree(FIRMWARE / "history.py")
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FIELDS" for t in node.targets):
            return {e.value for e in node.value.elts}
    raise AssertionError("history.py has no FIELDS")


def test_the_telemetry_record_is_described_once():
    fields = _record_fields()
    assert {"pressure_mpa", "setpoint_mpa", "p_min_mpa", "thickness_um"} <= fields
    lists = []
    for path in _python_files():
        if path == FIRMWARE / "history.py" or "tests" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(names & fields) >= 4:
                    lists.append("%s:%d" % (path.relative_to(ROOT), node.lineno))
    assert lists == [], "the record's fields listed again at " + ", ".join(lists)


def test_the_protocol_version_and_the_lockstep_frames_are_written_once():
    version = json.loads((FIRMWARE / "version.json").read_text())
    assert isinstance(version["protocol_version"], int) and version["firmware_version"]
    frames = ("<IiII", "<IIiIiiii")
    again = []
    for path in _python_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "tests":
            continue
        for node in ast.walk(_tree(path)):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and any(getattr(t, "id", None) in ("PROTOCOL_VERSION", "FIRMWARE_VERSION") for t in node.targets)
            ):
                again.append("%s:%d version" % (rel, node.lineno))
            if isinstance(node, ast.Constant) and node.value in frames and rel != Path("firmware/boards/virtual.py"):
                again.append("%s:%d frame" % (rel, node.lineno))
    assert again == [], ", ".join(again)
