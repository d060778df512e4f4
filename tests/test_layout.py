"""The folders show the architecture: core never reaches up into web, and the README's table of
folders is the tree as it is."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_of_core_imports_web() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "core").rglob("*.py")
        if re.search(r"^\s*(from|import) pointbridge\.web\b", path.read_text(), re.M)
    ]
    assert offenders == []


def test_the_readme_names_every_package_folder_and_no_other() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Where the code lives", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w/]+)/` \|", section, re.M))
    packages = {
        str(init.parent.relative_to(ROOT))
        for top in ("core", "web", "testing", "migrations")
        for init in [ROOT / top / "__init__.py", *(ROOT / top).glob("*/__init__.py")]
        if init.exists()
    }
    # web's own subpackages (api, cli, admin) are described in the web row.
    packages = {p for p in packages if not p.startswith("web/") and p != "migrations/versions"}
    assert listed == packages
