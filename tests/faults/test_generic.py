from __future__ import annotations

import asyncio
import errno
import os
import time

import pytest

from pytest_edge.faults import FaultArgumentError, FaultInjector
from pytest_edge.faults.patching import active_sites
from tests.faults import helpers


def test_fail_raises_on_the_nth_call_and_logs_it() -> None:
    with FaultInjector() as faults:
        armed = faults.fail("tests.faults.helpers.ping", OSError(errno.EIO, "boom"), nth=2)
        assert helpers.ping() == 1
        with pytest.raises(OSError, match="boom") as info:
            helpers.ping()
        assert info.value.errno == errno.EIO
        assert helpers.ping() == 1  # times=1 by default
    [event] = faults.fired
    assert (event.fault, event.target, event.call) == ("fail", "tests.faults.helpers.ping", 2)
    assert "test_generic.py" in event.where
    assert armed.fired == [event]
    assert any("injected by pytest-edge" in note for note in info.value.__notes__)


def test_patch_is_where_the_name_is_looked_up() -> None:
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.ping", ValueError("looked up"), times=None)
        with pytest.raises(ValueError, match="looked up"):
            helpers.uses_ping()  # looks `ping` up in helpers' globals


def test_every_and_unlimited_times() -> None:
    results = []
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.ping", TimeoutError(), every=3, times=None)
        for _ in range(9):
            try:
                results.append(helpers.ping())
            except TimeoutError:
                results.append("T")
    assert results == [1, 1, "T", 1, 1, "T", 1, 1, "T"]


def test_originals_are_restored_by_identity_in_any_disarm_order() -> None:
    before = (helpers.ping, os.fsync, helpers.Service.__dict__["call"])
    with FaultInjector() as faults:
        a = faults.fail("tests.faults.helpers.ping", ValueError)
        b = faults.slow("tests.faults.helpers.ping", 0.0, times=None)
        c = faults.fail("os.fsync", OSError(errno.EIO, "x"), nth=10**9)
        d = faults.fail("tests.faults.helpers.Service.call", ValueError)
        assert helpers.ping is not before[0]
        a.disarm()
        assert helpers.ping is not before[0]  # b still armed
        c.disarm()
        assert os.fsync is before[1]
        b.disarm()
        d.disarm()
        a.disarm()  # twice is harmless
    assert (helpers.ping, os.fsync, helpers.Service.__dict__["call"]) == before
    assert helpers.ping is before[0]
    assert "call" in helpers.Service.__dict__
    assert active_sites() == []


def test_inherited_attribute_is_removed_again() -> None:
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.Child.call", ValueError("child"))
        assert "call" in helpers.Child.__dict__
        with pytest.raises(ValueError, match="child"):
            helpers.Child().call(1)
        assert helpers.Service().call(1) == 2
    assert "call" not in helpers.Child.__dict__


def test_methods_static_and_class_methods() -> None:
    service = helpers.Service()
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.Service.call", KeyError("k"), nth=2)
        faults.fail("tests.faults.helpers.Service.static", ValueError("static"))
        faults.slow("tests.faults.helpers.Service.klass", 0.0)
        assert service.call(2) == 4
        with pytest.raises(KeyError):
            service.call(2)
        with pytest.raises(ValueError, match="static"):
            helpers.Service.static(1)
        assert helpers.Service.klass(3) == "Service:3"
    assert isinstance(helpers.Service.__dict__["static"], staticmethod)
    assert isinstance(helpers.Service.__dict__["klass"], classmethod)
    assert helpers.Service.static(1) == 2


def test_coroutine_functions_raise_inside_and_sleep_asynchronously() -> None:
    async def scenario() -> tuple[object, float]:
        with FaultInjector() as faults:
            faults.fail("tests.faults.helpers.aping", ConnectionError("down"), nth=1)
            faults.slow("tests.faults.helpers.aping", 0.05, nth=2)
            coro = helpers.aping()  # nothing raised until awaited
            assert asyncio.iscoroutine(coro)
            with pytest.raises(ConnectionError):
                await coro
            start = time.perf_counter()
            value = await asyncio.gather(helpers.aping(7), helpers.aping(8))
            return value, time.perf_counter() - start

    value, elapsed = asyncio.run(scenario())
    assert value == [7, 8]
    assert elapsed >= 0.04


