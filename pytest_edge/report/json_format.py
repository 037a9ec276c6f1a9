"""JSON renderer. The document's shape (``schema`` = `SCHEMA_ID`) is `SCHEMA`, a JSON Schema.

Top level: ``schema``, ``title``, ``created``, ``status`` (worst of the tests' outcome and
the sections' statuses), ``outcome`` (pytest's counts, exit code and failures; null when the
report was not made by a pytest run), ``attention`` (the banner line), ``problems``,
``metadata`` and ``sections``; each section has ``key``, ``title``, ``status``, ``blocks``
(each with a ``type``: paragraph | table | distribution_chart | line_chart) and ``data`` (the
section's
machine-readable payload; the benchmark section's is described in `pytest_edge.bench.report`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from pytest_edge.report.model import (
    Block,
    DistributionChart,
    EdgeReport,
    LineChart,
    OutcomeSummary,
    Paragraph,
    Table,
)

SCHEMA_ID = "pytest-edge-report/1"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "type": "object",
    "required": ["schema", "title", "created", "status", "sections"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "title": {"type": "string"},
        "created": {"type": "string", "description": "ISO 8601, UTC"},
        "status": {"enum": ["info", "ok", "warning", "failed"]},
        "attention": {"type": "string"},
        "metadata": {"type": "object"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "name", "message", "anchor"],
            },
        },
        "outcome": {
            "type": ["object", "null"],
            "required": ["counts", "exit_code", "exit_word", "failures", "duration_s"],
            "properties": {
                "counts": {"type": "object"},
                "failures": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["nodeid", "outcome", "message", "details", "when"],
                    },
                },
            },
        },
        "sections": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "title", "status", "blocks", "data"],
                "properties": {
                    "key": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"enum": ["info", "ok", "warning", "failed"]},
                    "blocks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {
                                    "enum": [
                                        "paragraph",
                                        "table",
                                        "distribution_chart",
                                        "line_chart",
                                    ]
                                }
                            },
                        },
                    },
                    "data": {"type": "object"},
                },
            },
        },
    },
}

_TYPES: dict[type, str] = {
    Paragraph: "paragraph",
    Table: "table",
    DistributionChart: "distribution_chart",
    LineChart: "line_chart",
}


def _block(block: Block) -> dict[str, Any]:
    return {"type": _TYPES[type(block)], **asdict(block)}


def _outcome(outcome: OutcomeSummary | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {
        "counts": dict(outcome.counts),
        "exit_code": outcome.exit_code,
        "exit_word": outcome.exit_word,
        "failures": [asdict(f) for f in outcome.failures],
        "duration_s": outcome.duration_s,
    }


def report_to_dict(report: EdgeReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "title": report.title,
        "created": report.created,
        "status": report.status,
        "attention": report.attention(),
        "metadata": dict(report.metadata),
        "problems": [asdict(p) for p in report.problems],
        "outcome": _outcome(report.outcome),
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "status": s.status,
                "blocks": [_block(b) for b in s.blocks],
                "data": dict(s.data),
            }
            for s in report.sections
        ],
    }


def render_json(report: EdgeReport) -> str:
    return json.dumps(report_to_dict(report), indent=2, allow_nan=False, default=str) + "\n"
