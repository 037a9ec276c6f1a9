"""Inline SVG charts for the HTML report: box plots and history lines that read at a glance.

Every chart picks its own unit from the values it shows (ns/µs/ms/s, or k/M for rates),
starts its value axis at zero (or goes logarithmic when one sample is far beyond the rest),
names the axis, wraps long labels onto lines of their own instead of clipping them, and
colours a series by its verdict with the verdict also written beside it. The SVG has a
``viewBox`` and no fixed width, so it scales with its container.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from pytest_edge.report.model import DistributionChart, LineChart
from pytest_edge.report.units import TIME_UNITS, number, rate_unit, time_unit

WIDTH = 540  # narrow enough that a phone's 360 px keep the 12 px text readable
PAD = 12
CHAR_PX = 7.4  # a generous average advance of the 12px sans-serif labels
LINE_PX = 15
FONT = 12

GREY = "#6e7781"
_VERDICT_COLOURS = {
    "slower": "#cf222e",
    "regression": "#cf222e",
    "failed": "#cf222e",
    "faster": "#1a7f37",
    "same": "#0969da",
    "inconclusive": "#9a6700",
    "current": "#0969da",
}
_TIME_SCALE = dict((name, scale) for scale, name in TIME_UNITS)
_TIME_SCALE["us"] = 1e-6


def verdict_colour(verdict: str) -> str:
    """The colour of a verdict word (``slower`` red, ``faster`` green...); grey otherwise."""
    word = verdict.split()[0].lower() if verdict.strip() else ""
    return _VERDICT_COLOURS.get(word, GREY)


def wrap(text: str, width_px: float) -> list[str]:
    """``text`` broken into lines that fit ``width_px``: at spaces and at the separators of
    test ids (``::``, ``/``, ``[``, ``-``...), and inside a word only when it alone is too long."""
    limit = max(8, int(width_px / CHAR_PX))
    tokens = [t for t in re.split(r"(?<=[\s/:\[\]\-_.,=])", text) if t]
    lines: list[str] = []
    current = ""
    for token in tokens:
        while len(token) > limit:
            if current:
                lines.append(current.rstrip())
                current = ""
            lines.append(token[:limit])
            token = token[limit:]
        if len(current) + len(token.rstrip()) > limit and current:
            lines.append(current.rstrip())
            current = ""
        current += token
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def run_label_lines(label: str) -> list[str]:
    """A run's label on the x axis: commit over date (``5fe51ae9 2026-12-01 23:33``)."""
    if "\n" in label:
        return label.split("\n")
    match = re.match(r"^(\S+) (\d{4}-\d\d-\d\d.*)$", label)
    return [match.group(1), match.group(2)] if match else [label]


def _text(x: float, y: float, lines: Sequence[str], anchor: str = "start", css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{0 if i == 0 else LINE_PX}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{cls}>{spans}</text>'


@dataclass(frozen=True)
class Axis:
    """A value axis: the unit shown, the factor from the data's unit to it, and its ticks."""

    unit: str
    factor: float  # shown value = data value * factor
    low: float  # in shown units
    high: float
    ticks: tuple[float, ...]
    log: bool = False

    def position(self, value: float) -> float:
        """0..1 along the axis for a value in shown units."""
        if self.log:
            value = max(value, self.low)
            return (math.log10(value) - math.log10(self.low)) / (
                math.log10(self.high) - math.log10(self.low)
            )
        return (value - self.low) / (self.high - self.low)


def display_unit(unit: str, largest: float) -> tuple[str, float]:
    """The unit to show values of ``unit`` in, and the factor to it, chosen from ``largest``
    (a time in ms whose largest value is 2,120,000 ns shows in ms; items/s get k/M)."""
    if unit in _TIME_SCALE:
        seconds = largest * _TIME_SCALE[unit]
        scale, name = time_unit(seconds) if seconds > 0 else (_TIME_SCALE[unit], unit)
        return name, _TIME_SCALE[unit] / scale
    if unit.endswith("/s"):
        scale, prefix = rate_unit(largest) if largest > 0 else (1.0, "")
        return f"{prefix}{unit}" if prefix else unit, 1 / scale
    return unit, 1.0


def nice_ticks(high: float, count: int = 5) -> tuple[float, ...]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least ``high``."""
    if high <= 0 or not math.isfinite(high):
        return (0.0, 1.0)
    raw = high / (count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high * (1 - 1e-9):
        ticks.append(ticks[-1] + step)
    return tuple(round(t, 12) for t in ticks)


def log_ticks(low: float, high: float) -> tuple[float, float, tuple[float, ...]]:
    """Decade bounds around ``low..high`` and ticks at 1, 2 and 5 of each decade."""
    first = math.floor(math.log10(low))
    last = math.ceil(math.log10(high))
    if last == first:
        last += 1
    multiples = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in multiples]
    return 10.0**first, 10.0**last, tuple(t for t in ticks if 10.0**first <= t <= 10.0**last)


def box_axis(chart: DistributionChart) -> Axis:
    """Linear from zero; logarithmic when an outlier lies beyond 4x the furthest whisker."""
    whisker_top = max((s.whiskers[1] for s in chart.series), default=1.0)
    top = max((max((s.maximum, *s.outliers)) for s in chart.series), default=1.0)
    unit, factor = display_unit(chart.unit, max(whisker_top, 1e-300))
    bottom = min((min((s.minimum, *s.outliers)) for s in chart.series), default=0.0)
    if bottom > 0 and whisker_top > 0 and top > 4 * whisker_top:
        low, high, ticks = log_ticks(bottom * factor, top * factor)
        return Axis(unit, factor, low, high, ticks, log=True)
    ticks = nice_ticks(top * factor)
    return Axis(unit, factor, 0.0, ticks[-1], ticks)


def _value_axis_svg(axis: Axis, left: float, right: float, top: float, bottom: float) -> str:
    """Vertical grid lines with tick labels under them, for a horizontal value axis."""
    parts = []
    for tick in axis.ticks:
        x = left + axis.position(tick) * (right - left)
        label = number(tick, 3)
        half = len(label) * CHAR_PX / 2
        at = min(max(x, half + 2), WIDTH - half - 2)  # the end ticks' labels stay inside
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" class="grid"/>'
            + _text(at, bottom + 14, [label], "middle", "tick")
        )
    return "".join(parts)


def render_box_chart(chart: DistributionChart) -> str:
    """Horizontal box plots: the label (wrapped) above each box, whiskers at 1.5 IQR, the
    samples beyond as dots, the axis in one unit chosen for this chart."""
    axis = box_axis(chart)
    left, right = PAD + 4, WIDTH - PAD - 4
    label_width = right - left
    parts: list[str] = []
    y = 8.0
    for s in chart.series:
        verdict = f" — {s.verdict}" if s.verdict else ""
        lines = wrap(f"{s.label} (n={s.n}){verdict}", label_width)
        parts.append(_text(left, y + FONT, lines, css="label"))
        y += len(lines) * LINE_PX + 4
        colour = verdict_colour(s.verdict) if s.verdict else GREY
        mid = y + 9

        def x(value: float) -> float:
            return left + axis.position(value * axis.factor) * (right - left)

        low, high = s.whiskers
        median = f"median {number(s.median * axis.factor)} {axis.unit}"
        parts.append(
            f'<g class="series" style="color:{colour}">'
            f"<title>{escape(s.label)}: {escape(median)}</title>"
            f'<line x1="{x(low):.1f}" y1="{mid:.1f}" x2="{x(high):.1f}" y2="{mid:.1f}" '
            'stroke="currentColor"/>'
            f'<line x1="{x(low):.1f}" y1="{mid - 5:.1f}" x2="{x(low):.1f}" y2="{mid + 5:.1f}" '
            'stroke="currentColor"/>'
            f'<line x1="{x(high):.1f}" y1="{mid - 5:.1f}" x2="{x(high):.1f}" '
            f'y2="{mid + 5:.1f}" stroke="currentColor"/>'
            f'<rect x="{x(s.q1):.1f}" y="{y:.1f}" width="{max(x(s.q3) - x(s.q1), 1.5):.1f}" '
            'height="18" fill="currentColor" fill-opacity="0.25" stroke="currentColor"/>'
            f'<line x1="{x(s.median):.1f}" y1="{y:.1f}" x2="{x(s.median):.1f}" '
            f'y2="{y + 18:.1f}" stroke="currentColor" stroke-width="3"/>'
            + "".join(
                f'<circle cx="{x(v):.1f}" cy="{mid:.1f}" r="2.5" fill="none" '
                'stroke="currentColor"/>'
                for v in s.outliers
            )
            + "</g>"
        )
        y += 30
    plot_bottom = y
    parts.insert(0, _value_axis_svg(axis, left, right, 4, plot_bottom))
    scale = "logarithmic scale" if axis.log else "from zero"
    title = f"{chart.axis} ({axis.unit}, {scale})"
    parts.append(_text(WIDTH / 2, plot_bottom + 32, [title], "middle", "axis-title"))
    height = plot_bottom + 44
    legend = (
        "box: quartiles; thick bar: median; whiskers: the furthest sample within 1.5 IQR "
        "of the box; dots: samples beyond"
        if any(s.whisker_low is not None for s in chart.series)
        else "box: quartiles; thick bar: median; whiskers: minimum to maximum"
    )
    return _figure(chart.title, legend, parts, height)


def render_line_chart(chart: LineChart) -> str:
    """A value per run, oldest first, from zero; x labels are the runs (commit and date),
    thinned so they never overlap; the last point (this run) coloured by the verdict."""
    values = [v for _, v in chart.points]
    unit, factor = display_unit(chart.unit, max(values, default=1.0))
    ticks = nice_ticks(max(values, default=1.0) * factor)
    axis = Axis(unit, factor, 0.0, ticks[-1], ticks)
    tick_width = max(len(number(t)) for t in ticks) * CHAR_PX
    left, right = PAD + LINE_PX + tick_width + 10, WIDTH - PAD - 40
    top, bottom = 12.0, 220.0
    count = max(len(chart.points), 2)
    slot = (right - left) / (count - 1)
    label_lines = [run_label_lines(label) for label, _ in chart.points]
    widest = max((len(line) for lines in label_lines for line in lines), default=1) * CHAR_PX
    every = max(1, math.ceil((widest + 8) / slot))

    def x(index: int) -> float:
        return left + index * slot

    def y(value: float) -> float:
        return bottom - axis.position(value * factor) * (bottom - top)

    parts = []
    for tick in ticks:
        ty = bottom - axis.position(tick) * (bottom - top)
        parts.append(
            f'<line x1="{left:.1f}" y1="{ty:.1f}" x2="{right:.1f}" y2="{ty:.1f}" class="grid"/>'
            + _text(left - 6, ty + 4, [number(tick)], "end", "tick")
        )
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{path}" fill="none" stroke="{GREY}" stroke-width="1.5"/>')
    last = len(chart.points) - 1
    colour = verdict_colour(chart.verdict) if chart.verdict else _VERDICT_COLOURS["current"]
    labelled = set(range(0, last + 1, every))
    if last not in labelled:  # this run is always labelled; its neighbour gives way
        labelled.discard(max(labelled))
        labelled.add(last)
    label_rows = max((len(lines) for lines in label_lines), default=1)
    for i, (label, value) in enumerate(chart.points):
        current = i == last
        shown = f"{number(value * factor)} {unit}"
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="{5 if current else 3}" '
            f'fill="{colour if current else GREY}"><title>{escape(label)}: {escape(shown)}'
            "</title></circle>"
        )
        if i in labelled:
            half = max(len(line) for line in label_lines[i]) * CHAR_PX / 2
            at = min(max(x(i), half + 2), WIDTH - half - 2)  # kept inside the chart
            parts.append(_text(at, bottom + 16, label_lines[i], "middle", "tick"))
    mid_y = (top + bottom) / 2
    parts.append(
        f'<text transform="translate({PAD + FONT},{mid_y:.1f}) rotate(-90)" x="0" y="0" '
        f'text-anchor="middle" class="axis-title">{escape(f"{chart.axis} ({unit})")}</text>'
    )
    height = bottom + 16 + label_rows * LINE_PX + 24
    parts.append(
        _text(WIDTH / 2, height - 8, ["run (commit, date), oldest first"], "middle", "axis-title")
    )
    verdict = f" ({chart.verdict})" if chart.verdict else ""
    legend = f"y axis from zero; the large point is this run{verdict}"
    return _figure(chart.title, legend, parts, height)


def _figure(title: str, legend: str, parts: Sequence[str], height: float) -> str:
    """The chart with its caption above it (a caption below reads as the next chart's)."""
    return (
        f'<figure class="chart"><figcaption><strong>{escape(title)}</strong>'
        f'<br><span class="legend">{escape(legend)}</span></figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">'
        f"{''.join(parts)}</svg></figure>"
    )
