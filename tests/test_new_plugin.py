"""``pointbridge new-plugin`` writes a plugin that installs and passes the contract suite as
generated: the starting point a plugin author gets works before they change a line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUFF = Path(sys.executable).with_name("ruff")
ROOT = Path(__file__).resolve().parent.parent


def _pointbridge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from pointbridge.web.cli import main; main()", *args],
        cwd=cwd,
        env={**os.environ, "POINTBRIDGE_INSTANCE": str(cwd / "instance")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], check=True, timeout=300)


def test_a_generated_plugin_installs_and_passes_the_contract_suite(tmp_path: Path) -> None:
    made = _pointbridge("new-plugin", "listmonk", "--dir", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    plugin = tmp_path / "pointbridge-listmonk"
    assert f"wrote {plugin}" in made.stdout

    _pip("install", "--no-deps", "-e", str(plugin))
    try:
        listed = _pointbridge("plugins", cwd=tmp_path)
        assert "platform listmonk (Listmonk)" in listed.stdout, listed.stderr
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin)],
            cwd=plugin,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        _pip("uninstall", "--yes", "pointbridge-listmonk")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "passed" in tests.stdout and "failed" not in tests.stdout
    # Clean by the project's own rules, as a standalone project sees its imports.
    lint = subprocess.run(
        [
            RUFF,
            "check",
            "--config",
            str(ROOT / "pyproject.toml"),
            "--config",
            "lint.isort.known-first-party=[]",
            ".",
        ],
        cwd=plugin,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize(
    "name,message",
    [("Bad-Name", "cannot name a plugin"), ("x", "cannot name a plugin")],
)
def test_a_name_that_cannot_be_a_package_is_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    refused = _pointbridge("new-plugin", name, "--dir", str(tmp_path), cwd=tmp_path)
    assert refused.returncode == 1 and message in refused.stderr
    assert not list(tmp_path.glob("pointbridge-*"))


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "pointbridge-listmonk").mkdir()
    refused = _pointbridge("new-plugin", "listmonk", "--dir", str(tmp_path), cwd=tmp_path)
    assert refused.returncode == 1 and "exists already" in refused.stderr
