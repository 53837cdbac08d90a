"""Run ``python -m bot ARGS`` with the database's use logged at exit, whatever the command's
log level: ``database use: N SQL statements in T transactions, C connections opened, at most
P in use at once`` on stderr.

    python bench/counted.py send --all
"""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    logging.getLogger("briefing.database").setLevel(logging.INFO)
    sys.argv = ["briefing", *sys.argv[1:]]
    runpy.run_module("bot", run_name="__main__")
