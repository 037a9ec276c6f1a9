"""A durable store written as libraries are: ``os`` functions bound to names at import.

temp file + fsync + ``os.replace`` + directory fsync, through references taken when this
module was imported. A Python-level tracer installed after that import cannot see them; the
system-call layer sees the calls whatever name they are made through.
"""

from __future__ import annotations

import json
import os
from os import replace as _replace
from typing import Any

_fsync = os.fsync
_open = os.open
_write = os.write
_close = os.close


def save(state_dir: str, state: dict[str, Any]) -> None:
    path = os.path.join(state_dir, "state.json")
    fd = _open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write(fd, json.dumps(state).encode())
        _fsync(fd)
    finally:
        _close(fd)
    _replace(path + ".tmp", path)
    dfd = _open(state_dir, os.O_RDONLY)
    try:
        _fsync(dfd)
    finally:
        _close(dfd)
