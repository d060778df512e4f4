"""Hostile review of 35eca3e (setting_fields.WebAddress: API URL settings checked with
``urllib.parse.urlsplit`` instead of marshmallow's URL validator), through the CLI, the
management API, the JSON Schema and the config file.

``urlsplit`` alone took hosts that marshmallow's validator refused and that requests cannot
send to: an empty or 64-character label, a leading dot or ``*``, junk after an IPv6
bracket, an IPvFuture literal, a percent sign. Saved, each made every delivery raise
urllib3's ``LocationParseError`` or requests' ``InvalidURL``, which ``ApiClient`` did not
map, so the worker logged a plugin traceback and retried forever instead of the admin being
told when saving. Such a URL stored before now pauses its integration for an admin."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pointbridge_webhooks
import pytest
from flask import Flask
from flask.testing import FlaskClient

from pointbridge import Integration
from pointbridge.contract.errors import ConfigurationError, TransientError
from pointbridge.kit.http import ApiClient
from pointbridge.kit.setting_fields import is_web_address
from pointbridge.services import Services
from pointbridge.settings import ConfigError
from pointbridge.web.cli import cli
from tests.conftest import make_settings

# Hosts a real shop uses for a platform, a proxy or a fake; the old validator took them all.
USABLE = [
    "https://api2.ecomailapp.cz/",
    "https://api.žluťoučký.cz/v2/",  # an IDN host
    "https://xn--mnchen-3ya.de/api",
    "http://[::1]:8080/api/",
    "http://[2001:db8::7]/",
    "http://user:p%40ss@proxy.internal:3128/ecomail/",
    "https://api.example.com/v1/?account=7",
    "HTTP://API.EXAMPLE.COM:443/",
    "http://fake.test",
    "http://127.0.0.1:5000",
]

# Accepted by urlsplit, refused by marshmallow's validator before 35eca3e, unusable by requests.
UNSENDABLE = [
    "http://a..b/",
    "https://api..ecomailapp.cz/",
    "http://" + "a" * 64 + ".example.com/",
    "http://.example.com/",
    "http://*.example.com/",
    "http://[::1]x/",
    "http://[v1.fe]/",
    "http://e%00x.com/",
]


def _ecomail(client: FlaskClient, auth: dict[str, str], api_url: str) -> Any:
    body = {"api_key": "k" * 32, "api_url": api_url}
    return client.post(
        "/api/integrations",
        json={"name": "shop", "platform": "ecomail", "settings": body},
        headers=auth,
    )


@pytest.mark.parametrize("api_url", USABLE)
def test_the_api_takes_a_real_shops_api_url_as_written(
    client: FlaskClient, auth: dict[str, str], api_url: str
) -> None:
    added = _ecomail(client, auth, api_url)
    assert added.status_code == 201, added.json
    shown = client.get("/api/integrations/shop", headers=auth).json
    assert shown["settings"]["api_url"] == api_url


@pytest.mark.parametrize("api_url", UNSENDABLE)
def test_the_api_refuses_an_api_url_requests_cannot_send_to(
    client: FlaskClient, auth: dict[str, str], api_url: str
) -> None:
    refused = _ecomail(client, auth, api_url)
    assert refused.status_code == 422
    assert "api_url" in str(refused.json) and "Not a valid URL." in str(refused.json)


@pytest.mark.parametrize("api_url", ["http://a..b/", "http://[::1]x/", " http://fake.test/"])
def test_a_patch_cannot_swap_in_an_unsendable_api_url(
    client: FlaskClient, auth: dict[str, str], api_url: str
) -> None:
    assert _ecomail(client, auth, "http://fake.test/").status_code == 201
    patched = client.patch(
        "/api/integrations/shop", json={"settings": {"api_url": api_url}}, headers=auth
    )
    assert patched.status_code == 422
    shown = client.get("/api/integrations/shop", headers=auth).json
    assert shown["settings"]["api_url"] == "http://fake.test/"


@pytest.mark.parametrize("api_url", ["http://a..b/", "https://api.example.com:99999/"])
def test_the_cli_refuses_an_unsendable_api_url_without_a_traceback(
    app: Flask, services: Services, api_url: str
) -> None:
    added = app.test_cli_runner().invoke(
        cli,
        [
            *("integrations", "add", "shop", "--plugin", "ecomail", "--no-install"),
            *("--set", "api_key=" + "k" * 32, "--set", f"api_url={api_url}"),
        ],
    )
    assert added.exit_code != 0
    assert "api_url" in added.output and "Not a valid URL." in added.output
    assert "Traceback" not in added.output
    assert added.exception is None or isinstance(added.exception, SystemExit)
    assert "shop" not in app.test_cli_runner().invoke(cli, ["integrations", "list"]).output


def test_the_json_schema_still_calls_api_url_and_the_webhook_url_urls(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for platform, field in (("ecomail", "api_url"), ("splio", "api_url"), ("webhooks", "url")):
        shown = client.get(f"/api/platforms/{platform}", headers=auth).json
        assert shown["settings_schema"]["properties"][field]["format"] == "url", platform
    webhooks = client.get("/api/platforms/webhooks", headers=auth).json["settings_schema"]
    assert "url" in webhooks["required"]


@pytest.mark.parametrize("url", USABLE)
def test_every_usable_address_reaches_the_network_as_a_connection_attempt(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker sees for a name that does not resolve: a TransientError it retries."""

    def unresolvable(*_: object, **__: object) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    assert is_web_address(url)
    with pytest.raises(TransientError, match="could not connect"):
        ApiClient(url, timeout=(0.5, 0.5)).get("contacts")


