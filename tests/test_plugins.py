"""Discovery of plugins installed as distributions, and dispatch to one plugin only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pointbridge.contract.platform import Integration
from pointbridge.plugins import PluginHost, UnknownPlatform
from pointbridge.testing.contacts import sample_contact

PLUGIN_SOURCE = """
from marshmallow import Schema, fields
from pointbridge import Platform, hookimpl

RECEIVED = []


class Settings(Schema):
    api_key = fields.String(required=True, metadata={{"secret": True}})


@hookimpl
def register_platforms(register):
    register(Platform(name="{name}", title="{title}", settings_schema=Settings, max_batch=7))


@hookimpl
def push_contact(integration, contacts):
    RECEIVED.append((integration.platform, [c.email for c in contacts]))
    return []
"""


def install_distribution(site: Path, name: str) -> None:
    """Lay out a real installed distribution (module + dist-info with an entry point)."""
    module = f"pointbridge_{name}"
    (site / f"{module}.py").write_text(PLUGIN_SOURCE.format(name=name, title=name.title()))
    dist_info = site / f"pointbridge_{name}-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: pointbridge-{name}\nVersion: 1.2.3\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[pointbridge]\n{name} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(site, "alpha")
    install_distribution(site, "beta")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("pointbridge_alpha", "pointbridge_beta"):
        sys.modules.pop(name, None)


def _integration(platform: str) -> Integration:
    return Integration(1, "x", platform, {"api_key": "k"}, {}, "ellity_", None, "s", "u")


def test_installed_distributions_are_discovered_through_their_entry_point(site: Path) -> None:
    host = PluginHost()
    described = {p["name"]: p for p in host.describe()}
    assert described["alpha"]["package"] == "pointbridge-alpha"
    assert described["alpha"]["version"] == "1.2.3"
    assert described["alpha"]["hooks"] == ["push_contact"]
    assert host.platform("beta").max_batch == 7


def test_a_hook_call_reaches_only_the_integrations_plugin(site: Path) -> None:
    host = PluginHost()
    alpha, beta = sys.modules["pointbridge_alpha"], sys.modules["pointbridge_beta"]
    result = host.call(
        "push_contact",
        "beta",
        integration=_integration("beta"),
        contacts=[sample_contact(email="a@b.cz")],
    )
    assert result == []
    assert beta.RECEIVED == [("beta", ["a@b.cz"])]
    assert alpha.RECEIVED == []


def test_pointbridge_plugins_restricts_what_loads(site: Path, monkeypatch) -> None:
    from pointbridge.plugins import allowed_plugins_from_env

    monkeypatch.setenv("POINTBRIDGE_PLUGINS", "alpha")
    host = PluginHost(allowed_plugins_from_env())
    assert list(host.plugins) == ["alpha"]
    with pytest.raises(UnknownPlatform, match="beta"):
        host.platform("beta")
    monkeypatch.setenv("POINTBRIDGE_PLUGINS", "")
    assert PluginHost(allowed_plugins_from_env()).plugins == {}


def test_the_plugins_command_prints_json(site: Path, app) -> None:
    from pointbridge.web.cli import cli

    result = app.test_cli_runner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    described = {p["name"]: p for p in json.loads(result.output)}
    assert described["jsonl"]["platforms"][0]["capabilities"] == [
        "csv_export",
        "events",
        "webhooks",
    ]


@pytest.mark.parametrize("rate", [0, -5, 0.0, float("nan"), float("inf"), True, "10"])
def test_a_platform_refuses_an_event_rate_the_host_cannot_pace_by(rate: object) -> None:
    """The host paces a night's expiry notices at 1 / event_rate: 0 was a ZeroDivisionError
    in the scheduler, long after the plugin was written. The plugin author hears of it where
    they declare the platform."""
    from marshmallow import Schema

    from pointbridge import Platform

    with pytest.raises(ValueError, match=r"'paced': event_rate .* a positive number") as refused:
        Platform(name="paced", title="Paced", settings_schema=Schema, event_rate=rate)  # type: ignore[arg-type]
    assert repr(rate) in str(refused.value)
    assert Platform(name="paced", title="Paced", settings_schema=Schema, event_rate=0.5)


def test_hook_docs_stay_in_step_with_the_readme() -> None:
    """Every hook in core/hookspecs.py is documented in the README's plugin guide."""
    from pointbridge.contract import hookspecs

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    hooks = [
        name
        for name in dir(hookspecs)
        if getattr(getattr(hookspecs, name), "pointbridge_spec", None)
    ]
    assert set(hooks) == {
        "register_platforms",
        "install",
        "push_contact",
        "emit_event",
        "handle_webhook",
    }
    for hook in hooks:
        assert f"`{hook}" in readme, f"README.md does not document the {hook} hook"
        assert getattr(hookspecs, hook).__doc__.strip(), f"{hook} has no docstring"
