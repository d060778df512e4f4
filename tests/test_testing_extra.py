"""A plugin's test suite on a plain install: what ``pointbridge[testing]`` adds, and what
the ``database_url`` fixture does without it."""

from __future__ import annotations

import ast
import configparser
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

A_PLUGINS_DATABASE_TEST = """
def test_saves(database_url):
    assert database_url
"""


@pytest.fixture
def without_postgres_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if ``pip install pointbridge`` had not brought pytest-postgresql and psycopg. pytest
    would look into the missing plugin's modules when it autoloads plugins, so pointbridge's
    own is the only one the runs load."""
    for module in ("pytest_postgresql", "pytest_postgresql.janitor", "psycopg"):
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def run_a_plugins_test(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(A_PLUGINS_DATABASE_TEST)
    return pytester.runpytest_inprocess("-p", "pointbridge.testing.pytest_plugin", "-rs")


def test_database_url_without_the_postgres_tools_runs_sqlite_and_skips_postgres(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, without_postgres_tools: None
) -> None:
    monkeypatch.delenv("CI", raising=False)

    result = run_a_plugins_test(pytester)

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*PostgreSQL tests need psycopg, which is not installed: "
            "pip install 'pointbridge[[]testing]'"
        ]
    )


def test_database_url_without_the_postgres_tools_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, without_postgres_tools: None
) -> None:
    monkeypatch.setenv("CI", "true")

    result = run_a_plugins_test(pytester)

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*CI is set, so PostgreSQL tests must run*"])


def declared(section: str, key: str) -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return [Requirement(line) for line in config[section][key].strip().splitlines()]


def with_dependencies(names: set[str]) -> set[str]:
    """The distributions ``names`` bring, themselves included (installed ones only)."""
    found: set[str] = set()
    waiting = list(names)
    while waiting:
        name = canonicalize_name(waiting.pop())
        if name in found:
            continue
        found.add(name)
        for line in requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                waiting.append(requirement.name)
    return found


def imported_modules(folder: Path) -> set[str]:
    modules: set[str] = set()
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return modules - set(sys.stdlib_module_names) - {"pointbridge"}


def test_the_testing_extra_brings_everything_pointbridge_testing_imports() -> None:
    installed = {
        str(requirement.name)
        for requirement in declared("options", "install_requires")
        + declared("options.extras_require", "testing")
    }
    available = with_dependencies(installed)
    distributions = packages_distributions()

    missing = {
        module
        for module in imported_modules(ROOT / "core" / "testing")
        if not {canonicalize_name(d) for d in distributions.get(module, [module])} & available
    }

    assert missing == set()
    assert "psycopg" in available  # the driver the PostgreSQL half connects with


def test_dev_includes_the_testing_extra() -> None:
    assert Requirement("pointbridge[testing]") in declared("options.extras_require", "dev")
