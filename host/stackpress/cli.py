"""The `stackpress` command line: reads the arguments (cli_grammar.py), runs the command
(cli_fixture.py, cli_local.py), and turns what went wrong into a message and an exit code
(cli_grammar.EXIT_CODES, which --help shows)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .cli_fixture import (
    _simple,
    cmd_analog,
    cmd_calibrate,
    cmd_config,
    cmd_hold,
    cmd_jog,
    cmd_monitor,
    cmd_profile,
    cmd_profile_check,
    cmd_release,
    cmd_repl,
    cmd_status,
    cmd_tune,
)
from .cli_grammar import AT_A_PORT, build_parser
from .cli_local import (
    cmd_demo,
    cmd_export,
    cmd_flash,
    cmd_list,
    cmd_log,
    cmd_note,
    cmd_report,
    cmd_reset,
    cmd_serve,
    cmd_sim,
    cmd_tempco,
)
from .connect import open_link
from .link import DeviceError, LinkError
from .protocol import BadValue
from .refusal import in_cli_words

LINKED = {
    "analog": cmd_analog,
    "status": cmd_status,
    "hold": cmd_hold,
    "release": cmd_release,
    "gap": _simple("gap"),
    "idle": _simple("idle"),
    "ack": _simple("ack"),
    "tare": _simple("tare"),
    "lock": _simple("lock"),
    "unlock": _simple("unlock"),
    "config": cmd_config,
    "tune": cmd_tune,
    "jog": cmd_jog,
    "monitor": cmd_monitor,
    "repl": cmd_repl,
    "profile": cmd_profile,
    "calibrate": cmd_calibrate,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `stackpress status | head -1`: the reader had what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more at exit either
        return 0


def _main(argv: Sequence[str] | None) -> int:
    if os.environ.get("STACKPRESS_DEBUG"):
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    a = build_parser().parse_args(argv)
    from .owner import PROGRAM

    PROGRAM[0] = " ".join(
        ["stackpress", a.cmd]
        + ([a.action] if a.cmd in ("profile", "analog") else [])
        + ([a.key] if a.cmd == "config" and a.key else [])
    )
    try:
        if a.cmd in AT_A_PORT and not a.port and not (a.cmd == "profile" and a.action == "check"):
            from .discover import only_fixture

            a.port = only_fixture()
            print("stackpress: %s, the only fixture attached" % a.port, file=sys.stderr)
        if a.cmd == "sim":
            return cmd_sim(a)
        if a.cmd == "reset":
            return cmd_reset(a)
        if a.cmd == "demo":
            return cmd_demo(a)
        if a.cmd == "profile" and a.action == "check":
            return cmd_profile_check(a)
        if a.cmd == "report":
            return cmd_report(a)
        if a.cmd == "export":
            return cmd_export(a)
        if a.cmd == "flash":
            return cmd_flash(a)
        if a.cmd == "log":
            return cmd_log(a)
        if a.cmd == "serve":
            return cmd_serve(a)
        if a.cmd == "note":
            return cmd_note(a)
        if a.cmd == "fleet":
            from .fleet import cmd_fleet

            return cmd_fleet(a)
        if a.cmd == "list":
            return cmd_list(a)
        if a.cmd == "tempco":
            return cmd_tempco(a)
        with open_link(a.port) as link:
            link.hello()
            return LINKED[a.cmd](a, link)
    except LinkError as e:
        print("stackpress: %s" % e, file=sys.stderr)
        return 3
    except DeviceError as e:
        print("stackpress: refused (%s): %s" % (e.code, in_cli_words(e.code, e.msg, PROGRAM[0])), file=sys.stderr)
        return 4
    except BadValue as e:
        print("stackpress: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
