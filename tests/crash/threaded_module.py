"""A module that starts a thread at import: the template process warns about it."""

from __future__ import annotations

import threading
from typing import Any

_stop = threading.Event()
threading.Thread(target=_stop.wait, name="import-time-thread", daemon=True).start()


def workload(state_dir: str) -> None:
    _stop.set()


def recover(state_dir: str) -> dict[str, Any]:
    return {}
