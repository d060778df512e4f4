"""``pointbridge new-plugin``: a working plugin to start from, built on the plugin kit."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from pointbridge.contract.errors import PointbridgeError

NAME = re.compile(r"[a-z][a-z0-9_]{1,30}")
# Template path (under plugin_template/) -> where it goes in the new distribution.
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package/__init__.py.tmpl": "pointbridge_{name}/__init__.py",
    "package/fake.py.tmpl": "pointbridge_{name}/fake.py",
    "tests/test_contract.py.tmpl": "tests/test_contract.py",
}


class NewPluginError(PointbridgeError):
    pass


def write_plugin(name: str, directory: Path) -> Path:
    """Write ``pointbridge-<name>/`` into ``directory``; returns its path."""
    if not NAME.fullmatch(name):
        raise NewPluginError(
            f"{name!r} cannot name a plugin: use 2 to 31 lower-case letters, digits or '_', "
            "starting with a letter (it becomes the package pointbridge_<name>)."
        )
    target = directory / f"pointbridge-{name}"
    if target.exists():
        raise NewPluginError(f"{target} exists already; pick another name or --dir.")
    values = {
        "name": name,
        "title": name.replace("_", " ").title(),
        "class_name": name.replace("_", " ").title().replace(" ", ""),
    }
    template = files("pointbridge") / "plugin_template"
    for source, destination in LAYOUT.items():
        text = template.joinpath(source).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = target / destination.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
