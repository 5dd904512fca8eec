"""Safe boot: what runs when the firmware cannot start, so a board never stays at the REPL.

main.py calls `failed(error)` when building or running the firmware raised (MemoryError
on a fragmented heap, a corrupt module, a driver's exception). The motor is left still
(the worm is self-locking: force stays where it was), the error is kept on flash in
bootfail.json, and the board resets to try again. After FAILED_STARTS_MAX failures in
a row it stops trying and serves a minimal protocol instead: `hello` and `status`
answer with the error, `reset` clears the count and tries again, `repl` hands the board
over (so `stackpress flash` can replace the firmware). The count is cleared once the
firmware has run CLEAR_AFTER_S (app.py), so failures weeks apart never add up.

Imported only after a failure: it costs the running firmware no heap. What only the safe
mode's serving needs is imported there: a start after a failure first asks retry(), and
what that loads is garbage by the time the firmware is built, in a heap left crumbled.
"""

import gc
import os
import sys
from binascii import hexlify

from stackpress.store import Store

FAILED_STARTS_MAX = 3
ERROR_CHARS = 400  # of the traceback kept: a status reply must fit a small heap
ALLOWED = ("hello", "status", "reset", "repl")
BOOT_ID = hexlify(os.urandom(4)).decode()  # as app.py's: the key of this life's records


STORE = Store("/")  # the firmware's own files: bootfail.json beside state.json
UNREADABLE = {"failures": FAILED_STARTS_MAX, "error": "unreadable bootfail.json"}


def load():
    """The record of failed starts: {"failures": n, "error": text}, or None."""
    doc, err = STORE.load("bootfail")
    if err or (doc is not None and not isinstance(doc, dict)):
        return UNREADABLE  # torn by a power cut: a failure, never a clean start
    return doc


def clear():
    STORE.remove("bootfail")


def _deliberate():
    """Mark the coming reset as asked for in the firmware's state file (app.py reads it: on
    the RP2040 a machine.reset() is reported as a watchdog reset)."""
    try:
        st, _ = STORE.load("state")
        if isinstance(st, dict):
            st["deliberate_reset"] = True
            STORE.save("state", st)
    except Exception:
        pass  # the cause is only reported: the reset goes on


def _describe(e):
    try:
        import io

        s = io.StringIO()
        sys.print_exception(e, s)
        text = s.getvalue()
    except Exception:
        text = repr(e)
    return text[-ERROR_CHARS:]


def _last_line(text):
    return str(text).strip().split("\n")[-1]


def _board():
    """The board module, for its park(), reset() and unique_id() (no pins are set up
    but the ones they touch). None if even that cannot be imported."""
    try:
        if sys.platform == "rp2":
            from boards import pico as board
        else:
            from boards import virtual as board
        return board
    except Exception:
        return None


def retry():
    """At boot, before the firmware is built: True to try starting it, False when the
    board is to stay in safe mode (FAILED_STARTS_MAX failures in a row)."""
    doc = load()
    if doc is None or doc.get("failures", 0) < FAILED_STARTS_MAX:
        return True
    serve(doc, _board())
    return False


def failed(e):
    """The firmware raised `e` while it started or ran: keep it, then reset to try again,
    or serve the safe mode once FAILED_STARTS_MAX starts in a row have failed."""
    board = _board()
    if board is not None:
        try:
            board.park()
        except Exception:
            pass
    doc = load() or {"failures": 0}
    n = doc.get("failures", 0)
    doc = {"failures": (n if isinstance(n, int) else 0) + 1, "error": _describe(e)}
    try:
        STORE.save("bootfail", doc)
    except Exception:
        pass  # a full or failing flash: the retries still count down in this boot's memory
    # The error's last line only: a host waiting for a firmware takes "Traceback" for a REPL.
    _say({"t": "evt", "event": "boot_failed", "failures": doc["failures"], "error": _last_line(doc["error"])})
    if doc["failures"] < FAILED_STARTS_MAX and board is not None:
        board.reset()
    serve(doc, board)


def _say(obj):
    from stackpress.protocol import encode

    try:
        sys.stdout.buffer.write(encode(obj))
    except Exception:
        pass


def _reply(cid, data=None, err=None, msg=None):
    if err is None:
        _say({"t": "rep", "id": cid, "ok": True, "data": data})
    else:
        _say({"t": "rep", "id": cid, "ok": False, "err": err, "msg": msg})


def _hello(doc, board):
    from stackpress.protocol import MAX_LINE
    from stackpress.version import FIRMWARE_VERSION, PROTOCOL_VERSION

    v = sys.implementation.version
    return {
        "firmware_version": FIRMWARE_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "board": getattr(getattr(board, "Board", None), "name", sys.platform),
        "runtime": "%s %d.%d.%d" % (sys.implementation.name, v[0], v[1], v[2]),
        "fixture_id": board.unique_id() if board is not None else None,
        "boot": 0,
        "boot_id": BOOT_ID,
        "max_line_bytes": MAX_LINE,
        "safe_mode": True,
        "boot_error": doc.get("error"),
        "failed_starts": doc.get("failures"),
    }


def _status(doc, board):
    gc.collect()
    d = _hello(doc, board)
    d["state"] = "safe_mode"
    d["alarms"] = ["boot_failed"]
    d["heap_free_bytes"] = gc.mem_free()
    d["heap_alloc_bytes"] = gc.mem_alloc()
    d["help"] = "the firmware could not start; 'stackpress reset' tries again, 'stackpress flash' replaces it"
    return d


def serve(doc, board):
    """The safe mode's loop: answers until the host asks for a reset or the REPL."""
    import select

    import micropython

    from stackpress.protocol import FrameError, LineReader, parse

    micropython.kbd_intr(-1)  # as the firmware: a stray Ctrl-C is a byte, `repl` hands over
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    rd = sys.stdin.buffer.read
    lines = LineReader()
    try:
        while True:
            if not poll.poll(1000):
                continue
            b = rd(1)
            if not b:
                continue
            line = lines.feed(b[0])
            if not line:
                continue
            cid = None
            try:
                obj = parse(line)
                cid = obj["id"]
                cmd = obj["cmd"]
                if cmd == "hello":
                    _reply(cid, _hello(doc, board))
                elif cmd == "status":
                    _reply(cid, _status(doc, board))
                elif cmd == "repl":
                    clear()  # the host is replacing or inspecting: its next reset tries afresh
                    _deliberate()
                    _reply(cid, {"state": "repl", "resume_on_reset": "idle"})
                    return
                elif cmd == "reset":
                    clear()
                    _deliberate()
                    _reply(cid, {"resume": "idle"})
                    if board is not None:
                        board.reset()
                else:
                    _reply(
                        cid,
                        err="safe_mode",
                        msg="the firmware could not start (%s); in safe mode only %s answer"
                        % (_last_line(doc.get("error")), ", ".join(ALLOWED)),
                    )
            except FrameError as e:
                _reply(cid if cid is not None else e.id, err=e.code, msg=e.msg)
            except Exception as e:  # the safe mode must not fall to the REPL either
                _reply(cid, err="internal", msg=repr(e))
    finally:
        micropython.kbd_intr(3)
