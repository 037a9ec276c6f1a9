"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

No browser-automation dependency: Chromium reads NUL-terminated JSON commands on fd 3 and
writes responses and events on fd 4. `Browser.page` loads a file at a CSS width and returns
what the report tests check: console errors, uncaught exceptions, every network request and
the result of a measuring script; `Browser.screenshot` takes a full-page PNG.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FD_WRAPPER = (
    "import os, sys\n"
    "r, w = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 30.0


def find_chromium() -> str | None:
    """The Chromium binary on PATH (``$EDGE_CHROMIUM`` first), or None."""
    chosen = os.environ.get("EDGE_CHROMIUM")
    if chosen:
        return shutil.which(chosen)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are fds 10 and up, so the shell's ``3<&N 4>&M`` cannot clobber one
    with the other (pytest's capturing may leave fds 3 and 4 free for ``os.pipe``)."""
    ends: list[int] = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class BrowserError(RuntimeError):
    """Chromium did not start, answered with an error, or took longer than `TIMEOUT_S`."""


@dataclass
class PageResult:
    """What happened while a page loaded at one width, and what the script measured."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    measured: Any = None


class Browser:
    """One headless Chromium process; use as ``with Browser.start(path) as browser``."""

    def __init__(self, process: subprocess.Popen[bytes], commands: int, events: int) -> None:
        self._process = process
        self._commands = commands
        self._events = events
        self._buffer = b""
        self._next_id = 0
        self._pending: list[dict[str, Any]] = []

    @classmethod
    @contextmanager
    def start(cls, binary: str) -> Iterator[Browser]:
        profile = tempfile.mkdtemp(prefix="edge-chromium-")
        to_child_r, to_child_w = _high_pipe()
        from_child_r, from_child_w = _high_pipe()
        args = [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        # Chromium wants the pipe on fds 3 (commands) and 4 (answers): a two-line Python
        # exec wrapper puts them there (dash's redirections take single-digit fds only).
        process = subprocess.Popen(
            [sys.executable, "-c", _FD_WRAPPER, str(to_child_r), str(from_child_w), *args],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("EDGE_CHROMIUM_LOG") else subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        browser = cls(process, to_child_w, from_child_r)
        try:
            yield browser
        finally:
            browser._close()
            os.close(to_child_w)
            os.close(from_child_r)
            shutil.rmtree(profile, ignore_errors=True)

    def _close(self) -> None:
        try:
            self._send("Browser.close", wait=False)
            self._process.wait(timeout=10)
        except (BrowserError, OSError, subprocess.TimeoutExpired):
            pass
        if self._process.poll() is None:
            os.killpg(self._process.pid, 9)
            self._process.wait(timeout=10)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from Chromium within {TIMEOUT_S:g} s")
            ready, _, _ = select.select([self._events], [], [], left)
            if ready:
                chunk = os.read(self._events, 1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium exited (status {self._process.poll()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        if not wait:
            return {}
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._pending.append(answer)

    def _events_until(self, method: str, deadline: float) -> None:
        while not any(e.get("method") == method for e in self._pending):
            self._pending.append(self._read_message(deadline))

    @contextmanager
    def _page(self, width: int, height: int = 900) -> Iterator[str]:
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        try:
            for domain in ("Page", "Runtime", "Network", "Log"):
                self._send(f"{domain}.enable", session=session)
            self._send(
                "Emulation.setDeviceMetricsOverride",
                # Below 600 px emulate a phone: without a viewport tag the page would be laid
                # out 980 px wide and shrunk, as a phone does.
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
                session=session,
            )
            yield session
        finally:
            self._send("Target.closeTarget", {"targetId": target})

    def _load(self, session: str, path: Path) -> None:
        self._pending.clear()
        self._send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        self._events_until("Page.loadEventFired", time.monotonic() + TIMEOUT_S)

    def page(self, path: Path, width: int, script: str) -> PageResult:
        """Load ``path`` at ``width`` CSS px, run ``script`` (an expression whose value is
        JSON-ready) and report what the page did."""
        with self._page(width) as session:
            self._load(session, path)
            value = self._send(
                "Runtime.evaluate",
                {"expression": script, "returnByValue": True, "awaitPromise": True},
                session=session,
            )
            result = PageResult(measured=value.get("result", {}).get("value"))
            if "exceptionDetails" in value:
                raise BrowserError(f"measuring script failed: {value['exceptionDetails']}")
            document = path.resolve().as_uri()
            for event in self._pending:
                params = event.get("params", {})
                method = event.get("method")
                if method == "Runtime.consoleAPICalled" and params.get("type") in (
                    "error",
                    "assert",
                ):
                    result.console_errors.append(json.dumps(params.get("args")))
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    result.console_errors.append(params["entry"].get("text", ""))
                elif method == "Runtime.exceptionThrown":
                    result.exceptions.append(json.dumps(params.get("exceptionDetails")))
                elif method == "Network.requestWillBeSent":
                    url = params["request"]["url"]
                    if url != document:
                        result.requests.append(url)
            return result

    def screenshot(self, path: Path, width: int, out: Path, max_height: int = 100_000) -> int:
        """A PNG of ``path`` at ``width`` CSS px (the whole page, at most ``max_height`` px
        of it) written to ``out``; its size in bytes."""
        with self._page(width) as session:
            self._load(session, path)
            height = self._send(
                "Runtime.evaluate",
                {"expression": "document.documentElement.scrollHeight", "returnByValue": True},
                session=session,
            )["result"]["value"]
            shot = self._send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": min(height, max_height),
                        "scale": 1,
                    },
                },
                session=session,
            )
        data = base64.b64decode(shot["data"])
        out.write_bytes(data)
        return len(data)
