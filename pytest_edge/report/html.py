"""Self-contained HTML renderer: inline CSS and inline SVG charts, no script, no network.

The page leads with what needs attention: a banner with the overall status (pytest's exit
code) and what failed, the outcome counts, the failures with their message and a link to
their details, then a table of contents, the sections and the run's metadata. Every string
from a test, a scenario or a user is escaped; only http(s) URLs become links. It is usable
on a phone: a viewport tag, tables that scroll in their own box, words that wrap, charts
that scale with the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from html import escape

from pytest_edge.report.charts import render_box_chart, render_line_chart
from pytest_edge.report.model import (
    OUTCOMES,
    Block,
    DistributionChart,
    EdgeReport,
    LineChart,
    OutcomeSummary,
    Paragraph,
    Problem,
    Section,
    Status,
    Table,
    failure_anchor,
)

__all__ = ["render_box_chart", "render_html", "render_line_chart"]

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;
line-height:1.45;overflow-wrap:anywhere}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.2rem;margin-top:2rem}h3{font-size:1rem}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem;border-radius:4px;max-height:30rem;
overflow:auto}
a{color:#0969da}
.table-wrap{max-width:100%;overflow-x:auto;margin:.5rem 0 1rem;border:1px solid #d0d7de;
border-radius:4px}
table{border-collapse:collapse;font-size:.85rem;min-width:100%}
caption{text-align:left;padding:.3rem .5rem;font-weight:600}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:break-word}
th{background:#f6f8fa}td.name{min-width:10rem;overflow-wrap:anywhere}
tr.bad td{background:#ffebe9}tr.bad td:first-child{border-left:4px solid #cf222e}
.note,.warning,.estimate,.failure{padding:.4rem .7rem;border-left:4px solid;margin:.5rem 0}
.note{border-color:#0969da;background:#ddf4ff}.warning{border-color:#bf8700;background:#fff8c5}
.estimate{border-color:#8250df;background:#fbefff}
.failure{border-color:#cf222e;background:#ffebe9}
details.repeated summary{cursor:pointer}details.repeated ul{margin:.3rem 0}
.tag{display:inline-block;font-weight:700;font-size:.75rem;padding:.05rem .4rem;
border-radius:3px;color:#fff;background:#6e7781;white-space:nowrap}
.tag-failed{background:#cf222e}.tag-warning{background:#9a6700}.tag-ok{background:#1a7f37}
.banner{padding:.7rem 1rem;border-radius:6px;font-size:1.05rem;margin:.5rem 0 1rem;
border:2px solid}
.banner-failed{background:#ffebe9;border-color:#cf222e}
.banner-warning{background:#fff8c5;border-color:#bf8700}
.banner-ok{background:#dafbe1;border-color:#1a7f37}.banner-info{background:#f6f8fa;
border-color:#d0d7de}
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}
ul.counts li{border:1px solid #d0d7de;border-radius:4px;padding:.2rem .6rem}
ul.counts li.bad{border-color:#cf222e;background:#ffebe9;font-weight:700}
ol.problems li{margin:.3rem 0}.message{color:#57606a}
nav.toc ol{padding-left:1.2rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
@media (max-width:600px){dl.meta{grid-template-columns:1fr}main{padding:.5rem}}
figure.chart{margin:.5rem 0 1.5rem;max-width:640px}
figure.chart figcaption{font-size:.9rem;margin-bottom:.3rem}
figure.chart .legend{color:#57606a;font-size:.8rem}
figure.chart svg{width:100%;height:auto;display:block}
svg text{font-size:12px;fill:#1b1f24;font-family:system-ui,-apple-system,Segoe UI,Roboto,
sans-serif}
svg text.tick{fill:#57606a}svg text.axis-title{font-weight:600}
svg line.grid{stroke:#eaeef2}
"""
_STATUS_WORDS: dict[Status, tuple[str, str]] = {
    "failed": ("✗", "FAILED"),
    "warning": ("⚠", "WARNING"),
    "ok": ("✓", "OK"),
    "info": ("\u2139", "INFO"),
}
_PARAGRAPH_LABELS = {
    "note": "Note",
    "warning": "⚠ Warning",
    "estimate": "Estimate",
    "failure": "✗ Failed",
}
_URL = re.compile(r"https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]")
_BAD_CELL = re.compile(r"\b(REGRESSION|failed|FAILED|FAIL|error|slower)\b")
_COLLAPSE_AT = 3  # this many similar notes in a row become one collapsed line with a count


