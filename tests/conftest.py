import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MICROPYTHON = str(Path(sys.executable).parent / "micropython")
os.environ.pop("STACKPRESS_PORT", None)
