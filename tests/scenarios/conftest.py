"""Fixtures for the scenario plugin's pytester tests."""

from __future__ import annotations

import pytest

from tests.scenarios.support import WORKLOADS


@pytest.fixture
def wl(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory with the shared workloads importable as module ``wl``."""
    pytester.makepyfile(wl=WORKLOADS)
    pytester.syspathinsert()
    return pytester
