"""The JSON renderer: the documented schema, the benchmark comparison as data."""

from __future__ import annotations

import json

from pytest_edge.report import render
from pytest_edge.report.json_format import SCHEMA, SCHEMA_ID
from tests.report.samples import sample_report


def check_schema(node: object, schema: dict[str, object]) -> None:
    """The subset of JSON Schema that SCHEMA uses: type, required, properties, items, enum."""
    kinds = {"object": dict, "array": list, "string": str, "null": type(None)}
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert isinstance(node, tuple(kinds[str(t)] for t in types))
    if "enum" in schema:
        assert node in schema["enum"]  # type: ignore[operator]
    if "const" in schema:
        assert node == schema["const"]
    if isinstance(node, dict):
        for key in schema.get("required", []):  # type: ignore[attr-defined]
            assert key in node, key
        for key, sub in schema.get("properties", {}).items():  # type: ignore[attr-defined]
            if key in node:
                check_schema(node[key], sub)
    if isinstance(node, list) and "items" in schema:
        for item in node:
            check_schema(item, schema["items"])  # type: ignore[arg-type]


def test_json_follows_the_documented_schema_and_carries_the_comparison() -> None:
    document = json.loads(render(sample_report(), "json"))
    check_schema(document, SCHEMA)
    assert document["schema"] == SCHEMA_ID
    bench = next(s for s in document["sections"] if s["key"] == "benchmarks")
    data = bench["data"]
    assert data["schema"] == "pytest-edge-benchmarks/1"
    rows = {r["benchmark"]: r for r in data["comparison"]["results"]}
    assert rows["t.py::test_a"]["verdict"] == "slower"
    assert rows["t.py::test_a"]["regression"] is True
    assert data["comparison"]["exit_code"] == 1
    assert data["throughput"][0]["device_items_per_s_estimate"] == 25000.0
