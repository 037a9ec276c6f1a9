"""Memory sizes as people write them ("300 MB", "1.5 GB"). "MB" means MiB everywhere."""

from __future__ import annotations

import re

from pytest_edge.errors import EdgeInputError

MIB = 1024 * 1024
_UNITS = {"": 1, "b": 1 / MIB, "kb": 1 / 1024, "kib": 1 / 1024, "mb": 1, "mib": 1}
_UNITS.update({"gb": 1024, "gib": 1024})
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size_mb(value: object, where: str) -> float:
    """`value` ("300 MB", "2 GB", 512) in MiB; `EdgeInputError` naming `where` otherwise.

    A bare number means MB. Units: B, KB/KiB, MB/MiB, GB/GiB (all binary: 1 MB = 1024 KB).
    """
    if isinstance(value, bool):
        raise EdgeInputError(f"{where}: {value!r} is not a memory size; use e.g. '300 MB'")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise EdgeInputError(
            f"{where}: {value!r} is not a memory size; use e.g. '300 MB' or '1.5 GB'"
        )
    if unit not in _UNITS:
        raise EdgeInputError(
            f"{where}: unknown unit {unit!r} in {value!r}; use B, KB, MB or GB (binary, MB = MiB)"
        )
    size = number * _UNITS[unit]
    if size <= 0:
        raise EdgeInputError(f"{where}: {value!r} must be larger than zero")
    return size
