"""pytest's verdict on each test, tallied for the report's outcome summary.

The category of a report is pytest's own (``pytest_report_teststatus``: passed, failed,
error, skipped, xfailed, xpassed), so the counts match pytest's summary line, also with
plugins that change it. Under pytest-xdist the controller sees every worker's reports.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_edge.report.model import OutcomeSummary

# pytest's categories, in its summary's order (the model has the same tuple; not imported
# here, so a run that writes no report never loads it).
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")

MAX_MESSAGE = 300
MAX_DETAILS = 8000


def short_message(report: Any) -> str:
    """The one-line reason a test failed: pytest's crash message (``AssertionError: ...``),
    else the last line of the long representation; at most `MAX_MESSAGE` characters."""
    longrepr = getattr(report, "longrepr", None)
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if not message:
        if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
            message = str(longrepr[2])
        else:  # an item's own repr_failure (a scenario's): its first lines say what broke
            text = str(getattr(report, "longreprtext", "") or longrepr or "")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            message = " ".join(lines)[: MAX_MESSAGE * 2]
    message = " ".join(str(message).split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return message


def _details(report: Any) -> str:
    text = str(getattr(report, "longreprtext", "") or "")
    if len(text) > MAX_DETAILS:
        text = "…\n" + text[-MAX_DETAILS:]  # the end of a traceback says the most
    return text


class OutcomeRecorder:
    """Counts test outcomes and keeps the failures (with their message) in the order seen."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.failures: list[tuple[str, str, str, str, str]] = []

    def restart(self) -> None:
        """Start the session's clock (the recorder exists from configure on)."""
        self.started = time.monotonic()

    def add(self, report: Any, category: str) -> None:
        """One report (setup, call or teardown of a test, or a collection report) and the
        category pytest gave it; the empty category (a passed setup) counts nothing."""
        if not category:
            return
        if category not in self.counts:
            self.counts[category] = 0
        self.counts[category] += 1
        if category in ("failed", "error") or (
            category == "xpassed" and getattr(report, "failed", False)
        ):
            self.failures.append(
                (
                    report.nodeid or "(collection)",
                    category,
                    short_message(report),
                    _details(report),
                    getattr(report, "when", "collect") or "collect",
                )
            )

    def summary(self, exit_code: int | None) -> OutcomeSummary:
        from pytest_edge.report.model import FailedTest, OutcomeSummary

        return OutcomeSummary(
            {k: v for k, v in self.counts.items() if v or k in OUTCOMES},
            exit_code,
            tuple(FailedTest(*failure) for failure in self.failures),
            time.monotonic() - self.started,
        )
