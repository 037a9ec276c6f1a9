"""Render a report by format name or file extension, and write it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from pytest_edge.errors import EdgeInputError
from pytest_edge.report.html import render_html
from pytest_edge.report.json_format import render_json
from pytest_edge.report.markdown import render_markdown
from pytest_edge.report.model import EdgeReport
from pytest_edge.report.text import render_text

_RENDERERS: dict[str, Callable[[EdgeReport], str]] = {
    "md": render_markdown,
    "json": render_json,
    "html": render_html,
    "text": render_text,
}
FORMATS = ("md", "json", "html")
_EXTENSIONS = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}


def format_for_path(path: str | Path) -> str:
    """``report.md`` -> ``md``; an unknown extension is an `EdgeInputError` naming the known."""
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise EdgeInputError(
            f"report path {str(path)!r}: cannot tell the format from {suffix or 'no extension'}; "
            f"use one of {', '.join(sorted(_EXTENSIONS))}"
        )
    return _EXTENSIONS[suffix]


def render(report: EdgeReport, fmt: str) -> str:
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise EdgeInputError(f"report format {fmt!r} is not one of {', '.join(_RENDERERS)}")
    return renderer(report)


def write_report(report: EdgeReport, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``report`` to ``path`` in ``fmt`` (default: from the extension).

    Written to a temporary file beside it and renamed over it, so a reader never sees a torn
    report and a failed write leaves the previous one in place.
    """
    target = Path(path)
    text = render(report, fmt or format_for_path(target))
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename below
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    )
    try:
        with handle:
            handle.write(text)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return target


def append_step_summary(report: EdgeReport) -> Path | None:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub Actions)."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return None
    with open(summary, "a", encoding="utf-8") as handle:
        handle.write(render_markdown(report) + "\n")
    return Path(summary)
