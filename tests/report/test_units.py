"""The shared unit helper: every renderer shows a number in a readable unit."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.report.units import format_bytes, format_rate, format_time, number


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.00412, "4.12 ms"),
        (2.12e-3, "2.12 ms"),
        (1.5, "1.5 s"),
        (3.2e-7, "320 ns"),
        (4.5e-6, "4.5 µs"),
        (0.9997, "1 s"),  # 999.7 ms rounds to 1000 ms: one unit up
        (125.0, "125 s"),
        (None, "-"),
        (math.nan, "-"),
    ],
)
def test_times_pick_their_unit(seconds: float | None, text: str) -> None:
    assert format_time(seconds) == text


@pytest.mark.parametrize(
    ("rate", "unit", "text"),
    [
        (304_123.0, "turns", "304k turns/s"),
        (2_500_000.0, None, "2.5M items/s"),
        (12.0, "tokens", "12 tokens/s"),
        (0.5, "docs", "0.5 docs/s"),
        (999_900.0, "x", "1M x/s"),
        (None, "x", "-"),
    ],
)
def test_rates_use_si_prefixes(rate: float | None, unit: str | None, text: str) -> None:
    assert format_rate(rate, unit) == text


def test_bytes_and_plain_numbers() -> None:
    assert format_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert format_bytes(512) == "512 B"
    assert number(12345.0) == "12345"
    assert number(0.000123) == "0.000123"


@given(st.floats(min_value=1e-12, max_value=1e6))
def test_no_scientific_notation_ever(seconds: float) -> None:
    text = format_time(seconds) + format_rate(1 / seconds, "items")
    assert "e+" not in text
    assert "e-" not in text
