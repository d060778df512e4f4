"""The installed distribution is one import namespace: ``pointbridge`` and nothing generic."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_only_the_pointbridge_package(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "build", "*.egg-info", "instance", "__pycache__", "plugins", "bench"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, source],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("pointbridge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    # A top-level core, web or migrations would collide with any other distribution's.
    assert {name.split("/")[0] for name in names} == {
        "pointbridge",
        wheel.name.removesuffix("-py3-none-any.whl") + ".dist-info",
    }
    for module in (
        "pointbridge/__init__.py",
        "pointbridge/web/__init__.py",
        "pointbridge/web/cli/__init__.py",
        "pointbridge/testing/pytest_plugin.py",
        "pointbridge/migrations/versions/0001_initial_schema.py",
        "pointbridge/migrations/script.py.mako",
    ):
        assert module in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pointbridge = pointbridge.web.cli:main" in declared
    assert "jsonl = pointbridge.builtin.jsonl" in declared
