"""Atomic persistence of small JSON documents on the board's littlefs.

Write a temporary file, then rename it over the old one: littlefs renames
atomically, so a power cut leaves either the old or the new file, never a torn one.
"""

import json
import os


class Store:
    def __init__(self, root):
        self._root = root.rstrip("/")

    def _path(self, name):
        return "%s/%s.json" % (self._root, name)

    def load(self, name):
        """Return (document or None, error or None)."""
        try:
            with open(self._path(name)) as f:
                return json.load(f), None
        except OSError:
            return None, None
        except ValueError as e:
            return None, "%s.json unreadable: %s" % (name, e)

    def free_bytes(self):
        """Room left on the filesystem (what `stackpress flash` checks before it starts)."""
        st = os.statvfs(self._root or "/")
        return st[0] * st[4]

    def save(self, name, doc):
        path = self._path(name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, path)

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass
