"""The management REST API: integrations, the plugin registry, exports, the outbox and tokens,
as a shop system or an admin page drives them; hostile input; secrets never answered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient
from marshmallow import Schema, fields
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from pointbridge import (
    AuthError,
    Capability,
    ChoiceRequired,
    InstallResult,
    Integration,
    Platform,
    TransientError,
    hookimpl,
)
from pointbridge.services import Services
from pointbridge.storage.models import OutboxMessage, OutboxStatus
from pointbridge.web.cli import cli

API_KEY = "sk-live-1234567890abcdef"
LISTS = [("1", "Newsletter"), ("2", "VIP")]


class VaultSettings(Schema):
    login = fields.Email(required=True, metadata={"description": "Account e-mail."})
    api_key = fields.String(required=True, metadata={"secret": True})
    list_id = fields.Integer(load_default=None, allow_none=True)


class VaultPlugin:
    """A platform whose install asks for the list, refuses a wrong key, or is down."""

    @hookimpl
    def register_platforms(self, register: Any) -> None:
        register(
            Platform(
                name="vault",
                title="Vault",
                settings_schema=VaultSettings,
                capabilities={Capability.EVENTS, Capability.WEBHOOKS},
                target_settings=frozenset({"list_id"}),
            )
        )

    @hookimpl
    def install(self, integration: Integration) -> InstallResult:
        if integration.settings["api_key"] == "wrong":
            raise AuthError("Vault refused the API key: copy it again from Vault's settings.")
        if integration.settings["api_key"] == "down":
            raise TransientError("Vault answered 503")
        if integration.settings["list_id"] is None:
            raise ChoiceRequired("list_id", LISTS, "Pick the Vault list to sync to.")
        return InstallResult(created=["ellity_credit"], message="1 field created.")


class Recorder:
    """A client that keeps every answer, to show that none ever held a secret."""

    def __init__(self, client: FlaskClient, auth: dict[str, str]) -> None:
        self.client, self.auth, self.answers = client, auth, []

    def __call__(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.open(path, method=method, headers=self.auth, **kwargs)
        self.answers.append(response.get_data(as_text=True))
        if response.status_code >= 400:
            assert set(response.json) >= {"code", "message", "errors"}, response.json
        return response


@pytest.fixture
def vault(services: Services) -> Services:
    services.host.register(VaultPlugin(), "vault")
    return services


@pytest.fixture
def api(client: FlaskClient, auth: dict[str, str], vault: Services) -> Iterator[Recorder]:
    recorder = Recorder(client, auth)
    yield recorder
    for answer in recorder.answers:
        assert API_KEY not in answer


def _add(api: Recorder, name: str = "shop", **settings: Any) -> TestResponse:
    body = {"login": "shop@example.com", "api_key": API_KEY, **settings}
    return api(
        "POST", "/api/integrations", json={"name": name, "platform": "vault", "settings": body}
    )


def test_an_integration_from_add_to_remove(api: Recorder, vault: Services) -> None:
    added = api(
        "POST",
        "/api/integrations",
        json={
            "name": "shop",
            "platform": "vault",
            "settings": {"login": "shop@example.com", "api_key": API_KEY},
            "expiry_notice_days": 7,
            "list_rewards": {"9": 50},
        },
    )
    assert added.status_code == 201, added.json
    assert added.json["status"] == "new"
    assert added.json["settings"]["api_key"] == "sk••••••ef"
    assert added.json["expiry_notice"] == "7 days ahead"
    assert "•" in added.json["webhook_url"] and "•" in added.json["webhook_secret"]

    listed = api("GET", "/api/integrations").json
    assert [(i["name"], i["status"]) for i in listed] == [("shop", "new")]
    assert listed[0]["health"] == {
        "pending": 0,
        "retrying": 0,
        "dead": 0,
        "oldest_pending_seconds": None,
    }

    asked = api("POST", "/api/integrations/shop/install", json={})
    assert asked.status_code == 409
    assert asked.json["setting"] == "list_id"
    assert asked.json["options"] == [{"value": v, "label": label} for v, label in LISTS]

    changed = api("PATCH", "/api/integrations/shop", json={"settings": {"list_id": 2}})
    assert changed.status_code == 200, changed.json
    assert changed.json["changed"] == ["list_id"] and changed.json["install_needed"] is True

    installed = api("POST", "/api/integrations/shop/install", json={})
    assert installed.status_code == 200, installed.json
    assert installed.json["integration"]["status"] == "active"
    assert installed.json["created"] == ["ellity_credit"]
    job = installed.json["initial_sync"]["export_id"]
    assert installed.json["initial_sync"]["reason"] == "its first activation"

    progress = api("GET", "/api/integrations/shop/export").json
    assert (progress["job_id"], progress["status"]) == (job, "queued")
    assert api("DELETE", "/api/integrations/shop/export").json == {"cancelled": 1}
    assert api("GET", "/api/integrations/shop/export").json["status"] == "cancelled"
    restarted = api("POST", "/api/integrations/shop/export", json={"restart": True})
    assert restarted.status_code == 202 and restarted.json["job_id"] != job

    again = api("POST", "/api/integrations/shop/install", json={})
    assert again.json["initial_sync"] is None
    resynced = api("POST", "/api/integrations/shop/install", json={"resync": True})
    assert resynced.json["initial_sync"]["reason"] == "--resync"

    assert (
        api("PATCH", "/api/integrations/shop", json={"expiry_notice_days": "off"}).json[
            "install_needed"
        ]
        is False
    )
    assert api("POST", "/api/integrations/shop/disable").json["status"] == "disabled"
    assert api("POST", "/api/integrations/shop/enable").json["integration"]["status"] == "active"

    old_url = vault.integrations.webhook_url(_row(vault, "shop"))
    rotated = api("POST", "/api/integrations/shop/rotate-webhook", json={"secret": True}).json
    assert rotated["webhook_url"] != old_url and rotated["webhook_url"].startswith(
        "http://pointbridge.test/webhooks/"
    )
    assert rotated["webhook_secret"] == vault.integrations.webhook_secret(_row(vault, "shop"))
    shown = api("GET", "/api/integrations/shop").json
    assert rotated["webhook_url"] not in str(shown) and rotated["webhook_secret"] not in str(shown)

    assert api("DELETE", "/api/integrations/shop").json == {"removed": "shop", "note": None}
    gone = api("GET", "/api/integrations/shop")
    assert gone.status_code == 404 and "'shop'" in gone.json["message"]


def _row(services: Services, name: str) -> Any:
    with services.db.read() as session:
        return services.integrations.get(session, name)


def test_a_refused_install_says_what_to_fix(api: Recorder) -> None:
    _add(api, "wrong", list_id=1, api_key="wrong")
    refused = api("POST", "/api/integrations/wrong/install", json={})
    assert refused.status_code == 422 and "copy it again" in refused.json["message"]
    assert api("GET", "/api/integrations/wrong").json["last_error"] == refused.json["message"]

    _add(api, "down", list_id=1, api_key="down")
    down = api("POST", "/api/integrations/down/install", json={})
    assert down.status_code == 502 and "503" in down.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "named"),
    [
        ("GET", "/api/integrations/nope", None, 404, "'nope'"),
        ("PATCH", "/api/integrations/nope", {"field_prefix": "x_"}, 404, "'nope'"),
        ("POST", "/api/integrations/nope/install", {}, 404, "'nope'"),
        ("POST", "/api/integrations/nope/export", {}, 404, "'nope'"),
        ("DELETE", "/api/integrations/nope", None, 404, "'nope'"),
        ("GET", "/api/integrations/a%00b", None, 404, "a\\x00b"),
        ("GET", "/api/integrations/" + "9" * 30, None, 404, "9" * 30),
        ("GET", "/api/integrations/" + "x" * 5000, None, 404, "xxx"),
        ("GET", "/api/integrations/%C2%B2", None, 404, "²"),
        ("GET", "/api/platforms/nope", None, 404, "'nope'"),
        ("GET", "/api/outbox/dead?integration=nope", None, 404, "'nope'"),
        ("POST", "/api/outbox/retry", {"integration": "nope"}, 404, "'nope'"),
        ("DELETE", "/api/tokens/999", None, 404, "999"),
        ("POST", "/api/integrations", {"name": "x", "platform": "nope"}, 404, "'nope'"),
        ("POST", "/api/integrations", {"name": 5, "platform": "vault"}, 422, "name"),
        ("POST", "/api/integrations", {"name": "12", "platform": "vault"}, 422, "name"),
        ("POST", "/api/integrations", {"name": "a/b", "platform": "vault"}, 422, "name"),
        ("POST", "/api/integrations", {"name": "x", "platform": "vault"}, 422, "login"),
        ("PATCH", "/api/integrations/shop", {"settings": "x"}, 422, "settings"),
        ("PATCH", "/api/integrations/shop", {"settings": {"api_key": 5}}, 422, "api_key"),
        ("PATCH", "/api/integrations/shop", {"settings": {"colour": "red"}}, 422, "colour"),
        ("PATCH", "/api/integrations/shop", {"settings": {"login": "a\u0000b"}}, 422, "settings"),
        ("PATCH", "/api/integrations/shop", {"field_prefix": "x" * 33}, 422, "field_prefix"),
        ("PATCH", "/api/integrations/shop", {"field_prefix": ["x"]}, 422, "field_prefix"),
        ("PATCH", "/api/integrations/shop", {"expiry_notice_days": [14, 3, 14]}, 422, "twice"),
        ("PATCH", "/api/integrations/shop", {"expiry_notice_days": [-3]}, 422, "expiry_notice"),
        ("PATCH", "/api/integrations/shop", {"expiry_notice_days": [1] * 6}, 422, "twice"),
        ("PATCH", "/api/integrations/shop", {"expiry_notice_days": [*range(1, 7)]}, 422, "1 to 5"),
        ("PATCH", "/api/integrations/shop", {"expiry_notice_days": {"a": 1}}, 422, "expiry_not"),
        ("PATCH", "/api/integrations/shop", {"disabled_events": ["pin-chnged"]}, 422, "pin-chnged"),
        (
            "PATCH",
            "/api/integrations/shop",
            {"disabled_events": "x,pin-changed"},
            422,
            "no event x",
        ),
        ("PATCH", "/api/integrations/shop", {"disabled_events": ["a\u0000b"]}, 422, "event 'a"),
        ("PATCH", "/api/integrations/shop", {"disabled_events": [["x"]]}, 422, "disabled_events"),
        ("PATCH", "/api/integrations/shop", {"disabled_events": ["x"] * 8}, 422, "at most the 7"),
        ("PATCH", "/api/integrations/shop", {"disabled_events": "pin-changed," * 2}, 422, "twice"),
        ("PATCH", "/api/integrations/shop", {"reward_thresholds": [-5]}, 422, "between 1"),
        ("PATCH", "/api/integrations/shop", {"reward_thresholds": [500, 500]}, 422, "500 is"),
        (
            "PATCH",
            "/api/integrations/shop",
            {"reward_thresholds": [*range(1, 22)]},
            422,
            "up to 20",
        ),
        ("PATCH", "/api/integrations/shop", {"reward_thresholds": "500,x"}, 422, "not 500,x"),
        ("PATCH", "/api/integrations/shop", {"reward_thresholds": [True, 3.5]}, 422, "reward_th"),
        ("PATCH", "/api/integrations/shop", {"reward_thresholds": "9" * 5000}, 422, "99…"),
        ("PATCH", "/api/integrations/shop", {"reward_thresholds": {"1": 1}}, 422, "reward_thr"),
        ("PATCH", "/api/integrations/shop", {"expiry_notice_days": 9999}, 422, "expiry_notice"),
        ("PATCH", "/api/integrations/shop", {"list_rewards": {"1": "a"}}, 422, "list_rewards"),
        ("PATCH", "/api/integrations/shop", {"list_rewards": {"1": 10**30}}, 422, "list_rewards"),
        ("POST", "/api/integrations/shop/install", {"resync": "maybe"}, 422, "resync"),
        ("POST", "/api/outbox/retry", {"ids": ["x"]}, 422, "ids"),
        ("POST", "/api/outbox/retry", {"ids": [2**70]}, 422, "ids"),
        ("GET", "/api/outbox/dead?limit=0", None, 422, "limit"),
        ("POST", "/api/tokens", {"name": ""}, 422, "name"),
        ("POST", "/api/tokens", {"name": {"a": 1}}, 422, "name"),
    ],
)
def test_hostile_input_is_refused_naming_what_is_wrong(
    api: Recorder, method: str, path: str, body: Any, status: int, named: str
) -> None:
    assert _add(api).status_code == 201
    before = api("GET", "/api/integrations/shop").json
    response = api(method, path, json=body) if body is not None else api(method, path)
    assert response.status_code == status, response.json
    assert named in response.json["message"] + str(response.json["errors"]), response.json
    assert api("GET", "/api/integrations/shop").json == before


@pytest.mark.parametrize("path", ["/api/integrations", "/api/integrations/shop", "/api/tokens"])
def test_broken_json_is_a_400(api: Recorder, path: str) -> None:
    _add(api)
    method = "PATCH" if path.endswith("shop") else "POST"
    response = api(method, path, data='{"name": ', content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json["message"]


def test_every_management_route_wants_a_token(client: FlaskClient, vault: Services) -> None:
    for path in ("/api/integrations", "/api/platforms", "/api/outbox", "/api/tokens"):
        response = client.get(path)
        assert response.status_code == 401 and response.json["code"] == "unauthorized"


def test_the_registry_describes_each_platform_settings_as_json_schema(api: Recorder) -> None:
    platforms = {p["name"]: p for p in api("GET", "/api/platforms").json}
    assert {"vault", "jsonl"} <= set(platforms)
    vault = api("GET", "/api/platforms/vault").json
    assert vault == platforms["vault"]
    schema = vault["settings_schema"]
    assert set(schema["required"]) == {"api_key", "login"}
    assert schema["properties"]["api_key"]["writeOnly"] is True
    assert schema["properties"]["list_id"]["type"] == ["integer", "null"]
    # What a generated form sends is checked by the schema as the API checks it.
    form = jsonschema_rs.Draft7Validator(schema)
    assert form.is_valid({"login": "shop@example.com", "api_key": "k", "list_id": None})
    assert not form.is_valid({"login": "shop@example.com"})
    assert not form.is_valid({"login": "shop@example.com", "api_key": "k", "colour": "red"})
    host = jsonschema_rs.Draft7Validator(vault["host_settings_schema"])
    assert host.is_valid({"expiry_notice_days": 7, "list_rewards": {"1": 50}})


def test_tokens_are_shown_once_listed_without_them_and_revoked(
    client: FlaskClient, api: Recorder
) -> None:
    created = api("POST", "/api/tokens", json={"name": "shop page"})
    assert created.status_code == 201
    token = created.json["token"]
    assert token.startswith("pb_") and created.json["hint"] == token[:7]
    listed = api("GET", "/api/tokens").json
    assert [t["name"] for t in listed] == ["tests", "shop page"]
    assert token not in str(listed)
    own = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/tokens", headers=own).status_code == 200
    assert api("DELETE", f"/api/tokens/{created.json['id']}").status_code == 204
    assert client.get("/api/tokens", headers=own).status_code == 401
    assert api("DELETE", f"/api/tokens/{created.json['id']}").status_code == 404


def test_the_outbox_counts_shows_dead_letters_and_retries_them(
    api: Recorder, vault: Services
) -> None:
    _add(api, list_id=1)
    api("POST", "/api/integrations/shop/install", json={})
    api("DELETE", "/api/integrations/shop/export")
    for email in ("a@example.com", "b@example.com"):
        assert api("POST", "/api/customers", json={"email": email}).status_code == 201
    with vault.db.transaction() as session:
        first = session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id))
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == first)
            .values(status=OutboxStatus.DEAD, attempts=12, last_error="Vault refused: bad e-mail")
        )
    (line,) = api("GET", "/api/outbox").json
    assert (line["integration"], line["pending"], line["dead"]) == ("shop", 1, 1)
    assert api("GET", "/api/integrations").json[0]["health"]["dead"] == 1

    (letter,) = api("GET", "/api/outbox/dead?integration=shop").json
    assert letter["id"] == first and letter["last_error"] == "Vault refused: bad e-mail"
    assert letter["customer_email"] == "a@example.com"

    retried = api("POST", "/api/outbox/retry", json={"integration": "shop", "ids": [first]})
    assert retried.json == {"revived": 1, "reactivated": []}
    assert api("GET", "/api/outbox/dead").json == []
    assert api("GET", "/api/outbox").json[0]["pending"] == 2


def test_swagger_ui_is_served_from_pointbridge_itself(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is fetched from elsewhere"
        fetched = client.get(asset)
        assert fetched.status_code == 200 and len(fetched.data) > 1000, asset
    assert '"/api/openapi.json"' in html
    assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io


def test_the_cli_and_rest_make_the_same_integration(
    api: Recorder, app: Any, vault: Services
) -> None:
    pairs = ["login=shop@example.com", f"api_key={API_KEY}", "list_id=2", "field_prefix=shop_"]
    added = app.test_cli_runner().invoke(
        cli,
        [
            "integrations",
            "add",
            "by-cli",
            "--plugin",
            "vault",
            *[arg for pair in pairs for arg in ("--set", pair)],
        ],
    )
    assert added.exit_code == 0, added.output
    _add(api, "by-rest", list_id=2)
    api("PATCH", "/api/integrations/by-rest", json={"field_prefix": "shop_"})
    assert api("POST", "/api/integrations/by-rest/install", json={}).status_code == 200

    def stored(name: str) -> dict[str, Any]:
        with vault.db.read() as session:
            row = vault.integrations.get(session, name)
            described = vault.integrations.describe(row)
            # The CLI stores settings as typed ("2"), JSON as sent (2): the plugin gets both
            # loaded by the schema, which is what must be the same.
            loaded = vault.integrations.view(row).settings
        unique = {"id", "name", "webhook_url", "webhook_secret", "settings"}
        return {
            **{key: value for key, value in described.items() if key not in unique},
            "loaded": loaded,
        }

    assert stored("by-cli") == stored("by-rest")
    assert stored("by-rest")["status"] == "active"
    exports = [api("GET", f"/api/integrations/{n}/export").json for n in ("by-cli", "by-rest")]
    assert [(e["status"], e["total"]) for e in exports] == [("queued", 0), ("queued", 0)]


def test_a_token_cannot_point_a_file_sink_at_the_servers_files(
    api: Recorder, vault: Services, tmp_path: Path
) -> None:
    target = tmp_path / "authorized_keys"
    body = {"name": "sink", "platform": "jsonl", "settings": {"path": str(target)}}
    refused = api("POST", "/api/integrations", json=body)
    assert refused.status_code == 403
    assert "pointbridge integrations" in refused.json["message"]

    # One added on the server keeps its file: REST cannot move it either.
    with vault.db.transaction() as session:
        vault.integrations.add(session, "sink", "jsonl", {"path": str(tmp_path / "dry.jsonl")})
    moved = api("PATCH", "/api/integrations/sink", json={"settings": {"path": str(target)}})
    assert moved.status_code == 403
    with vault.db.read() as session:
        assert vault.integrations.get(session, "sink").settings["path"].endswith("dry.jsonl")
    assert not target.exists()


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (
            {"expiry_notice_days": [3, 14], "disabled_events": ["tier-changed", "pin-changed"]},
            {
                "expiry_notice": "14, 3 days ahead",
                "disabled_events": ["pin-changed", "tier-changed"],
            },
        ),
        (
            {"expiry_notice_days": "14,3", "disabled_events": "pin-changed, tier-changed"},
            {
                "expiry_notice": "14, 3 days ahead",
                "disabled_events": ["pin-changed", "tier-changed"],
            },
        ),
        ({"reward_thresholds": [1000, 500]}, {"reward_thresholds": [500, 1000]}),
        ({"reward_thresholds": "1000, 500"}, {"reward_thresholds": [500, 1000]}),
    ],
)
def test_event_settings_are_taken_as_json_or_as_the_command_line_writes_them(
    api: Recorder, vault: Services, written: dict[str, Any], shown: dict[str, Any]
) -> None:
    """The same settings sent when the integration is added and in a later PATCH."""
    assert _add(api, name="json").status_code == 201
    added = api(
        "POST",
        "/api/integrations",
        json={
            "name": "shop",
            "platform": "vault",
            "settings": {"login": "shop@example.com", "api_key": API_KEY},
            **written,
        },
    )
    assert added.status_code == 201, added.json
    patched = api("PATCH", "/api/integrations/json", json=written)
    assert patched.status_code == 200 and patched.json["install_needed"] is False, patched.json
    for name in ("shop", "json"):
        got = api("GET", f"/api/integrations/{name}").json
        assert {key: got[key] for key in shown} == shown
    row = _row(vault, "json")
    assert (row.disabled_events, row.reward_thresholds) == (
        shown.get("disabled_events"),
        shown.get("reward_thresholds"),
    )


def test_event_settings_are_cleared_by_an_empty_list_or_none(api: Recorder) -> None:
    on = {"disabled_events": ["pin-changed"], "reward_thresholds": [500], "expiry_notice_days": 7}
    assert api("PATCH", "/api/integrations/shop", json=on).status_code == 404
    assert _add(api).status_code == 201
    assert api("PATCH", "/api/integrations/shop", json=on).status_code == 200
    off = {"disabled_events": "none", "reward_thresholds": [], "expiry_notice_days": None}
    got = api("PATCH", "/api/integrations/shop", json=off).json["integration"]
    assert (got["disabled_events"], got["reward_thresholds"], got["expiry_notice"]) == (
        [],
        [],
        "off",
    )
