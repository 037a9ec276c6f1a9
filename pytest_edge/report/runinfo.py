"""The run's metadata for the report: command line, commit, duration, seed, versions."""

from __future__ import annotations

import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_edge.report.units import format_time


def git_commit(root: Path) -> str | None:
    """The checked-out commit of the repository holding ``root`` (``+dirty`` when the work
    tree has changes), or None outside git or without a git binary."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
            [git, "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(  # noqa: S603
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    suffix = "+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
    return head.stdout.strip() + suffix


def run_metadata(
    args: Sequence[str],
    root: Path,
    duration_s: float | None,
    seed: int | None,
    workers: int | None = None,
) -> tuple[tuple[str, str], ...]:
    """(name, value) rows for the report's run metadata."""
    rows = [("command line", "pytest " + shlex.join(args))]
    commit = git_commit(root)
    rows.append(("commit", commit or "not a git checkout"))
    if duration_s is not None:
        rows.append(("duration", format_time(duration_s)))
    if seed is not None:
        rows.append(("seed", f"{seed} (replay with --edge-seed={seed})"))
    if workers:
        rows.append(("pytest-xdist workers", str(workers)))
    rows.append(
        ("python", f"{platform.python_implementation()} {sys.version.split()[0]} on {sys.platform}")
    )
    return tuple(rows)
