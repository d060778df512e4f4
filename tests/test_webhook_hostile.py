"""Hostile requests to ``POST /webhooks/<id>/<token>``: every class that once answered 500 is a
4xx that says what is wrong and changes nothing, whichever platform's parser reads the body."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.services import Services
from pointbridge.storage.models import LedgerEntry, ListMembership, OutboxMessage

EMAIL = "jana@example.com"


@dataclass(frozen=True)
class Hook:
    platform: str
    path: str
    headers: dict[str, str]

    @property
    def integration_id(self) -> str:
        return self.path.split("/")[2]


def subscription(platform: str, list_id: str) -> str:
    """The platform's subscription body, ``list_id`` pasted in as raw JSON text."""
    if platform == "smartemailing":
        return f'{{"eventName": "subscribed", "data": {{"email": "{EMAIL}", "listId": {list_id}}}}}'
    if platform == "ecomail":
        return f'{{"payload": {{"email": "{EMAIL}", "status": "SUBSCRIBED", "listId": {list_id}}}}}'
    return f'{{"email": "{EMAIL}", "subscribed": true, "list_id": {list_id}}}'


@pytest.fixture(params=["jsonl", "smartemailing", "ecomail"])
def hook(request: pytest.FixtureRequest, services: Services, tmp_path) -> Hook:
    """An integration of the platform rewarding list 1 (Ecomail syncs into list 3), and Jana."""
    settings = {
        "jsonl": {"path": str(tmp_path / "out.jsonl")},
        "smartemailing": {"username": "shop@example.com", "api_key": "se-key"},
        "ecomail": {"api_key": "eco-key", "list_id": "3"},
    }[request.param]
    with services.db.transaction() as session:
        row = services.integrations.add(
            session, "shop", request.param, {**settings, "list_rewards": "1:50"}
        )
        services.loyalty.create_customer(session, {"email": EMAIL})
        return Hook(
            request.param,
            urlsplit(services.integrations.webhook_url(row)).path,
            {
                "X-Secret-Key": services.integrations.webhook_secret(row),
                "Content-Type": "application/json",
            },
        )


def _counts(services: Services) -> tuple[int | None, ...]:
    with services.db.transaction() as session:
        return tuple(
            session.scalar(select(func.count(model.id)))
            for model in (LedgerEntry, OutboxMessage, ListMembership)
        )


def _refused(
    client: FlaskClient, services: Services, path: str, body: bytes | str, hook: Hook
) -> tuple[int, str]:
    before = _counts(services)
    response = client.post(path, data=body, headers=hook.headers)
    assert _counts(services) == before
    return response.status_code, response.json["message"]


@pytest.mark.parametrize(
    "token",
    ["%C3%A9", "%ED%A0%BD", "%00", "caf%C3%A9" * 8],
    ids=["non-ASCII", "UTF-8 of a lone surrogate", "NUL", "long non-ASCII"],
)
def test_a_token_no_url_of_ours_holds_is_an_unknown_url(client, services, hook, token) -> None:
    path = f"/webhooks/{hook.integration_id}/{token}"
    status, message = _refused(client, services, path, subscription(hook.platform, "1"), hook)
    assert (status, message) == (401, "Unknown webhook URL: copy it again from the integration.")


@pytest.mark.parametrize(
    "integration_id",
    ["100000000000000000000", "9223372036854775808", "1" * 5000, "0", "-1", "%D9%A1", "1.0"],
    ids=["2^66", "BIGINT+1", "5,000 digits", "zero", "negative", "Arabic-Indic one", "decimal"],
)
def test_an_id_that_is_not_one_of_ours_is_an_unknown_url(
    client, services, hook, integration_id
) -> None:
    token = hook.path.rsplit("/", 1)[1]
    path = f"/webhooks/{integration_id}/{token}"
    status, message = _refused(client, services, path, subscription(hook.platform, "1"), hook)
    assert (status, message) == (401, "Unknown webhook URL: copy it again from the integration.")


def test_a_body_of_100000_brackets_is_refused_as_too_deep(client, services, hook) -> None:
    status, message = _refused(client, services, hook.path, "[" * 100_000, hook)
    assert status == 400 and "nested more than 32 levels" in message


def test_json_valid_but_too_deep_to_print_is_refused(client, services, hook) -> None:
    # Parses, but an error message quoting the value could exhaust the stack.
    deep = "[" * 500 + "]" * 500
    status, message = _refused(client, services, hook.path, subscription(hook.platform, deep), hook)
    assert status == 400 and "nested more than 32 levels" in message


def test_a_list_id_of_5000_digits_is_refused(client, services, hook) -> None:
    body = subscription(hook.platform, "7" * 5000)
    status, message = _refused(client, services, hook.path, body, hook)
    assert status == 400
    assert f"number longer than {sys.get_int_max_str_digits()} digits" in message


HINTS = {"smartemailing": "{{ df_emailaddress }}", "ecomail": "SUBSCRIBED or UNSUBSCRIBED"}


@pytest.mark.parametrize("hook", sorted(HINTS), indirect=True)
def test_the_platforms_help_comes_with_the_refusal(client, services, hook) -> None:
    response = client.post(hook.path, data="[" * 100_000, headers=hook.headers)
    assert response.status_code == 400
    assert HINTS[hook.platform] in response.json["hint"]


@pytest.mark.parametrize("change", ["removed", "webhook URL rotated"])
def test_an_integration_removed_or_given_a_new_url_while_its_webhook_is_read_refuses_it(
    client: FlaskClient,
    services: Services,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    """An admin removes the integration, or gives it a new webhook URL, after the webhook
    found it and before its points are written: the old URL is refused as it would be a
    moment later (not a 500), and nothing is credited."""
    call = services.host.call

    def removed_meanwhile(hook_name: str, *args, **kwargs):
        answer = call(hook_name, *args, **kwargs)
        if hook_name == "handle_webhook":
            with services.db.transaction() as session:
                row = services.integrations.get(session, "shop")
                if change == "removed":
                    services.integrations.remove(session, row)
                else:
                    services.integrations.rotate_webhook(row)
        return answer

    monkeypatch.setattr(services.host, "call", removed_meanwhile)
    before = _counts(services)

    response = client.post(hook.path, data=subscription(hook.platform, "1"), headers=hook.headers)

    assert response.status_code == 401, response.json
    assert "Unknown webhook URL" in response.json["message"]
    ledger, _outbox, memberships = _counts(services)
    assert (ledger, memberships) == (before[0], 0)
