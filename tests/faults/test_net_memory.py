from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_edge.faults import FaultArgumentError, FaultInjector
from pytest_edge.faults.patching import active_sites
from pytest_edge.machine import MIB, HostMachine, current_machine


@pytest.fixture
def server() -> Iterator[int]:
    """A local echo server; yields its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                data = conn.recv(100)
                if data:
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(5)
    srv.close()


def echo(port: int, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"hi")
        return s.recv(10)


def test_refused_and_timeout_for_one_port(server: int) -> None:
    with FaultInjector() as faults:
        faults.network("refused", host="127.0.0.1", port=server)
        with pytest.raises(ConnectionRefusedError, match="Connection refused"):
            echo(server)
    assert echo(server) == b"hi"
    with FaultInjector() as faults:
        faults.network("timeout", port=server)
        with pytest.raises(TimeoutError, match="timed out"):
            echo(server)
        probe = socket.socket()
        assert probe.connect_ex(("127.0.0.1", server)) != 0
        probe.close()
    assert [e.call for e in faults.fired] == [1, 2]


def test_other_ports_are_untouched(server: int) -> None:
    with FaultInjector() as faults:
        faults.network("refused", port=server + 1 if server < 65535 else server - 1)
        assert echo(server) == b"hi"


def test_reset_on_the_first_data_call(server: int) -> None:
    with FaultInjector() as faults:
        faults.network("reset", host="localhost", port=server)  # matches 127.0.0.1 too
        with pytest.raises(ConnectionResetError, match="reset by peer"):
            echo(server)
    assert faults.fired[0].where == f"127.0.0.1:{server}"


def test_dns_failure() -> None:
    with FaultInjector() as faults:
        faults.network("dns", host="models.example.internal")
        with pytest.raises(socket.gaierror, match="Name or service not known"):
            socket.getaddrinfo("models.example.internal", 443)
        with pytest.raises(socket.gaierror):
            socket.gethostbyname("models.example.internal")
        assert socket.getaddrinfo("127.0.0.1", 80)


def test_asyncio_streams_see_network_faults(server: int) -> None:
    async def scenario() -> None:
        with FaultInjector() as faults:
            faults.network("refused", port=server)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", server)

    asyncio.run(scenario())


def test_socket_methods_are_restored() -> None:
    with FaultInjector() as faults:
        for error in ("refused", "reset", "dns"):
            faults.network(error)
        assert "connect" in socket.socket.__dict__
    for name in ("connect", "connect_ex", "send", "recv"):
        assert name not in socket.socket.__dict__
    assert socket.getaddrinfo.__module__ == "socket"
    assert active_sites() == []


def test_network_bad_arguments() -> None:
    with FaultInjector() as faults:
        with pytest.raises(FaultArgumentError, match=r"error='slow': unknown; use one of"):
            faults.network("slow")
        with pytest.raises(FaultArgumentError, match=r"port=70000"):
            faults.network("refused", port=70000)


def test_simulated_memory_pressure_lowers_available_memory() -> None:
    before = current_machine().memory()
    with FaultInjector() as faults:
        faults.memory_pressure(mb=4096)
        under = current_machine().memory()
        assert current_machine().pressure_bytes == 4096 * MIB  # type: ignore[attr-defined]
        assert "injected pressure" in under.bounded_by
        # Other processes move the real figure too: a wide margin around the 4 GB taken.
        if before.available_bytes > 5120 * MIB:
            assert 3072 * MIB < before.available_bytes - under.available_bytes < 5120 * MIB
        else:
            assert under.available_bytes < 1024 * MIB
    assert current_machine().pressure_bytes == 0  # type: ignore[attr-defined]
    assert "injected pressure" not in current_machine().memory().bounded_by


def test_held_memory_pressure_really_allocates_and_releases() -> None:
    process = psutil.Process()
    rss = process.memory_info().rss
    with FaultInjector() as faults:
        faults.memory_pressure(mb=64, hold=True)
        grown = process.memory_info().rss - rss
        assert grown > 60 * MIB
    assert process.memory_info().rss - rss < 16 * MIB


def test_memory_pressure_refuses_to_endanger_the_host() -> None:
    with FaultInjector() as faults:
        with pytest.raises(FaultArgumentError, match=r"mb=.* with hold=True: the host has"):
            faults.memory_pressure(mb=10**9, hold=True)
        with pytest.raises(FaultArgumentError, match=r"mb=0: must be a number of MB > 0"):
            faults.memory_pressure(mb=0)


class _DeviceWithPressureHook:
    """The shape of a simulated machine that takes pressure itself."""

    def __init__(self) -> None:
        self.pressure = 0

    def add_pressure(self, nbytes: int) -> None:
        self.pressure += nbytes

    def remove_pressure(self, nbytes: int) -> None:
        self.pressure -= nbytes


def test_memory_pressure_uses_the_machines_own_hook_when_it_has_one() -> None:
    from pytest_edge.machine import use_machine

    device = _DeviceWithPressureHook()
    with use_machine(device), FaultInjector() as faults:  # type: ignore[arg-type]
        faults.memory_pressure(mb=100)
        assert device.pressure == 100 * MIB
        assert current_machine() is device
    assert device.pressure == 0


def test_host_pressure_arithmetic(tmp_path: Path) -> None:
    _write_meminfo(tmp_path, available_kb=1000 * 1024)
    host = HostMachine(tmp_path)
    host.add_pressure(300 * MIB)
    host.add_pressure(200 * MIB)
    reading = host.memory()
    assert reading.available_bytes <= 500 * MIB
    assert reading.bounded_by.endswith(" - injected pressure")
    host.add_pressure(5000 * MIB)
    assert host.memory().available_bytes == 0
    host.remove_pressure(10**12)  # never below zero
    assert host.pressure_bytes == 0
    assert "injected pressure" not in host.memory().bounded_by
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        host.add_pressure(-1)


def test_memory_pressure_needs_a_machine_that_takes_it() -> None:
    from pytest_edge.machine import use_machine

    class NoHook:
        name = "bare"

    with (
        use_machine(NoHook()),  # type: ignore[arg-type]
        FaultInjector() as faults,
        pytest.raises(FaultArgumentError, match=r"'bare' takes no injected pressure"),
    ):
        faults.memory_pressure(mb=10)


def _write_meminfo(root: Path, available_kb: int) -> None:
    (root / "proc").mkdir()
    (root / "proc" / "meminfo").write_text(f"MemAvailable: {available_kb} kB\n")
