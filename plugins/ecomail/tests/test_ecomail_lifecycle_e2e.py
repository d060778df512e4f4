"""What a shop admin does with an Ecomail integration over its life, through the whole host:
the first activation sends the customers already there, a re-install does not send them again
unless asked or the list changed, a corrected API key resumes delivery, and a failed add can
be removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge
from pointbridge.web.cli import cli

NAME = "eco"
API_KEY = "eco-lifecycle-key-91b2"

Shop = tuple[FakeEcomail, FakeServer, Pointbridge]


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    account = FakeEcomail(api_key=API_KEY)
    account.add_list("Newsletter", "1")
    account.add_list("Loyalty club", "2")
    with (
        FakeServer(create_app(account), **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        yield account, api, pb


def add(pb: Pointbridge, api: FakeServer, api_key: str = API_KEY, exit_code: int = 0) -> str:
    settings = {"api_url": api.url, "api_key": api_key, "list_id": "1"}
    return pb.add_integration(NAME, "ecomail", settings, exit_code=exit_code)


def members(account: FakeEcomail, list_id: str) -> set[str]:
    with account.lock:
        return set(account.lists[list_id].members)


def test_the_first_activation_sends_existing_customers_and_a_reinstall_only_when_asked(
    shop: Shop,
) -> None:
    account, api, pb = shop
    pb.seed_customers(3)
    out = add(pb, api)
    assert "initial sync of every customer queued (export 1) for its first activation" in out
    pb.cli("export", NAME)
    existing = {f"customer{n}@example.com" for n in range(3)}
    assert members(account, "1") == existing

    again = pb.cli("integrations", "install", NAME)
    assert "queued" not in again
    assert f"none is sent again; `pointbridge integrations install {NAME} --resync`" in again

    asked = pb.cli("integrations", "install", NAME, "--resync")
    assert "initial sync of every customer queued (export 2) for --resync" in asked

    moved = pb.cli("integrations", "set", NAME, "list_id=2")
    assert f"{NAME} is active" in moved
    assert "initial sync of every customer queued (export 3) for its new target" in moved
    pb.cli("export", NAME)
    assert members(account, "2") == existing


def test_a_corrected_api_key_installs_at_once_and_what_waited_is_delivered(shop: Shop) -> None:
    account, api, pb = shop
    refused = add(pb, api, api_key="not-the-key", exit_code=1)
    assert f"`pointbridge integrations remove {NAME}`" in refused
    customer = pb.create_customer("jana@example.com")
    pb.transaction(customer["id"], 120, "order")
    assert pb.pending(NAME) > 0

    out = pb.cli("integrations", "set", NAME, f"api_key={API_KEY}")
    assert f"{NAME} is active" in out
    assert "status: active" in pb.cli("integrations", "show", NAME)
    pb.deliver()
    assert pb.pending(NAME) == 0
    with account.lock:
        assert account.contacts["jana@example.com"]["custom_fields"]["ellity_credit"] == "120"


def test_a_disabled_integration_is_enabled_and_a_failed_one_removed(shop: Shop) -> None:
    _account, api, pb = shop
    add(pb, api, api_key="not-the-key", exit_code=1)
    pb.cli("integrations", "disable", NAME)
    assert "is disabled: `pointbridge integrations enable" in pb.cli(
        "integrations", "set", NAME, f"api_key={API_KEY}"
    )
    assert f"{NAME} is active" in pb.cli("integrations", "enable", NAME)

    pb.create_customer("jana@example.com")
    declined = pb.app.test_cli_runner().invoke(cli, ["integrations", "remove", NAME], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert NAME in pb.cli("integrations", "list")

    assert f"{NAME} is removed" in pb.cli("integrations", "remove", NAME, "--yes")
    assert "no integrations yet" in pb.cli("integrations", "list")
    assert pb.pending() == 0  # its queued rows went with it
