"""`stackpress flash`: put this firmware on a fixture, changing only what differs.

1. The running firmware is asked to hand over (`repl`): it stops the motor where it is
   (the self-locking worm and screw keep the load: pressure stays, nothing moves) and
   saves its mode and setpoint. A locked fixture refuses: `unlock` first.
2. Through mpremote, the board's files are hashed (SHA-256, on the board) and only those
   that differ are copied: modules compiled by mpy-cross, main.py as source. Files of
   the firmware's folders that this firmware does not have are removed (a stale .py
   would be imported before its new .mpy). Every file is hashed again afterwards.
3. The board is reset; the firmware reads the force, then resumes what it was doing.
   Its `firmware_version` and `protocol_version` must be this tree's.
"""
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .link import Link, LinkError
from .reset import RESET_CODE, _wait_for_firmware
from .virtual import image

MPREMOTE = str(Path(sys.executable).parent / "mpremote")
FOLDERS = ("stackpress", "boards")  # the firmware's own: cleaned of files it no longer has

HASH_CODE = """
import hashlib, binascii, os, json
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
out = {}
for p in %s:
    out[p] = h(p)
for d in %s:
    try:
        for n in os.listdir(d):
            out.setdefault(d + '/' + n, h(d + '/' + n))
    except OSError:
        pass
print('HASHES' + json.dumps(out))
"""


class FlashError(Exception):
    pass


def local_versions(firmware):
    text = (Path(firmware) / "stackpress" / "version.py").read_text()
    fw = re.search(r'FIRMWARE_VERSION = "([^"]+)"', text).group(1)
    proto = int(re.search(r"PROTOCOL_VERSION = (\d+)", text).group(1))
    return fw, proto


def _mpremote(port, *args, timeout=120):
    p = subprocess.run([MPREMOTE, "connect", port, "resume", *args], capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode:
        raise FlashError("mpremote %s: %s" % (" ".join(args[:2]), (p.stderr or p.stdout).strip()[-400:]))
    return p.stdout


def board_hashes(port, paths):
    out = _mpremote(port, "exec", HASH_CODE % (json.dumps(sorted(paths)), json.dumps(list(FOLDERS))))
    i = out.find("HASHES")
    if i < 0:
        raise FlashError("the board did not report its files' hashes: %s" % out[-300:])
    return json.loads(out[i + 6:].strip().splitlines()[0])


def _sha(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def flash(port, firmware=image.FIRMWARE, progress=None, as_json=False):
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    want_fw, want_proto = local_versions(firmware)
    say("compiling the firmware with mpy-cross")
    files = image.firmware_files(firmware)
    before = None
    try:
        with Link(port, timeout_s=1.5) as link:
            before = link.command("status", retries=1)
            r = link.command("repl")
            say("fixture parked in '%s' at %.3f MPa (the drive holds the load; it resumes after the reset)"
                % (r["resume_on_reset"], before["pressure_mpa"]))
    except LinkError:
        say("no firmware answers on %s: flashing through the REPL" % port)
    time.sleep(0.3)
    say("reading the board's files")
    have = board_hashes(port, files)
    changed = sorted(p for p, data in files.items() if have.get(p) != _sha(data))
    stale = sorted(p for p, h in have.items() if h is not None and p not in files
                   and p.split("/")[0] in FOLDERS)
    with tempfile.TemporaryDirectory() as tmp:
        if changed:
            mk = "import os\nfor d in %s:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % json.dumps(
                sorted({p.rsplit("/", 1)[0] for p in changed if "/" in p}))
            _mpremote(port, "exec", mk)
        for i, p in enumerate(changed, 1):
            say("copying %s (%d of %d, %d bytes)" % (p, i, len(changed), len(files[p])))
            local = Path(tmp) / p.replace("/", "_")
            local.write_bytes(files[p])
            _mpremote(port, "fs", "cp", str(local), ":" + p)
    for p in stale:
        say("removing %s (not in this firmware)" % p)
        _mpremote(port, "exec", "import os\nos.remove(%r)\n" % p)
    say("verifying")
    after = board_hashes(port, files)
    wrong = [p for p, data in files.items() if after.get(p) != _sha(data)]
    if wrong:
        raise FlashError("after copying, these files differ on the board: %s; run flash again" % ", ".join(wrong))
    say("resetting")
    try:
        _mpremote(port, "exec", RESET_CODE.decode(), timeout=20)
    except (FlashError, subprocess.TimeoutExpired):
        pass  # the board went away mid-command: that is the reset
    info = _wait_for_firmware(port, timeout_s=30)
    if info is None:
        raise FlashError("no firmware answered on %s after the reset" % port)
    if info.get("firmware_version") != want_fw or info.get("protocol_version") != want_proto:
        raise FlashError("the board runs firmware %s (protocol %s), not %s (protocol %s)" % (
            info.get("firmware_version"), info.get("protocol_version"), want_fw, want_proto))
    say("waiting for the firmware to take over (it reads the force first)")
    with Link(port, timeout_s=2.0) as link:
        end = time.monotonic() + 30
        while True:
            st = link.command("status")
            resumed = before is None or st["state"] == before["state"] or (
                before["state"] == "hold" and st["state"] == "ramp")
            if (resumed and st.get("sensor_trusted", True)) or time.monotonic() > end:
                break
            time.sleep(0.3)
    result = {"firmware_version": want_fw, "protocol_version": want_proto, "files": len(files),
              "changed": changed, "removed": stale, "state": st["state"], "setpoint_mpa": st["setpoint_mpa"],
              "pressure_mpa": st["pressure_mpa"], "wall_s": round(time.monotonic() - t0, 1),
              "before": None if before is None else {k: before[k] for k in ("firmware_version", "state",
                                                                          "setpoint_mpa", "pressure_mpa")}}
    if as_json:
        print(json.dumps(result))
    else:
        print("firmware %s (protocol %d) on %s: %d of %d files changed%s, in %.1f s" % (
            want_fw, want_proto, port, len(changed), len(files),
            (", %d removed" % len(stale)) if stale else "", result["wall_s"]))
        print("fixture %s at %.3f MPa (setpoint %.3f)" % (st["state"], st["pressure_mpa"], st["setpoint_mpa"]))
    return 0