def test_slow_adds_latency_only_to_picked_calls() -> None:
    with FaultInjector() as faults:
        faults.slow("tests.faults.helpers.ping", 0.05, nth=2)
        helpers.ping()
        start = time.perf_counter()
        helpers.ping()
        second = time.perf_counter() - start
        helpers.ping()
    assert second >= 0.05
    [event] = faults.fired  # only call 2 was delayed (a timing bound on calls 1 and 3 would
    assert (event.call, event.effect) == (2, "delayed 0.05 s")  # be flaky on a busy host)


def test_probability_replays_with_the_same_seed() -> None:
    def run(seed: int) -> list[bool]:
        out = []
        with FaultInjector(seed=seed, label="t") as faults:
            faults.fail("tests.faults.helpers.ping", ValueError, probability=0.5, times=None)
            for _ in range(64):
                try:
                    helpers.ping()
                    out.append(False)
                except ValueError:
                    out.append(True)
        return out

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_exception_class_and_fresh_instances() -> None:
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.ping", OSError(errno.EIO, "x"), times=2)
        errors = []
        for _ in range(2):
            try:
                helpers.ping()
            except OSError as exc:
                errors.append(exc)
    assert errors[0] is not errors[1]
    assert errors[0].errno == errors[1].errno == errno.EIO


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f.fail("no_such_module_xyz.fn", ValueError), r"target='no_such_module_xyz.fn'"),
        (lambda f: f.fail("os.no_such_function", ValueError), r"'os' has no attribute"),
        (lambda f: f.fail("fsync", ValueError), r"target='fsync': expected a dotted name"),
        (lambda f: f.fail("os.fsync", "boom"), r"exc='boom': expected an exception"),
        (lambda f: f.fail("os.fsync", ValueError, nth=0), r"nth=0"),
        (lambda f: f.fail("os.fsync", ValueError, probability=2), r"probability=2"),
        (lambda f: f.slow("os.fsync", -1), r"seconds=-1"),
        (lambda f: f.fail("os.sep", ValueError), r"not a callable"),
    ],
)
def test_bad_arguments_fail_at_arming(call: object, message: str) -> None:
    before = os.fsync
    with FaultInjector() as faults, pytest.raises(FaultArgumentError, match=message):
        call(faults)  # type: ignore[operator]
    assert os.fsync is before
    assert active_sites() == []


def test_arm_kind_names_unknown_kinds() -> None:
    with (
        FaultInjector() as faults,
        pytest.raises(
            FaultArgumentError, match=r"kind='explode': unknown fault kind; use one of disk_full"
        ),
    ):
        faults.arm_kind("explode", {})


def test_attributes_of_built_in_types_cannot_be_patched_and_say_so() -> None:
    with (
        FaultInjector() as faults,
        pytest.raises(
            FaultArgumentError,
            match=r"'Connection.execute' cannot be patched .*use the sqlite faults",
        ),
    ):
        faults.fail("sqlite3.Connection.execute", OSError)
    assert active_sites() == []


def test_a_stale_wrapper_put_back_by_monkeypatch_is_seen_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = helpers.ping
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.ping", ValueError("x"), nth=10**9)
        monkeypatch.setattr(helpers, "ping", lambda x=1: -1)  # saves our wrapper as "old"
    assert helpers.ping is real  # disarm put the original back under monkeypatch's value
    monkeypatch.undo()  # ... and monkeypatch now restores the stale wrapper
    stale = helpers.ping
    assert stale is not real
    assert stale() == 1  # harmless: a wrapper without hooks calls the original
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.ping", ValueError("x"), nth=10**9)
    assert helpers.ping is real  # a new fault restores the true original


def test_counting_is_exact_across_threads() -> None:
    import threading

    errors: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(500):
            try:
                helpers.ping()
            except TimeoutError:
                with lock:
                    errors.append(1)

    with FaultInjector() as faults:
        armed = faults.fail("tests.faults.helpers.ping", TimeoutError(), every=2, times=None)
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert armed.calls == 2000
    assert len(errors) == len(armed.fired) == 1000
    assert sorted(e.call for e in armed.fired) == list(range(2, 2001, 2))
