"""The library on aarch64 (a Raspberry Pi's architecture): cross-built with -Werror and run under
qemu-user with a small C program, where the cross tools are installed (skipped otherwise; on
Debian: ``apt-get install gcc-aarch64-linux-gnu qemu-user``)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SOURCE = HERE.parents[1] / "pytest_edge" / "syscalls" / "edgeio.c"
CC = shutil.which("aarch64-linux-gnu-gcc")
QEMU = shutil.which("qemu-aarch64")
SYSROOT = Path("/usr/aarch64-linux-gnu")

pytestmark = pytest.mark.skipif(
    not (CC and QEMU and SYSROOT.is_dir()),
    reason="no aarch64 cross compiler/qemu-user (apt-get install gcc-aarch64-linux-gnu qemu-user)",
)


def test_the_library_traces_and_faults_on_aarch64(tmp_path: Path) -> None:
    assert CC is not None
    assert QEMU is not None
    library = tmp_path / "libedgeio.so"
    flags = ["-O2", "-fPIC", "-fvisibility=hidden", "-U_FORTIFY_SOURCE", "-std=gnu11"]
    subprocess.run(
        [CC, *flags, "-Wall", "-Wextra", "-Werror", "-shared", "-o", library, SOURCE,
         "-ldl", "-lpthread"],
        check=True,
    )  # fmt: skip
    smoke = tmp_path / "smoke"
    subprocess.run([CC, "-O2", "-o", smoke, HERE / "aarch64_smoke.c", "-ldl"], check=True)
    env = {**os.environ, "QEMU_LD_PREFIX": str(SYSROOT), "QEMU_SET_ENV": f"LD_PRELOAD={library}"}
    env.pop("LD_PRELOAD", None)  # the host's library (pytest-edge run) is not for aarch64
    done = subprocess.run(
        [QEMU, smoke, tmp_path], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # disk_full(free_bytes=3): the first write is short (3 of 5 bytes), the next gets ENOSPC
    assert done.stdout.split() == ["slot=0", "first=3", "second=-1", f"errno={errno.ENOSPC}"]
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [(r["t"], r["sys"]) for r in records] == [
        ("open", "open"),
        ("write", "write"),
        ("write", "pwrite"),
        ("fsync", "fsync"),
        ("rename", "rename"),
        ("opendir", "open"),
        ("dirsync", "fsync"),
    ]
    assert records[2]["off"] == 0
    assert records[4]["dst"] == "a"
