"""Build of pytest-edge's optional system-call library (``pytest_edge/syscalls/libedgeio.so``).

Everything else about the package is declared in ``pyproject.toml``. The library is a plain
shared object loaded with ``LD_PRELOAD`` and driven with ctypes (no Python C-API), built with
the C compiler the machine has. It is optional: without a compiler, or off Linux, the install
still succeeds and ``pytest_edge.syscalls.unavailable_reason()`` says why the layer is missing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

LIBRARY = "pytest_edge.syscalls.libedgeio"


class OptionalBuildExt(build_ext):
    """build_ext for a plain shared object: named ``libedgeio.so``; a failed build warns."""

    def get_ext_filename(self, fullname: str) -> str:
        # Asked for the full dotted name and (for the output path) for the last part alone.
        if fullname in (LIBRARY, LIBRARY.rpartition(".")[2]):
            return fullname.replace(".", "/") + ".so"
        return str(super().get_ext_filename(fullname))

    def get_export_symbols(self, ext: Extension) -> list[str]:
        return list(ext.export_symbols or [])  # no PyInit_* symbol: not a Python module

    def copy_file(self, infile: str, outfile: str, *args: Any, **kwargs: Any) -> Any:
        # A new file, not the old one rewritten in place: processes that have the library
        # loaded (a test run during `make install`) keep their mapping intact.
        if os.path.basename(outfile) == "libedgeio.so":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(outfile)
        return super().copy_file(infile, outfile, *args, **kwargs)

    def run(self) -> None:
        if not sys.platform.startswith("linux"):
            self.warn("pytest-edge: the system-call library is Linux-only; not built")
            return
        try:
            super().run()
        except Exception as exc:  # no compiler, or it failed: the layer reports itself missing
            self.warn(f"pytest-edge: the system-call library was not built: {exc}")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.warn(f"pytest-edge: the system-call library was not built: {exc}")


setup(
    ext_modules=[
        Extension(
            LIBRARY,
            sources=["pytest_edge/syscalls/edgeio.c"],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-U_FORTIFY_SOURCE", "-std=gnu11"],
            libraries=["dl", "pthread"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
