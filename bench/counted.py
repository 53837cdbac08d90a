"""Run ``python -m bot ARGS`` with the database's use logged at exit, whatever the command's
log level (``database use: N SQL statements in T transactions, C connections opened, at most
P in use at once`` on stderr); with ``BENCH_STATEMENTS_FILE`` set, also write the number of
SQL statements executed so far to that file ten times a second (read by ``firing.py`` to
leave start-up out, and to count an instance it kills).

    python bench/counted.py send --all
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event
from sqlalchemy.engine import Engine

executed = 0


def count(*_: Any) -> None:
    global executed
    executed += 1


def write_every(path: Path, seconds: float) -> None:
    while True:
        path.with_suffix(".tmp").write_text(str(executed))
        path.with_suffix(".tmp").replace(path)
        time.sleep(seconds)


if __name__ == "__main__":
    logging.getLogger("briefing.database").setLevel(logging.INFO)
    if target := os.environ.get("BENCH_STATEMENTS_FILE"):
        event.listen(Engine, "before_cursor_execute", count)
        threading.Thread(target=write_every, args=(Path(target), 0.1), daemon=True).start()
    sys.argv = ["briefing", *sys.argv[1:]]
    runpy.run_module("bot", run_name="__main__")
