"""Hypothesis strategies of pytest-edge (imports hypothesis: not re-exported from the root)."""

from __future__ import annotations

from pytest_edge.faults.strategies import counting_options, fault_plans, fault_specs

__all__ = ["counting_options", "fault_plans", "fault_specs"]
