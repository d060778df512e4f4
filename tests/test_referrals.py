"""``/r/<code>``: the referral link platforms get counts the visit and leads to the shop's
landing page with the code; anything else is a 404 page, and `run` says what is unset."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import pointbridge.delivery.background
import pointbridge.web.serve
from pointbridge.plugins import PluginHost
from pointbridge.services import Services
from pointbridge.settings import DEFAULT_PUBLIC_URL, ConfigError, Settings
from pointbridge.storage.models import ReferralVisit
from pointbridge.web import create_app
from pointbridge.web.cli import cli
from tests.conftest import make_settings

# The shop's own query, spelt as the shop wrote it, and a fragment: both must survive.
LANDING = "https://shop.example.com/doporuceni?utm_source=loyalty&note=a%20b#form"
# Links no code of ours makes: unknown, not found, none of them an error or a way out.
HOSTILE_PATHS = [
    "/r/",
    "/r/NOSUCHCODE",
    "/r/" + "A" * 33,
    "/r/" + "A" * 20_000,
    "/r/%00",
    "/r/ABC%00DEF",
    "/r/%C5%BDLU%C5%A4OU%C4%8CK%C3%9D",
    "/r/%F0%9F%98%80",
    "/r/%ZZ",
    "/r/..%2F..%2Fapi%2Fcustomers",
    "/r/../api/openapi.json",
    "/r/A/B",
    "/r/'%20OR%20'1'='1",
    "/r///evil.example.com",
    "/r/https:%2F%2Fevil.example.com",
    "/r/@evil.example.com",
]


@pytest.fixture
def plugin_host() -> PluginHost:
    return PluginHost({"jsonl"})


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, referral_landing_url=LANDING)


def new_customer(client: FlaskClient, auth: dict[str, str], email: str) -> dict[str, Any]:
    response = client.post("/api/customers", json={"email": email}, headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def visits(services: Services, customer_id: int) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).where(ReferralVisit.customer_id == customer_id))


def test_the_link_platforms_get_leads_to_the_landing_page_with_the_code(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    customer = new_customer(client, auth, "jana@example.com")
    link = urlsplit(customer["referral_link"])
    assert f"{link.scheme}://{link.netloc}" == "http://pointbridge.test"

    response = client.get(link.path)

    assert response.status_code == 302
    code = customer["referral_code"]
    assert response.location == (
        f"https://shop.example.com/doporuceni?utm_source=loyalty&note=a%20b&ref={code}#form"
    )
    assert parse_qs(urlsplit(response.location).query) == {
        "utm_source": ["loyalty"],
        "note": ["a b"],
        "ref": [code],
    }


def test_each_visit_is_counted_once_for_its_customer_and_a_probe_not_at_all(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    jana = new_customer(client, auth, "jana@example.com")
    petr = new_customer(client, auth, "petr@example.com")
    path = urlsplit(jana["referral_link"]).path

    for _ in range(3):
        assert client.get(path).status_code == 302
    assert client.head(path).status_code == 302

    assert visits(services, jana["id"]) == 3
    assert visits(services, petr["id"]) == 0


def test_a_link_that_is_no_code_of_ours_is_an_unknown_link_page(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    customer = new_customer(client, auth, "jana@example.com")

    for path in HOSTILE_PATHS:
        # Werkzeug merges the slashes of "/r///x" with a redirect to "/r/x", on this server.
        response = client.get(path, follow_redirects=True)

        for hop in response.history:
            assert urlsplit(hop.location).netloc in ("", "localhost"), hop.location
        assert response.status_code == 404, path
        assert response.mimetype == "text/html", path
        assert "This referral link is unknown" in response.text, path
        assert "Location" not in response.headers, path
    assert visits(services, customer["id"]) == 0


def test_a_code_is_matched_exactly(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    customer = new_customer(client, auth, "jana@example.com")
    code = customer["referral_code"]

    for near_miss in (code.lower(), code[:-1], code + "A", f"{code}/", f" {code}"):
        assert client.get(f"/r/{near_miss}").status_code == 404, near_miss
    assert visits(services, customer["id"]) == 0


def test_the_redirect_only_ever_leads_to_the_configured_page(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    customer = new_customer(client, auth, "jana@example.com")
    path = urlsplit(customer["referral_link"]).path

    for extra in ("?next=https://evil.example.com", "?ref=EVIL&url=//evil.example.com"):
        location = urlsplit(client.get(path + extra).location)
        assert (location.scheme, location.netloc, location.path) == (
            "https",
            "shop.example.com",
            "/doporuceni",
        )
        assert parse_qs(location.query)["ref"] == [customer["referral_code"]]
        assert "evil" not in location.geturl()


@pytest.fixture
def unset_app(tmp_path: Path, database_url: str, plugin_host: PluginHost) -> Iterator[Flask]:
    """An app as a shop gets it before setting anything: the default public_url, no landing
    page."""
    settings = replace(make_settings(tmp_path, database_url), public_url=DEFAULT_PUBLIC_URL)
    built = Services.build(settings, plugin_host)
    yield create_app(services=built)
    built.db.dispose()


def test_without_a_landing_page_the_link_says_the_shop_has_not_set_it(
    unset_app: Flask, auth: dict[str, str]
) -> None:
    client = unset_app.test_client()
    customer = new_customer(client, auth, "jana@example.com")

    response = client.get(urlsplit(customer["referral_link"]).path)

    assert response.status_code == 404
    assert "The shop has not set where its referral links lead" in response.text
    assert "referral_landing_url" in response.text
    assert visits(unset_app.extensions["pointbridge"], customer["id"]) == 0


@pytest.mark.parametrize(
    "landing", ["shop.example.com/referral", "javascript:alert(1)", "https://", "ftp://x.cz/"]
)
def test_a_landing_page_that_is_no_web_address_is_refused_at_start(
    tmp_path: Path, landing: str
) -> None:
    with pytest.raises(ConfigError, match=r"referral_landing_url = .* is no web address"):
        make_settings(tmp_path, "sqlite://", referral_landing_url=landing)


def test_the_config_file_takes_the_landing_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "pointbridge.toml"
    config.write_text(f'[pointbridge]\nreferral_landing_url = "{LANDING}"\n', encoding="utf-8")
    monkeypatch.setenv("POINTBRIDGE_CONFIG", str(config))

    assert Settings.from_env().referral_landing_url == LANDING


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Flask, bool], Result]:
    """`pointbridge run` up to where it would serve, after adding an integration if asked."""
    monkeypatch.setattr(pointbridge.web.serve, "serve_in_process", lambda *_, **__: None)
    monkeypatch.setattr(pointbridge.delivery.background, "tune_garbage_collector", lambda: None)

    def invoke(app: Flask, with_integration: bool) -> Result:
        runner = app.test_cli_runner()
        if with_integration:
            added = runner.invoke(
                cli,
                ["integrations", "add", "dry", "--plugin", "jsonl", "--set", f"path={tmp_path}/o"],
            )
            assert added.exit_code == 0, added.output
        result = runner.invoke(cli, ["run"])
        assert result.exit_code == 0, result.output
        assert "pointbridge is serving" in result.stdout
        return result

    return invoke


def test_run_warns_once_per_setting_that_breaks_the_links(
    unset_app: Flask, run: Callable[[Flask, bool], Result]
) -> None:
    result = run(unset_app, True)

    assert result.stderr.splitlines() == [
        f"warning: public_url is the default {DEFAULT_PUBLIC_URL}, which platforms and "
        "customers cannot reach: set [pointbridge] public_url (or POINTBRIDGE_PUBLIC_URL) to "
        "this server's public address.",
        "warning: referral links (/r/CODE) answer 404 until [pointbridge] referral_landing_url "
        "names the shop page they lead to.",
    ]


def test_run_is_quiet_when_both_are_set(app: Flask, run: Callable[[Flask, bool], Result]) -> None:
    assert run(app, True).stderr == ""


def test_run_is_quiet_without_integrations(
    unset_app: Flask, run: Callable[[Flask, bool], Result]
) -> None:
    assert run(unset_app, False).stderr == ""
