"""The package carries what it runs: `pip install ./host` (or pipx) copies the firmware and
the fixture's parameter and scenario files into stackpress/bundled_files/, where
stackpress/bundled.py finds them when there is no source tree around the package. An
editable install (make setup) reads them from the tree instead."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent.parent
CARRIED = {
    "firmware": shutil.ignore_patterns("__pycache__", "*.pyc"),
    "hardware": shutil.ignore_patterns("*.py", "*.svg", "*.md", "__pycache__"),  # fixture.json, scenarios/
}


class BuildWithFiles(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        into = Path(self.build_lib) / "stackpress" / "bundled_files"
        for name, ignore in CARRIED.items():
            if not (ROOT / name).is_dir():
                raise SystemExit("building stackpress needs %s/ beside host/: build from the repository" % name)
            shutil.copytree(ROOT / name, into / name, ignore=ignore, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithFiles})
