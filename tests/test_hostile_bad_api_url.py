"""A stored api_url the HTTP client refuses, end to end: an Ecomail integration whose row holds
such a URL (saved by an older version, before settings were checked as they are now) pauses
for an admin instead of retrying a plugin traceback forever, keeps what waits, tells the admin
to set api_url again without quoting a password, and delivers once the URL is fixed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app
from sqlalchemy import select

from pointbridge.storage.models import IntegrationRow, OutboxMessage
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

NAME = "eco"
API_KEY = "eco-hostile-key-0b7e"
LIST_ID = "1"
EMAIL = "jana@example.com"

REFUSED_URLS = [
    # A full-width dot: only the HTTP client's parser refuses it.
    "http://user:s3cret@ex\uff0eample.com/",
    # An empty label, refused since; an older version saved it.
    "http://user:s3cret@a..b/",
    # An unclosed IPv6 bracket: even urlsplit refuses it.
    "http://user:s3cret@[::1/",
]

Shop = tuple[FakeEcomail, FakeServer, Pointbridge]


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    account = FakeEcomail(api_key=API_KEY)
    account.add_list("Newsletter", LIST_ID)
    with (
        FakeServer(create_app(account), **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        pb.add_integration(
            NAME, "ecomail", {"api_url": api.url, "api_key": API_KEY, "list_id": LIST_ID}
        )
        yield account, api, pb


def store_api_url(pb: Pointbridge, url: str) -> None:
    """Write the URL straight into the row, as an older version's check let it be saved."""
    with pb.services.db.transaction() as session:
        row = session.scalars(select(IntegrationRow).where(IntegrationRow.name == NAME)).one()
        row.settings = {**row.settings, "api_url": url}


def credit_held(account: FakeEcomail) -> str | None:
    with account.lock:
        contact = account.contacts.get(EMAIL)
        return None if contact is None else contact["custom_fields"].get("ellity_credit")


def outbox_rows(pb: Pointbridge) -> list[tuple[int, str]]:
    with pb.services.db.read() as session:
        rows = session.execute(
            select(OutboxMessage.attempts, OutboxMessage.status).where(
                OutboxMessage.integration_id == pb.integration(NAME).id
            )
        )
        return [(attempts, str(status)) for attempts, status in rows]


def assert_paused_for_an_admin(pb: Pointbridge, caplog: pytest.LogCaptureFixture) -> None:
    integration = pb.api("GET", f"/integrations/{NAME}").json()
    assert integration["status"] == "failing", integration
    message = integration["last_error"]
    assert "set api_url again" in message and "s3cret" not in message
    # The CLI shows the same message (and the setting as stored, which is the admin's own).
    assert message in pb.cli("integrations", "show", NAME)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "raised unexpectedly" not in caplog.text


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_refused_stored_url_pauses_delivery_until_an_admin_sets_it_again(
    shop: Shop, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    account, api, pb = shop
    store_api_url(pb, url)
    customer = pb.create_customer(EMAIL)
    pb.transaction(customer["id"], 120, "order")
    caplog.clear()
    for _ in range(3):
        pb.worker.run_once()

    assert_paused_for_an_admin(pb, caplog)
    waiting = outbox_rows(pb)
    assert waiting and all(attempts == 0 for attempts, _ in waiting), waiting
    assert pb.pending(NAME) == len(waiting) and pb.dead(NAME) == 0
    assert credit_held(account) is None

    out = pb.cli("integrations", "set", NAME, f"api_url={api.url}")
    assert f"{NAME} is active" in out
    pb.deliver()
    assert pb.integration(NAME).status == "active"
    assert credit_held(account) == "120"
    assert pb.dead(NAME) == 0
    # Each waiting row went out once: no attempt was spent while the URL was refused.
    # (The new api_url is a new target, so the customers are exported there as well.)
    delivered = outbox_rows(pb)
    assert len(delivered) == len(waiting) and all(a == 1 for a, _ in delivered), delivered


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_an_export_to_a_refused_stored_url_stops_with_the_same_message(
    shop: Shop, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _account, api, pb = shop
    pb.seed_customers(3)
    store_api_url(pb, url)
    caplog.clear()
    out = pb.cli("export", NAME, exit_code=None)
    assert "Traceback" not in out and "s3cret" not in out, out
    assert_paused_for_an_admin(pb, caplog)

    pb.cli("integrations", "set", NAME, f"api_url={api.url}")
    out = pb.cli("export", NAME)
    assert "finished: 3 customers sent" in out, out


def test_a_webhook_meanwhile_is_asked_again_later_and_credits_once_the_admin_fixed_it(
    shop: Shop,
) -> None:
    """A platform retries a 5xx: the subscription is not lost while settings wait for an
    admin, and the answer says why (no traceback, no 500, no password)."""
    _account, api, pb = shop
    pb.cli("integrations", "set", NAME, "list_rewards=7:50")
    customer = pb.create_customer(EMAIL)
    store_api_url(pb, "http://user:s3cret@a..b/")
    subscribed = {"payload": {"email": EMAIL, "status": "SUBSCRIBED", "listId": 7}}

    waiting = pb.webhook(NAME, json=subscribed)
    assert waiting.status_code == 503
    message = waiting.json()["message"]
    assert "waits for an admin" in message and "set api_url again" in message
    assert "s3cret" not in message
    assert pb.customer(customer["id"])["balance"] == 0

    pb.cli("integrations", "set", NAME, f"api_url={api.url}")
    assert pb.webhook(NAME, json=subscribed).status_code == 200
    assert pb.customer(customer["id"])["balance"] == 50


def test_commands_and_routes_that_need_the_settings_say_which_to_set_again(
    shop: Shop, tmp_path: Path
) -> None:
    """Install and the CSV export, from the CLI and over REST: the admin's answer, not a
    traceback or a 500."""
    _account, _api, pb = shop
    store_api_url(pb, "http://user:s3cret@a..b/")
    for command in (
        ("integrations", "install", NAME),
        ("export", NAME, "--csv", str(tmp_path / "out.csv")),
    ):
        out = pb.cli(*command, exit_code=1)
        assert "set api_url again" in out and "Traceback" not in out, (command, out)
        assert "s3cret" not in out
    installed = pb.api("POST", f"/integrations/{NAME}/install")
    assert installed.status_code == 422, installed.text
    assert "set api_url again" in installed.json()["message"]
    assert "s3cret" not in installed.text
