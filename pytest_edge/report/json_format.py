"""JSON renderer. The document's shape (``schema`` = `SCHEMA_ID`) is `SCHEMA`, a JSON Schema.

Top level: ``schema``, ``title``, ``created``, ``status`` (worst section status) and
``sections``; each section has ``key``, ``title``, ``status``, ``blocks`` (each with a
``type``: paragraph | table | distribution_chart | line_chart) and ``data`` (the section's
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


def report_to_dict(report: EdgeReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "title": report.title,
        "created": report.created,
        "status": report.status,
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
