"""Numbers in readable units, shared by every renderer (HTML, Markdown, terminal).

One place picks the unit, so the same value reads the same everywhere: times in ns/µs/ms/s,
rates with k/M/G (``304k turns/s``, never ``3.04e+05``), sizes in B/KiB/MiB/GiB. A chart picks
one unit for its whole axis with `time_unit` / `rate_unit` from the largest value it shows.
"""

from __future__ import annotations

import math

TIME_UNITS: tuple[tuple[float, str], ...] = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
RATE_PREFIXES: tuple[tuple[float, str], ...] = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
_BYTES: tuple[tuple[int, str], ...] = ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in scientific notation.

    Integers past the significant digits keep them all (``12345``, not ``1.23e+04``).
    """
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def time_unit(seconds: float) -> tuple[float, str]:
    """The scale and name that show ``seconds`` as a number >= 1 (s, ms, µs, ns)."""
    magnitude = abs(seconds)
    for scale, name in TIME_UNITS:
        if magnitude >= scale:
            return scale, name
    return TIME_UNITS[-1]


def format_time(seconds: float | None, digits: int = 3) -> str:
    """``0.00412`` -> ``4.12 ms``; None (or NaN/inf) -> ``-``."""
    if seconds is None or not _usable(seconds):
        return "-"
    scale, name = time_unit(seconds)
    text = number(seconds / scale, digits)
    if abs(float(text)) >= 1000 and scale < 1.0:  # 999.7 ms rounds to 1000 ms: say 1 s
        scale, name = TIME_UNITS[[s for s, _ in TIME_UNITS].index(scale) - 1]
        text = number(seconds / scale, digits)
    return f"{text} {name}"


def rate_unit(rate: float) -> tuple[float, str]:
    """The scale and SI prefix (``k``, ``M``, ``G`` or none) for a rate."""
    magnitude = abs(rate)
    for scale, prefix in RATE_PREFIXES:
        if magnitude >= scale:
            return scale, prefix
    return RATE_PREFIXES[-1]


def format_rate(rate: float | None, unit: str | None = None, digits: int = 3) -> str:
    """``304123.0, "turns"`` -> ``304k turns/s``; None -> ``-``."""
    if rate is None or not _usable(rate):
        return "-"
    scale, prefix = rate_unit(rate)
    text = number(rate / scale, digits)
    if abs(float(text)) >= 1000 and scale < RATE_PREFIXES[0][0]:
        scale, prefix = RATE_PREFIXES[[s for s, _ in RATE_PREFIXES].index(scale) - 1]
        text = number(rate / scale, digits)
    return f"{text}{prefix} {unit or 'items'}/s"


def format_bytes(value: float | None) -> str:
    """``3_400_000`` -> ``3.2 MiB``; None -> ``-``."""
    if value is None or not _usable(value):
        return "-"
    for scale, name in _BYTES:
        if abs(value) >= scale:
            return f"{value / scale:.1f} {name}"
    return f"{value:.0f} B"


def format_count(value: float) -> str:
    """A count with thousands separators (``1,307``)."""
    return f"{value:,.0f}"
