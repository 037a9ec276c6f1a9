from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.faults import FaultArgumentError, Schedule
from pytest_edge.faults.schedule import Counter


def fired(schedule: Schedule, calls: int, seed: str = "s") -> list[int]:
    counter = Counter(schedule, seed)
    return [n for n in (counter.tick() for _ in range(calls)) if n]


def test_default_fires_the_first_call_once() -> None:
    assert fired(Schedule(), 5) == [1]


def test_nth_alone_fires_that_call_once() -> None:
    assert fired(Schedule(nth=3), 10) == [3]


def test_nth_without_every_and_more_times_fires_consecutive_calls() -> None:
    assert fired(Schedule(nth=3, times=2), 10) == [3, 4]


def test_every_alone_starts_at_every() -> None:
    assert fired(Schedule(every=3, times=None), 10) == [3, 6, 9]


def test_nth_and_every_combine() -> None:
    assert fired(Schedule(nth=2, every=3, times=None), 10) == [2, 5, 8]
    assert fired(Schedule(nth=2, every=3, times=2), 10) == [2, 5]


def test_probability_is_replayable_from_the_seed() -> None:
    schedule = Schedule(probability=0.3, times=None)
    first = fired(schedule, 200, seed="42:test")
    assert first == fired(schedule, 200, seed="42:test")
    assert first != fired(schedule, 200, seed="43:test")
    assert 30 < len(first) < 90


def test_probability_zero_and_one() -> None:
    assert fired(Schedule(probability=0.0, times=None), 50) == []
    assert fired(Schedule(probability=1.0, times=None), 5) == [1, 2, 3, 4, 5]


def test_window_limits_firing_to_a_time_span() -> None:
    assert fired(Schedule(window=(0.0, 60.0), times=None), 3) == [1, 2, 3]
    assert fired(Schedule(window=(60.0, 120.0), times=None), 3) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nth": 0}, r"nth=0: must be a whole number >= 1"),
        ({"every": -2}, r"every=-2: must be a whole number >= 1"),
        ({"nth": 1.5}, r"nth=1.5"),
        ({"times": 0}, r"times=0: must be a whole number >= 1, or None"),
        ({"probability": 1.5}, r"probability=1.5: must be a number from 0 to 1"),
        ({"probability": -0.1}, r"probability=-0.1"),
        ({"probability": float("nan")}, r"probability=nan"),
        ({"window": (2.0, 1.0)}, r"window=\(2.0, 1.0\): must be \(start, end\)"),
    ],
)
def test_bad_counting_options_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FaultArgumentError, match=message):
        Schedule(**kwargs)  # type: ignore[arg-type]


@given(
    nth=st.none() | st.integers(1, 20),
    every=st.none() | st.integers(1, 20),
    times=st.none() | st.integers(1, 10),
    calls=st.integers(0, 100),
)
def test_counting_rule_matches_its_documented_formula(
    nth: int | None, every: int | None, times: int | None, calls: int
) -> None:
    first = nth if nth is not None else (every if every is not None else 1)
    expected = [
        n for n in range(1, calls + 1) if n >= first and (every is None or (n - first) % every == 0)
    ]
    if times is not None:
        expected = expected[:times]
    assert fired(Schedule(nth=nth, every=every, times=times), calls) == expected


def test_event_text_is_its_description() -> None:
    from pytest_edge.faults.events import EventLog

    event = EventLog().bound(3).record("fail", "os.fsync", 2, "app.py:7 in save", "raised X")
    assert (
        str(event)
        == event.describe()
        == "#3 fail(os.fsync) call #2 at app.py:7 in save [python layer]: raised X"
    )
