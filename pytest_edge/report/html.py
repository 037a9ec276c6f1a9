"""Self-contained HTML renderer: inline CSS and inline SVG charts, no script, no network."""

from __future__ import annotations

import math
from html import escape

from pytest_edge.report.model import (
    DistributionChart,
    EdgeReport,
    LineChart,
    Paragraph,
    Table,
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24;
max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left}th{background:#f6f8fa}
.note,.warning,.estimate{padding:.4rem .7rem;border-left:4px solid;margin:.5rem 0}
.note{border-color:#0969da;background:#ddf4ff}.warning{border-color:#bf8700;background:#fff8c5}
.estimate{border-color:#8250df;background:#fbefff}
.status-failed{color:#cf222e}.status-warning{color:#9a6700}.status-ok{color:#1a7f37}
figure{margin:.5rem 0 1.5rem}figcaption{font-size:.85rem;color:#57606a}
svg text{font-size:11px;fill:#1b1f24}
"""
_WIDTH = 680
_LEFT = 150
_RIGHT = 20
_COLORS = ("#8c959f",)  # earlier runs grey; the current run (or B) blue


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _scale(low: float, high: float) -> tuple[float, float]:
    if not math.isfinite(low) or not math.isfinite(high):
        return 0.0, 1.0
    if high <= low:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return max(0.0, low - pad), high + pad


def render_box_chart(chart: DistributionChart) -> str:
    """Horizontal box plots (whiskers: min..max, box: q1..q3, bar: median)."""
    row = 30
    height = 40 + row * len(chart.series)
    low, high = _scale(
        min((s.minimum for s in chart.series), default=0.0),
        max((s.maximum for s in chart.series), default=1.0),
    )
    span = _WIDTH - _LEFT - _RIGHT

    def x(value: float) -> float:
        return _LEFT + (value - low) / (high - low) * span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{escape(chart.title)}">'
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="10" x2="{x(tick):.1f}" y2="{height - 25}" '
            'stroke="#eaeef2"/>'
            f'<text x="{x(tick):.1f}" y="{height - 10}" text-anchor="middle">'
            f"{_fmt(tick)}</text>"
        )
    for i, s in enumerate(chart.series):
        y = 15 + i * row
        mid = y + row / 2 - 4
        newer = s.label.endswith("current") or ": B " in s.label
        color = "#0969da" if newer else _COLORS[0]
        parts.append(
            f'<text x="{_LEFT - 8}" y="{mid + 4:.1f}" text-anchor="end">'
            f"{escape(s.label)} (n={s.n})</text>"
            f'<line x1="{x(s.minimum):.1f}" y1="{mid:.1f}" x2="{x(s.maximum):.1f}" '
            f'y2="{mid:.1f}" stroke="{color}"/>'
            f'<rect x="{x(s.q1):.1f}" y="{y + 2}" width="{max(x(s.q3) - x(s.q1), 1):.1f}" '
            f'height="{row - 12}" fill="{color}" fill-opacity="0.35" stroke="{color}"/>'
            f'<line x1="{x(s.median):.1f}" y1="{y + 2}" x2="{x(s.median):.1f}" '
            f'y2="{y + row - 10}" stroke="{color}" stroke-width="3">'
            f"<title>median {_fmt(s.median)} {escape(chart.unit)}</title></line>"
        )
    parts.append("</svg>")
    return (
        f"<figure>{''.join(parts)}<figcaption>{escape(chart.title)} "
        f"({escape(chart.unit)}; box: quartiles, bar: median, line: min to max)"
        "</figcaption></figure>"
    )


def render_line_chart(chart: LineChart) -> str:
    """Values over runs; the last point (the current run) is drawn larger."""
    height = 200
    values = [v for _, v in chart.points]
    low, high = _scale(min(values, default=0.0), max(values, default=1.0))
    count = max(len(chart.points), 2)
    span = _WIDTH - _LEFT - _RIGHT

    def x(index: int) -> float:
        return _LEFT + index / (count - 1) * span

    def y(value: float) -> float:
        return 15 + (1 - (value - low) / (high - low)) * (height - 60)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{escape(chart.title)}">'
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(tick):.1f}" x2="{_WIDTH - _RIGHT}" y2="{y(tick):.1f}" '
            f'stroke="#eaeef2"/><text x="{_LEFT - 8}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(chart.points))
    parts.append(f'<polyline points="{path}" fill="none" stroke="#0969da"/>')
    for i, (label, value) in enumerate(chart.points):
        last = i == len(chart.points) - 1
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="{5 if last else 3}" '
            f'fill="{"#cf222e" if last else "#0969da"}"><title>{escape(label)}: '
            f"{_fmt(value)} {escape(chart.unit)}</title></circle>"
            f'<text x="{x(i):.1f}" y="{height - 25}" text-anchor="middle" '
            f'transform="rotate(20 {x(i):.1f} {height - 25})">{escape(label[:12])}</text>'
        )
    parts.append("</svg>")
    return (
        f"<figure>{''.join(parts)}<figcaption>{escape(chart.title)} "
        f"({escape(chart.unit)}; last point: this run)</figcaption></figure>"
    )


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: EdgeReport) -> str:
    body: list[str] = [
        f"<h1>{escape(report.title)}</h1>",
        f"<p>Generated {escape(report.created)}. Status: "
        f'<span class="status-{report.status}">{report.status}</span>.</p>',
    ]
    for section in report.sections:
        body.append(
            f'<section id="{escape(section.key)}"><h2>{escape(section.title)} '
            f'<small class="status-{section.status}">[{section.status}]</small></h2>'
        )
        for block in section.blocks:
            if isinstance(block, Paragraph):
                css = f' class="{block.kind}"' if block.kind != "text" else ""
                label = f"<strong>{block.kind.capitalize()}:</strong> " if css else ""
                body.append(f"<p{css}>{label}{escape(block.text)}</p>")
            elif isinstance(block, Table):
                body.append(_table(block))
            elif isinstance(block, DistributionChart):
                body.append(render_box_chart(block))
            else:
                body.append(render_line_chart(block))
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
