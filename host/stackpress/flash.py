"""`stackpress flash`: put this firmware on a fixture, changing only what differs, and
never leave it without a firmware that runs.

0. Before anything on the fixture changes: every file compiles (main.py too, though it
   goes as source), and the board's flash has room for the new files beside the old ones
   (`flash_free_bytes` in status).
1. The port is borrowed from the stackpress process that owns it, if one does (a logger,
   `serve`: it takes the port back when the flash ends, and catches up on what it missed).
   The running firmware is asked to hand over (`repl`): it stops the motor where it is
   (the self-locking worm and screw keep the load: pressure stays, nothing moves) and
   saves its mode and setpoint. A locked fixture refuses: `unlock` first.
2. Through mpremote, the board's files are hashed (SHA-256, on the board) and only those
   that differ are copied, each as FILE.new beside the old one: modules compiled by
   mpy-cross, main.py as source. A copy that fails leaves the old firmware whole.
3. Then, in one step on the board, each old file becomes FILE.old and each FILE.new takes
   its place; files of the firmware's folders that this firmware does not have (a stale
   .py would be imported before its new .mpy) become .old too. Every file is hashed again.
4. The board is reset; the firmware reads the force, then resumes what it was doing. Its
   `firmware_version` and `protocol_version` must be this tree's. If it does not start,
   the .old files are put back and the board reset into the firmware it had; either way
   the message says which firmware runs and in what state. The .old files stay until the
   next flash (which removes them first): the running firmware owns the line, and they are
   the previous firmware, should it be wanted back by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import firmware as fwfiles
from .link import Link, LinkError
from .protocol import safe_mode
from .reset import RESET_CODE, wait_for_firmware

MPREMOTE = str(Path(sys.executable).parent / "mpremote")
FOLDERS = ("stackpress", "boards")  # the firmware's own: cleaned of files it no longer has

# A line a file, printed as it is hashed: the board's heap at the REPL still holds the
# firmware, and one string of every hash (3 KB for 30 files) may find no block that big.
HASH_CODE = """
import hashlib, binascii, os
def h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(memoryview(b)[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
seen = set()
def say(p):
    seen.add(p)
    print('HASH', p, h(p))
for p in %s:
    say(p)
for d in %s:
    try:
        for n in os.listdir(d):
            if d + '/' + n not in seen:
                say(d + '/' + n)
    except OSError:
        pass
print('HASHES END')
"""


# Blocks a staged copy may need beyond the files' own bytes (littlefs metadata, rounding).
SPARE_BYTES = 16 * 4096


class FlashError(Exception):
    pass


def _checked_files(firmware: Path | str) -> dict[str, bytes]:
    """The firmware as the board gets it, every file compiled first (main.py included,
    though it goes as source): a syntax error stops here, before the fixture is touched."""
    try:
        files = fwfiles.firmware_files(firmware)
        main = Path(firmware) / "main.py"
        if main.exists():
            fwfiles.compiled("main.py", main.read_bytes())
    except (RuntimeError, OSError) as e:
        raise FlashError("%s; nothing was changed on the fixture" % e) from None
    if "main.py" not in files:
        raise FlashError("%s has no main.py; nothing was changed on the fixture" % firmware)
    return files


def _room_needed(files: dict[str, bytes]) -> int:
    return sum(-(-len(d) // 4096) * 4096 for d in files.values()) + SPARE_BYTES


def _state(st: dict[str, Any]) -> str:
    if safe_mode(st):
        return "but %s" % safe_mode(st)
    return "%s at %.3f MPa (setpoint %.3f)" % (st["state"], st["pressure_mpa"], st["setpoint_mpa"])


def _mpremote(port: str, *args: str, timeout: float = 120) -> str:
    p = subprocess.run([MPREMOTE, "connect", port, "resume", *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode:
        raise FlashError("mpremote %s: %s" % (" ".join(args[:2]), (p.stderr or p.stdout).strip()[-400:]))
    return p.stdout


def board_hashes(port: str, paths: dict[str, bytes]) -> dict[str, str | None]:
    out = _mpremote(port, "exec", HASH_CODE % (json.dumps(sorted(paths)), json.dumps(list(FOLDERS))))
    if "HASHES END" not in out:
        raise FlashError("the board did not report its files' hashes: %s" % out[-300:])
    hashes: dict[str, str | None] = {}
    for line in out.splitlines():
        if line.startswith("HASH "):
            _, path, digest = line.split(" ", 2)
            hashes[path] = None if digest == "None" else digest
    return hashes


# On the board, in one exec: each old file steps aside as .old, each staged .new takes
# its place; stale files step aside too (a rollback puts them all back).
SWAP_CODE = """
import os
def mv(a, b):
    try:
        os.remove(b)
    except OSError:
        pass
    try:
        os.rename(a, b)
    except OSError:
        pass
for p in %s:
    mv(p, p + '.old')
    os.rename(p + '.new', p)
for p in %s:
    mv(p, p + '.old')
"""
ROLLBACK_CODE = """
import os
for p in %s:
    try:
        os.stat(p + '.old')
        try:
            os.remove(p)
        except OSError:
            pass
        os.rename(p + '.old', p)
    except OSError:
        try:
            os.remove(p)
        except OSError:
            pass
"""
REMOVE_CODE = """
import os
for p in %s:
    try:
        os.remove(p)
    except OSError:
        pass
"""


def _stage(port: str, files: dict[str, bytes], changed: list[str], say: Callable[[str], None]) -> None:
    """Copy each changed file beside the old one, as FILE.new."""
    with tempfile.TemporaryDirectory() as tmp:
        if changed:
            mk = "import os\nfor d in %s:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % json.dumps(
                sorted({p.rsplit("/", 1)[0] for p in changed if "/" in p})
            )
            _mpremote(port, "exec", mk)
        for i, p in enumerate(changed, 1):
            say("copying %s (%d of %d, %d bytes)" % (p, i, len(changed), len(files[p])))
            local = Path(tmp) / p.replace("/", "_")
            local.write_bytes(files[p])
            _mpremote(port, "fs", "cp", str(local), ":" + p + ".new")


def _remove(port: str, paths: list[str]) -> None:
    if paths:
        _mpremote(port, "exec", REMOVE_CODE % json.dumps(paths))


def _rollback(port: str, changed: list[str], stale: list[str]) -> None:
    _mpremote(port, "exec", ROLLBACK_CODE % json.dumps(changed + stale))


def _reset(port: str) -> None:
    try:
        _mpremote(port, "exec", RESET_CODE.decode(), timeout=20)
    except (FlashError, subprocess.TimeoutExpired):
        pass  # the board went away mid-command: that is the reset


def _back_to(port: str) -> str:
    """Reset into the firmware the board has, and say what runs and in what state."""
    _reset(port)
    info, why = wait_for_firmware(port, timeout_s=30, direct=True)
    if info is None:
        return (
            "no firmware answers on %s now (%s): the board is at its MicroPython REPL, the motor still; "
            "'stackpress flash' again, or 'mpremote connect %s resume fs ls' to look" % (port, why, port)
        )
    try:
        with Link(port, timeout_s=2.0) as link:
            end = time.monotonic() + 30
            while True:
                st = link.command("status")
                if st.get("sensor_trusted", True) or time.monotonic() > end:
                    break
                time.sleep(0.3)
    except LinkError as e:
        return "the fixture runs firmware %s, but its status did not come: %s" % (info["firmware_version"], e)
    return "the fixture runs firmware %s again, %s" % (st["firmware_version"], _state(st))


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def flash(
    port: str,
    firmware: Path | str = fwfiles.FIRMWARE,
    progress: Callable[[str], None] | None = None,
    as_json: bool = False,
) -> int:
    """Put `firmware` on the fixture on `port`, borrowing the port from its owner."""
    from .connect import open_link

    _checked_files(firmware)  # a file that does not compile: refused before anything is borrowed
    lease = open_link(port, timeout_s=1.5)
    try:
        if lease.remote:
            lease.handover("flash")
        else:
            lease.lend("being flashed by this process (pid %d)" % os.getpid())
        return _flash(port, firmware, progress, as_json)
    finally:
        lease.close()  # the owner takes its port back (or this process lets it go)


def _flash(port: str, firmware: Path | str, progress: Callable[[str], None] | None, as_json: bool) -> int:
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    try:
        want_fw, want_proto = fwfiles.versions(firmware)
    except (OSError, ValueError, KeyError) as e:
        raise FlashError("%s is not a stackpress firmware tree (stackpress/version.json): %s" % (firmware, e)) from None
    say("compiling the firmware with mpy-cross")
    files = _checked_files(firmware)
    need = _room_needed(files)
    before = None
    try:
        with Link(port, timeout_s=1.5) as link:
            before = link.command("status", retries=1)
            free = before.get("flash_free_bytes")
            if isinstance(free, int) and free < need:
                raise FlashError(
                    "this firmware needs up to %d bytes of the board's flash while it is copied (old "
                    "and new side by side), and it has %d free; nothing was changed: the fixture runs "
                    "firmware %s, %s" % (need, free, before["firmware_version"], _state(before))
                )
            r = link.command("repl")
            if safe_mode(before):
                say("the fixture is %s; replacing the firmware" % safe_mode(before))
            else:
                say(
                    "fixture parked in '%s' at %.3f MPa (the drive holds the load; it resumes after the reset)"
                    % (r["resume_on_reset"], before["pressure_mpa"])
                )
    except LinkError:
        say("no firmware answers on %s: flashing through the REPL" % port)
    time.sleep(0.3)
    say("reading the board's files")
    have = board_hashes(port, files)
    changed = sorted(p for p, data in files.items() if have.get(p) != _sha(data))
    ours = [p for p, h in have.items() if h is not None and p.split("/")[0] in FOLDERS]
    stale = sorted(p for p in ours if p not in files and not p.endswith((".new", ".old")))
    _remove(port, sorted(p for p in ours if p.endswith((".new", ".old"))))  # left by a flash that was cut
    try:
        _stage(port, files, changed, say)
    except (FlashError, subprocess.TimeoutExpired) as e:
        try:
            _remove(port, [p + ".new" for p in changed])
        except (FlashError, subprocess.TimeoutExpired):
            pass
        raise FlashError("%s; nothing was changed: %s" % (e, _back_to(port))) from None
    say("putting %d new files in place" % len(changed))
    _mpremote(port, "exec", SWAP_CODE % (json.dumps(changed), json.dumps(stale)))
    say("verifying")
    after = board_hashes(port, files)
    wrong = [p for p, data in files.items() if after.get(p) != _sha(data)]
    info = None
    if not wrong:
        say("resetting")
        _reset(port)
        info, why = wait_for_firmware(port, timeout_s=30, direct=True)
        if info is not None and safe_mode(info):
            why = "the board is %s" % safe_mode(info)
            info = None
            with Link(port, timeout_s=1.5) as link:
                link.command("repl")  # the safe mode hands over, so the previous files go back
        elif info is not None and (
            info.get("firmware_version") != want_fw or info.get("protocol_version") != want_proto
        ):
            why = "the board runs firmware %s (protocol %s), not %s (protocol %s)" % (
                info.get("firmware_version"),
                info.get("protocol_version"),
                want_fw,
                want_proto,
            )
            info = None
    else:
        why = "after copying, these files differ on the board: %s" % ", ".join(wrong)
    if info is None:
        say("the new firmware does not run (%s): putting the previous one back" % why)
        _rollback(port, changed, stale)
        raise FlashError("the new firmware did not start (%s); %s" % (why, _back_to(port)))
    say("waiting for the firmware to take over (it reads the force first)")
    with Link(port, timeout_s=2.0) as link:
        end = time.monotonic() + 30
        while True:
            st = link.command("status")
            resumed = (
                before is None
                or st["state"] == before["state"]
                or (before["state"] == "hold" and st["state"] == "ramp")
            )
            if (resumed and st.get("sensor_trusted", True)) or time.monotonic() > end:
                break
            time.sleep(0.3)
    result = {
        "firmware_version": want_fw,
        "protocol_version": want_proto,
        "files": len(files),
        "changed": changed,
        "removed": stale,
        "state": st["state"],
        "setpoint_mpa": st["setpoint_mpa"],
        "pressure_mpa": st["pressure_mpa"],
        "wall_s": round(time.monotonic() - t0, 1),
        "before": None
        if before is None
        else {k: before.get(k) for k in ("firmware_version", "state", "setpoint_mpa", "pressure_mpa")},
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(
            "firmware %s (protocol %d) on %s: %d of %d files changed%s, in %.1f s"
            % (
                want_fw,
                want_proto,
                port,
                len(changed),
                len(files),
                (", %d removed" % len(stale)) if stale else "",
                result["wall_s"],
            )
        )
        print("fixture %s at %.3f MPa (setpoint %.3f)" % (st["state"], st["pressure_mpa"], st["setpoint_mpa"]))
    return 0
