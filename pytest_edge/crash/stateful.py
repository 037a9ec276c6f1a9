"""A hypothesis state machine whose rules are crashes and restarts of a workload.

Subclass ``CrashMachine``, name the workload and recover functions, and hand the class's
``TestCase`` to pytest: hypothesis chooses where each cycle is killed, checks after every
cycle that no acknowledged write was lost, and shrinks a failure to the shortest sequence
of crashes that shows it::

    class TestStore(CrashMachine):
        workload = "myapp.store:run"
        recover = "myapp.store:recover"
        crashpoints = ("after-save",)

    TestStoreCase = TestStore.TestCase
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pytest_edge.crash.harness import CrashSession, Target, target_name
from pytest_edge.crash.template import TemplateServer
from pytest_edge.lifetime import owned_tempdir

# One template process per (workload, recover) for all examples of a run: hypothesis runs
# many short examples while shrinking, and starting an interpreter for each would dominate.
_SERVERS: dict[tuple[str, str], TemplateServer] = {}


def _shared_server(workload: Target, recover: Target) -> TemplateServer:
    targets = (target_name(workload, "workload"), target_name(recover, "recover"))
    server = _SERVERS.get(targets)
    if server is None:
        workdir = owned_tempdir("crash")
        server = TemplateServer({"workload": targets[0], "recover": targets[1]}, workdir)
        _SERVERS[targets] = server
        atexit.register(_close, server, workdir)
    return server


def _close(server: TemplateServer, workdir: Path) -> None:
    server.close()
    shutil.rmtree(workdir, ignore_errors=True)


class CrashMachine(RuleBasedStateMachine):
    """Rules: kill after N acks, before the Nth event, at a crashpoint, or restart cleanly.

    Class attributes: ``workload``, ``recover`` (module-level callables or
    ``"module:function"``), ``mode`` (``"kill"`` or ``"power-loss"``), ``crashpoints``
    (names the workload reaches), ``max_acks``, ``max_events``, ``timeout``, ``max_states``.
    """

    workload: ClassVar[Target]
    recover: ClassVar[Target]
    mode: ClassVar[str] = "kill"
    crashpoints: ClassVar[tuple[str, ...]] = ()
    max_acks: ClassVar[int] = 8
    max_events: ClassVar[int] = 60
    timeout: ClassVar[float] = 30.0
    max_states: ClassVar[int] = 16
    seed: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.mkdtemp(prefix="pytest-edge-crash-machine-")
        cls = type(self)
        self.session = CrashSession(
            cls.workload,
            cls.recover,
            state_dir=self._dir,
            seed=cls.seed,
            mode=cls.mode,
            timeout=cls.timeout,
            max_states=cls.max_states,
            server=_shared_server(cls.workload, cls.recover),
        )

    def _healthy(self) -> bool:
        # no loss so far (a sequence that has acknowledged nothing yet is healthy, not a pass)
        return not self.session.report.failures

    @precondition(_healthy)
    @rule(n=st.integers(min_value=1, max_value=8))
    def crash_after_acks(self, n: int) -> None:
        self.session.cycle(f"acks:{min(n, type(self).max_acks)}")

    @precondition(_healthy)
    @rule(n=st.integers(min_value=1, max_value=1000))
    def crash_before_event(self, n: int) -> None:
        self.session.cycle(f"events:{1 + (n - 1) % type(self).max_events}")

    @precondition(lambda self: bool(type(self).crashpoints) and self._healthy())
    @rule(data=st.data(), nth=st.integers(min_value=1, max_value=3))
    def crash_at_crashpoint(self, data: Any, nth: int) -> None:
        name = data.draw(st.sampled_from(type(self).crashpoints), label="crashpoint")
        self.session.cycle(f"crashpoint:{name}:{nth}")

    @precondition(_healthy)
    @rule()
    def restart_without_writing(self) -> None:
        self.session.cycle("events:1")

    @invariant()
    def no_acknowledged_write_lost(self) -> None:
        assert not self.session.report.failures, str(self.session.report)

    def teardown(self) -> None:
        self.session.close()
        shutil.rmtree(self._dir, ignore_errors=True)