@pytest.mark.parametrize("url", UNSENDABLE)
def test_no_address_the_check_takes_makes_requests_raise_past_the_api_client(url: str) -> None:
    assert not is_web_address(url)


@pytest.mark.parametrize(
    "url",
    [
        # A full-width dot: a host the check takes and the HTTP client's parser refuses.
        "http://user:s3cret@ex\uff0eample.com/",
        # Saved before settings were checked as they are now.
        *(url.replace("://", "://user:s3cret@", 1) for url in UNSENDABLE),
    ],
)
def test_a_stored_url_http_cannot_use_waits_for_an_admin_and_keeps_its_password(
    url: str,
) -> None:
    """Not a plugin traceback retried forever: the integration pauses (ConfigurationError)
    with a message that says which setting to fix, and no proxy password in it."""
    with pytest.raises(ConfigurationError, match="set api_url again") as refused:
        ApiClient(url, timeout=(0.5, 0.5)).get("contacts")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("landing", "taken"),
    [
        ("https://shop.example.com/referral?utm=pb", True),
        ("https://obchod.žluťoučký.cz/doporučení", True),
        ("https://shop..example.com/referral", False),
        ("https://shop.example.com:99999/", False),
        ("https://shop.example.com/\treferral", False),
    ],
)
def test_the_config_files_referral_landing_url(
    tmp_path: Path, sqlite_url: str, landing: str, taken: bool
) -> None:
    if taken:
        assert make_settings(tmp_path, sqlite_url, referral_landing_url=landing)
        return
    with pytest.raises(ConfigError, match=r"referral_landing_url = .* is no web address"):
        make_settings(tmp_path, sqlite_url, referral_landing_url=landing)


def test_a_plugin_whose_url_setting_has_another_name_is_told_that_name() -> None:
    """The webhooks plugin keeps its receiver's address in ``url``: the admin is told to set
    that, not an ``api_url`` it does not have."""
    settings = {"url": "https://receiver\uff0eexample.com/hook", "secret": "whsec_" + "A" * 32}
    integration = Integration(9, "hooks", "webhooks", settings, {}, "ellity_", None, "s", "u")
    with pytest.raises(ConfigurationError, match="set url again"):
        pointbridge_webhooks.send(integration, ("msg_1", b"{}"))
