"""A workload that hangs in two threads, in a module light to import (the isolated child
imports it before the timeout clock has much run)."""

from __future__ import annotations

import threading
import time


def _spin_forever() -> None:
    while True:
        time.sleep(0.05)


def wait_in_two_threads() -> None:
    """Hang in a helper thread and in the main thread."""
    threading.Thread(target=_spin_forever, name="helper", daemon=True).start()
    threading.Event().wait()
