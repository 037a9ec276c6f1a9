"""Instruction counts with valgrind's callgrind: a repeatable measure for CPU-bound code.

Time on a shared machine moves by ±10% between runs; the number of instructions a function
executes does not (with a fixed hash seed it is the same to the instruction). Useful beside
time for CPU-bound code, as CodSpeed does; meaningless for I/O-bound code (fsync waits cost
no instructions), so the report says which it is.

Method: the function is called in a fresh interpreter under callgrind, once to warm up and then
``calls`` times; a second run does only the import and warm-up call. The difference divided by
``calls`` is the count per call, without the interpreter's start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edge.errors import EdgeError, EdgeInputError

TOOL = "valgrind --tool=callgrind"
_CHILD = """
import importlib, json, sys
module, _, qualname = sys.argv[1].partition(":")
target = importlib.import_module(module)
for part in qualname.split("."):
    target = getattr(target, part)
args = json.loads(sys.argv[2])
target(*args)
for _ in range(int(sys.argv[3])):
    target(*args)
"""


class InstructionCountError(EdgeError, RuntimeError):
    """valgrind is missing or the counted program failed; the message says which."""


@dataclass(frozen=True)
class InstructionCount:
    target: str
    calls: int
    per_call: float
    tool: str = TOOL


def valgrind() -> str | None:
    return shutil.which("valgrind")


def target_of(function: Callable[..., Any]) -> str:
    """``module:qualname`` of an importable function; an `EdgeInputError` for anything else."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise EdgeInputError(
            f"instruction counts need an importable module-level function, not {function!r}"
        )
    return f"{module}:{qualname}"


def _run(
    executable: str, target: str, args_json: str, calls: int, env: dict[str, str], cwd: Path
) -> int:
    with tempfile.TemporaryDirectory(prefix="pytest-edge-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            executable,
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            _CHILD,
            target,
            args_json,
            str(calls),
        ]
        done = subprocess.run(  # noqa: S603 - argument list, no shell
            command, env=env, cwd=cwd, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not out.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise InstructionCountError(f"callgrind run of {target} failed:\n{tail}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise InstructionCountError(f"callgrind wrote no instruction total for {target}")


def count_instructions(
    target: str,
    args: Sequence[Any] = (),
    calls: int = 10,
    cwd: Path | None = None,
    extra_path: Sequence[str] = (),
) -> InstructionCount:
    """Instructions per call of ``module:function`` with JSON-able ``args``."""
    tool = valgrind()
    if tool is None:
        raise InstructionCountError("valgrind is not installed: no instruction counts here")
    if calls < 1:
        raise EdgeInputError(f"calls={calls}: must be 1 or more")
    try:
        args_json = json.dumps(list(args))
    except TypeError as error:
        raise EdgeInputError(f"instruction counts need JSON-able arguments ({error})") from None
    env = dict(os.environ, PYTHONHASHSEED="0")
    path = [*extra_path, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    where = cwd or Path.cwd()
    with_calls = _run(tool, target, args_json, calls, env, where)
    without = _run(tool, target, args_json, 0, env, where)
    return InstructionCount(target, calls, (with_calls - without) / calls)