def linkify(text: str) -> str:
    """``text`` escaped, with every http(s) URL in it a link (no other scheme ever is)."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        out.append(escape(text[last : match.start()]))
        url = match.group(0)
        out.append(f'<a href="{escape(url, quote=True)}" rel="noreferrer">{escape(url)}</a>')
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def _tag(status: Status) -> str:
    icon, word = _STATUS_WORDS[status]
    return f'<span class="tag tag-{status}">{icon} {word}</span>'


def _table(table: Table) -> str:
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in table.columns)
    rows = []
    for row in table.rows:
        bad = any(_BAD_CELL.search(cell) for cell in row[1:])
        cells = "".join(
            f"<td{' class=name' if i == 0 else ''}>{linkify(c)}</td>" for i, c in enumerate(row)
        )
        rows.append(f"<tr{' class=bad' if bad else ''}>{cells}</tr>")
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    label = escape(table.caption or ", ".join(table.columns[:3]), quote=True)
    return (
        f'<div class="table-wrap" role="region" aria-label="{label}" tabindex="0">'
        f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div>"
    )


def _paragraph(block: Paragraph) -> str:
    if block.kind == "text":
        return f"<p>{linkify(block.text)}</p>"
    label = _PARAGRAPH_LABELS[block.kind]
    return f'<p class="{block.kind}"><strong>{label}:</strong> {linkify(block.text)}</p>'


def _similar_key(text: str) -> str:
    """What near-identical notes share: their first two ``: ``-separated parts when they
    have three or more (``disk-full: fault fired: #1 ... call #145 ...``), else the text."""
    parts = text.split(": ", 2)
    return ": ".join(parts[:2]) if len(parts) == 3 else text


def _runs(blocks: Sequence[Block]) -> Iterator[list[Block]]:
    """Blocks in runs: similar paragraphs of one kind together, every other block alone."""
    run: list[Block] = []
    for block in blocks:
        if (
            run
            and isinstance(block, Paragraph)
            and isinstance(run[0], Paragraph)
            and block.kind == run[0].kind
            and block.kind != "text"
            and _similar_key(block.text) == _similar_key(run[0].text)
        ):
            run.append(block)
            continue
        if run:
            yield run
        run = [block]
    if run:
        yield run


def _collapsed(paragraphs: Sequence[Paragraph]) -> str:
    first = paragraphs[0]
    key = _similar_key(first.text)
    items = "".join(
        f"<li>{linkify(p.text[len(key) + 2 :] if p.text.startswith(key + ': ') else p.text)}</li>"
        for p in paragraphs
    )
    label = _PARAGRAPH_LABELS.get(first.kind, "")
    return (
        f'<details class="repeated {first.kind}"><summary><strong>{label}:</strong> '
        f"{linkify(key)} <strong>(\u00d7{len(paragraphs)})</strong></summary><ul>{items}</ul>"
        "</details>"
    )


def _blocks(blocks: Sequence[Block]) -> list[str]:
    out: list[str] = []
    for run in _runs(blocks):
        if len(run) >= _COLLAPSE_AT:
            out.append(_collapsed([b for b in run if isinstance(b, Paragraph)]))
            continue
        for block in run:
            if isinstance(block, Paragraph):
                out.append(_paragraph(block))
            elif isinstance(block, Table):
                out.append(_table(block))
            elif isinstance(block, DistributionChart):
                out.append(render_box_chart(block))
            elif isinstance(block, LineChart):
                out.append(render_line_chart(block))
    return out


def _banner(report: EdgeReport) -> str:
    status = report.status
    icon, word = _STATUS_WORDS[status]
    attention = report.attention()
    outcome = report.outcome
    if outcome is not None:
        word = f"{word}: pytest {outcome.exit_word} (exit code {outcome.exit_code})"
    if attention:
        what = f"Needs attention: {escape(attention)}."
    elif status == "ok":
        what = "Nothing needs attention."
    else:
        what = "No test outcome in this report (it was not written by a pytest run)."
        if outcome is not None:
            what = "No failure was recorded."
    return (
        f'<div class="banner banner-{status}" role="status"><strong>{icon} {escape(word)}</strong>'
        f"<br>{what}</div>"
    )


def _counts(outcome: OutcomeSummary) -> str:
    items = []
    for name in [*OUTCOMES, *(k for k in outcome.counts if k not in OUTCOMES)]:
        count = outcome.counts.get(name, 0)
        bad = count and name in ("failed", "error")
        items.append(f"<li{' class=bad' if bad else ''}>{count} {escape(name)}</li>")
    duration = ""
    if outcome.duration_s is not None:
        from pytest_edge.report.units import format_time

        duration = f" in {format_time(outcome.duration_s)}"
    return (
        f'<ul class="counts" aria-label="test outcomes">{"".join(items)}</ul>'
        f"<p>{outcome.total} test reports{duration}; pytest exit code {outcome.exit_code} "
        f"({escape(outcome.exit_word)}).</p>"
    )


def _problem(problem: Problem) -> str:
    name = f"<code>{escape(problem.name)}</code>"
    if problem.anchor:
        name = f'<a href="#{escape(problem.anchor, quote=True)}">{name}</a>'
    message = ""
    if problem.message:
        message = f': <span class="message">{escape(problem.message)}</span>'
    kind = escape(problem.kind.upper())
    return f'<li><span class="tag tag-failed">✗ {kind}</span> {name}{message}</li>'


def _summary(report: EdgeReport) -> str:
    parts = ['<section id="summary"><h2>Summary</h2>']
    if report.outcome is not None:
        parts.append(_counts(report.outcome))
    problems = report.problems
    if problems:
        parts.append("<h3>Needs attention</h3><ol class=problems>")
        parts += [_problem(p) for p in problems]
        parts.append("</ol>")
    parts.append("</section>")
    return "".join(parts)


def _failure_details(outcome: OutcomeSummary | None) -> str:
    if outcome is None or not outcome.failures:
        return ""
    parts = ['<section id="failures"><h2>Failed tests ' + _tag("failed") + "</h2>"]
    for failure in outcome.failures:
        parts.append(
            f'<details id="{failure_anchor(failure.nodeid)}" open><summary>'
            f'<span class="tag tag-failed">✗ {escape(failure.outcome.upper())}</span> '
            f"<code>{escape(failure.nodeid)}</code> ({escape(failure.when)})</summary>"
            f'<p class="failure"><strong>✗ Failed:</strong> {escape(failure.message)}</p>'
            f"<pre>{escape(failure.details)}</pre></details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _toc(report: EdgeReport) -> str:
    entries = [("summary", "Summary", report.outcome.status if report.outcome else "info")]
    if report.outcome is not None and report.outcome.failures:
        entries.append(("failures", "Failed tests", "failed"))
    entries += [(f"section-{s.key}", s.title, s.status) for s in report.sections]
    if report.metadata:
        entries.append(("run", "Run", "info"))
    items = "".join(
        f'<li><a href="#{escape(anchor, quote=True)}">{escape(title)}</a>'
        f"{' ' + _tag(status) if status in ('failed', 'warning') else ''}</li>"
        for anchor, title, status in entries
    )
    return f'<nav class="toc" aria-label="contents"><h2>Contents</h2><ol>{items}</ol></nav>'


def _section(section: Section) -> str:
    body = "".join(_blocks(section.blocks))
    return (
        f'<section id="section-{escape(section.key, quote=True)}"><h2>{escape(section.title)} '
        f"{_tag(section.status)}</h2>{body}</section>"
    )


def _metadata(report: EdgeReport) -> str:
    if not report.metadata:
        return ""
    rows = "".join(
        f"<dt>{escape(name)}</dt><dd><code>{escape(value)}</code></dd>"
        for name, value in report.metadata
    )
    return f'<section id="run"><h2>Run</h2><dl class="meta">{rows}</dl></section>'


def render_html(report: EdgeReport) -> str:
    body = [
        f"<header><h1>{escape(report.title)}</h1>",
        _banner(report),
        f"<p>Generated {escape(report.created)}.</p></header>",
        _summary(report),
        _toc(report),
        _failure_details(report.outcome),
        *(_section(s) for s in report.sections),
        _metadata(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
