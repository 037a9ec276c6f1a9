"""Finding and loading the library: reasons when unavailable, LD_PRELOAD, the build."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_edge.syscalls import (
    LIBRARY_NAME,
    SyscallLayerUnavailable,
    library_path,
    preload_env,
    unavailable_reason,
)
from pytest_edge.syscalls import library as library_module
from tests.syscalls.child import needs_library, run, without_library

SOURCE = Path(library_module.__file__).with_name("edgeio.c")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_reason() -> Iterator[None]:
    """Forget the cached verdict before and after (tests patch what it depends on)."""
    library_module._reason.cache_clear()
    yield
    library_module._reason.cache_clear()


@pytest.mark.usefixtures("fresh_reason")
def test_not_linux_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    reason = unavailable_reason()
    assert reason is not None
    assert reason.startswith("not Linux")
    assert "darwin" in reason
    with pytest.raises(SyscallLayerUnavailable, match="not Linux"):
        preload_env({})


@pytest.mark.usefixtures("fresh_reason")
def test_not_built_is_said_with_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(library_module, "_candidate", lambda: tmp_path / LIBRARY_NAME)
    reason = unavailable_reason()
    assert reason is not None
    assert reason.startswith("not built:")
    assert str(tmp_path / LIBRARY_NAME) in reason
    assert "C compiler" in reason
    with pytest.raises(SyscallLayerUnavailable, match="not built"):
        library_path()


@pytest.mark.usefixtures("fresh_reason")
def test_cannot_be_loaded_gives_the_loader_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / LIBRARY_NAME
    broken.write_bytes(b"not an ELF file")
    monkeypatch.setattr(library_module, "_candidate", lambda: broken)
    reason = unavailable_reason()
    assert reason is not None
    assert reason.startswith("cannot be loaded:")
    assert "ELF" in reason or "too short" in reason  # dlerror's own words


@needs_library
def test_preload_env_prepends_once_and_keeps_others() -> None:
    path = str(library_path())
    env = preload_env({"LD_PRELOAD": f"/x/a.so:{path} /x/b.so", "KEEP": "1"})
    assert env["LD_PRELOAD"] == f"{path} /x/a.so /x/b.so"
    assert env["KEEP"] == "1"
    assert preload_env({})["LD_PRELOAD"] == path


@needs_library
def test_active_only_in_a_preloaded_process(tmp_path: Path) -> None:
    code = "out(active=active(), layer=__import__('pytest_edge.syscalls').syscalls.layer_name())"
    with_lib = run(code, tmp_path / "a")
    without = run(code, tmp_path / "b", preload=False)
    assert with_lib.out == {"active": True, "layer": "syscall"}
    assert without.out == {"active": False, "layer": "python"}


@needs_library
def test_a_child_without_the_library_gets_a_clear_error(tmp_path: Path) -> None:
    r = run(
        """
        from pytest_edge.syscalls import SyscallLayerUnavailable
        for call in (lambda: tracing(ROOT, REC).__enter__(), lambda: arm("read_only", ROOT)):
            try:
                call()
            except SyscallLayerUnavailable as exc:
                out(error=str(exc))
        """,
        tmp_path / "root",
        preload=False,
    )
    assert "was not started with it" in r.out["error"]
    assert "pid " in r.out["error"]
    assert "preload_env()" in r.out["error"]


@needs_library
def test_a_library_the_loader_refused_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "lib" / LIBRARY_NAME
    broken.parent.mkdir()
    broken.write_bytes(b"\x7fELF broken")
    env = {**without_library(), "LD_PRELOAD": str(broken)}
    code = (
        "from pytest_edge.syscalls import require_active\n"
        "try:\n    require_active('the test')\n"
        "except Exception as exc:\n    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "the dynamic loader did not load it" in proc.stdout
    assert "cannot be preloaded" in proc.stderr  # ld.so's own reason, on stderr


WARNINGS = ["-Wall", "-Wextra", "-Werror"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
def test_source_is_warning_free_for_the_front_end() -> None:
    subprocess.run(["gcc", "-fsyntax-only", *WARNINGS, str(SOURCE)], check=True)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
def test_source_compiles_warning_free_optimised(tmp_path: Path) -> None:
    # -O2 runs the analyses behind -Wmaybe-uninitialized and friends (~6 s on a loaded machine)
    flags = ["-O2", "-fPIC", *WARNINGS, "-shared", "-fvisibility=hidden"]
    out = tmp_path / LIBRARY_NAME
    subprocess.run(["gcc", *flags, "-o", str(out), str(SOURCE), "-ldl", "-lpthread"], check=True)


@needs_library
@pytest.mark.skipif(shutil.which("nm") is None, reason="no nm on this machine")
def test_library_exports_the_libc_names_and_nothing_internal() -> None:
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(library_path())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exported = {line.split()[-1] for line in symbols.splitlines()}
    # what a preloaded copy must provide, and nothing of its internals
    assert {"open64", "__open64_2", "pwrite64", "fdatasync", "renameat", "mmap64"} <= exported
    assert {"edgeio_arm", "edgeio_trace_start", "edgeio_interposing"} <= exported
    assert "fd_info" not in exported
    assert "g_faults" not in exported


@needs_library
def test_installed_library_is_the_packaged_one() -> None:
    # make install (pip install -e) builds it next to this package, where library_path finds it
    assert library_path() == Path(library_module.__file__).with_name(LIBRARY_NAME)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
def test_a_wheel_contains_the_library(tmp_path: Path) -> None:
    # built from a copy: a build writes build/ and egg-info beside the sources
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info")
    shutil.copytree(REPO / "pytest_edge", source / "pytest_edge", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("pytest_edge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert f"pytest_edge/syscalls/{LIBRARY_NAME}" in names
    assert "pytest_edge/syscalls/trace.py" in names
