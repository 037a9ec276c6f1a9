"""What `pip install pytest-edge` installs: the pytest_edge package, and no reference_impl."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.docs.examples import ROOT

# What the build reads; reference_impl is copied too, to prove the build leaves it out.
SOURCES = ("pyproject.toml", "README.md", "pytest_edge", "reference_impl")


def test_the_wheel_holds_pytest_edge_and_no_reference_impl(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip_wheel, "--quiet", "--wheel-dir", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("pytest_edge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = wheel.name.split("-py3")[0] + ".dist-info"
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {"pytest_edge", dist_info}
    for needed in ("plugin.py", "py.typed", "profiles/catalog.toml", "cli.py"):
        assert f"pytest_edge/{needed}" in names
    assert not [name for name in names if "reference_impl" in name]
    assert "edge = pytest_edge.plugin" in entry_points
