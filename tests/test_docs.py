"""The plugin author's documentation matches the code (as datasette's tests/test_docs.py does):
README's "Writing a plugin" names every hook with its signature and every public name, and the
end-to-end example in ``pointbridge.testing.e2e`` runs as written."""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pointbridge
from pointbridge.contract import hookspecs
from pointbridge.contract.platform import Platform
from pointbridge.testing import e2e

ROOT = Path(__file__).resolve().parent.parent


def writing_a_plugin() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Writing a plugin\n", 1)[1]
    return section.split("\n## ", 1)[0]


def hookspec_names() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, f"{hookspecs.PROJECT}_spec")
    ]


def mentioned(name: str, text: str) -> bool:
    return re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", text) is not None


@pytest.mark.parametrize("name", hookspec_names())
def test_every_hook_is_documented_with_its_signature(name: str) -> None:
    parameters = inspect.signature(getattr(hookspecs, name)).parameters
    signature = f"`{name}({', '.join(parameters)})`"

    assert signature in writing_a_plugin()


@pytest.mark.parametrize("name", pointbridge.__all__)
def test_every_public_name_is_documented(name: str) -> None:
    assert mentioned(name, writing_a_plugin())


def test_every_platform_parameter_is_documented() -> None:
    fields = ", ".join(field.name for field in dataclasses.fields(Platform))

    assert f"`Platform({fields})`" in " ".join(writing_a_plugin().split())


def test_every_loyalty_field_is_documented() -> None:
    # Every value empty: only the keys matter here.
    contact = pointbridge.Contact(**dict.fromkeys(pointbridge.Contact.__dataclass_fields__))

    for key in pointbridge.loyalty_fields(contact):
        assert mentioned(key, writing_a_plugin()), key


EXAMPLE_PLUGIN = """
import requests
from marshmallow import Schema, fields

from pointbridge import InstallResult, Platform, hookimpl, loyalty_fields, send_each


class Settings(Schema):
    # Self-hosted: no single real URL, so no default.
    api_url = fields.Url(required=True, require_tld=False)
    api_key = fields.String(required=True, metadata={"secret": True})


@hookimpl
def register_platforms(register):
    register(Platform(name="myplatform", title="My platform", settings_schema=Settings))


@hookimpl
def install(integration):
    return InstallResult()


@hookimpl
def push_contact(integration, contacts):
    def send(contact):
        values = loyalty_fields(contact)
        body = {integration.field_prefix + key: value for key, value in values.items()}
        url = f"{integration.settings['api_url']}/contacts/{contact.email}"
        requests.put(url, json=body, timeout=10).raise_for_status()

    return send_each(contacts, send, key=lambda contact: contact.customer_id)
"""


@pytest.fixture
def myplatform_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin the example is written for, installed as a distribution with its entry
    point, which is how the example's ``Pointbridge`` finds it."""
    site = tmp_path / "site"
    distribution = site / "pointbridge_myplatform-0.1.dist-info"
    distribution.mkdir(parents=True)
    (site / "pointbridge_myplatform.py").write_text(EXAMPLE_PLUGIN)
    (distribution / "METADATA").write_text("Name: pointbridge-myplatform\nVersion: 0.1\n")
    (distribution / "entry_points.txt").write_text(
        "[pointbridge]\nmyplatform = pointbridge_myplatform\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("POINTBRIDGE_PLUGINS", raising=False)


def test_the_e2e_example_runs_as_written(
    tmp_path: Path, database_url: str, myplatform_installed: None
) -> None:
    docstring = e2e.__doc__ or ""
    example = textwrap.dedent(docstring.split("::\n", 1)[1].split("\n\n``", 1)[0])
    namespace: dict[str, Any] = {}
    exec(compile(example, "pointbridge.testing.e2e example", "exec"), namespace)

    namespace["test_story"](tmp_path / "example", database_url)
