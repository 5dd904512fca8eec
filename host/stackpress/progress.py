"""Progress of long work: one line that updates in place on a terminal (stderr), and
nothing at all when stderr is a file or a pipe, so a script's log holds no carriage-return
noise."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, prefix: str = "") -> None:
        self.on = sys.stderr.isatty()
        self.shown = False
        self.prefix = prefix

    def show(self, text: str) -> None:
        if self.on:
            print("\r" + (self.prefix + text).ljust(60), end="", file=sys.stderr, flush=True)
            self.shown = True

    def end(self) -> None:
        """Leaves the last line standing (the next output starts below it)."""
        if self.shown:
            print(file=sys.stderr)
            self.shown = False

    def clear(self) -> None:
        """Wipes the line (the next output takes its place)."""
        if self.shown:
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
            self.shown = False
