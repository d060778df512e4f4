"""The console's integration pages in a real Chromium, against the platforms' fakes: adding
SmartEmailing with a wrong key then the right one, copying its webhook, Ecomail's list picked
from the account, the expiry reminders and events, an export's progress, a dead letter replayed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect
from pointbridge_ecomail.fake import SERVER_OPTIONS as ECOMAIL_OPTIONS
from pointbridge_ecomail.fake import FakeEcomail
from pointbridge_ecomail.fake import create_app as ecomail_app
from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from sqlalchemy import update

from pointbridge.delivery.admin import outbox_status
from pointbridge.host_options import NAME_RULE
from pointbridge.services import Services
from pointbridge.storage.models import ExportJob, ExportStatus, IntegrationRow, IntegrationStatus
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import seed_customers

EXPORTED = 3000
LogIn = Callable[..., None]
Shoot = Callable[[str], None]
Eventually = Callable[..., None]


@pytest.fixture
def smartemailing() -> Iterator[tuple[FakeSmartEmailing, FakeServer]]:
    fake = FakeSmartEmailing()
    with FakeServer(create_app(fake), **SERVER_OPTIONS) as server:
        yield fake, server


def _installed(services: Services, fake: FakeSmartEmailing, server: FakeServer) -> None:
    """A SmartEmailing integration installed from the command line's services: no export."""
    settings = {"api_url": server.url, "username": fake.username, "api_key": fake.api_key}
    with services.db.transaction() as session:
        services.integrations.add(session, "newsletter", "smartemailing", settings)
    services.integrations.install(services.db, "newsletter")


def copy(page: Page, button: str) -> str:
    """Press a copy button (the first of that name) and read what it put on the clipboard."""
    pressed = page.get_by_role("button", name=button).first
    pressed.click()
    expect(pressed).to_have_attribute("data-copied", "true")
    return str(page.evaluate("navigator.clipboard.readText()"))


def _status(services: Services) -> str:
    with services.db.read() as session:
        return str(services.integrations.get(session, "newsletter").status)


def test_smartemailing_refuses_a_wrong_key_then_activates_and_its_webhook_is_copied(
    page: Page,
    log_in: LogIn,
    shoot: Shoot,
    console: str,
    services: Services,
    smartemailing: tuple[FakeSmartEmailing, FakeServer],
) -> None:
    fake, server = smartemailing
    with services.db.transaction() as session:
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    log_in()
    page.get_by_role("link", name="Add an integration").click()
    shoot("platforms")
    page.get_by_role("link", name="SmartEmailing").click()
    page.get_by_label("Name", exact=True).fill("newsletter")
    page.get_by_label("Username").fill(fake.username)
    page.get_by_label("API key").fill("not-the-key")
    page.get_by_label("API URL").fill(server.url)
    page.get_by_role("button", name="Save and activate").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "SmartEmailing refused the login e-mail and API key: check the e-mail"
    )
    shoot("wrong-key")
    assert _status(services) != IntegrationStatus.ACTIVE
    assert not fake.customfields
    # The key typed is never sent back: the saved one is kept unless another is typed.
    expect(page.get_by_label("API key")).to_have_value("")
    assert "not-the-key" not in page.content()

    page.get_by_label("API key").fill(fake.api_key)
    page.get_by_role("button", name="Save and activate").click()
    expect(page.get_by_role("status").first).to_have_text(
        re.compile(r"^Activated\. \d+ custom fields created, 0 reused\.")
    )
    expect(page.locator("[data-state]")).to_have_text("active")
    created = page.get_by_role("status").first.inner_text().split()[1]
    assert int(created) == len(fake.customfields) > 0

    page.get_by_label("List ID 1").fill("7")
    page.get_by_label("Points 1").fill("50")
    page.get_by_role("button", name="Save and activate").click()
    expect(page.get_by_role("status").first).to_have_text("Saved.")
    with services.db.read() as session:
        row = services.integrations.get(session, "newsletter")
        assert services.integrations.view(row).settings["api_key"] == fake.api_key  # kept
    body = page.locator("pre.paste").first
    expect(body).to_have_text(
        '{"eventName": "subscribed", "data": {"email": "{{ df_emailaddress }}", "listId": "7"}}'
    )
    shoot("active")
    url = copy(page, "Copy webhook URL")
    secret = copy(page, "Copy webhook secret")
    # Shown redacted: neither the URL's token nor the secret is in the page.
    assert url.rsplit("/", 1)[1] not in page.content() and secret not in page.content()
    pasted = copy(page, "Copy body")

    # What SmartEmailing's automation would send, from what was copied: 50 points.
    sent = requests.post(
        url.replace(services.settings.public_url, console),
        data=pasted.replace("{{ df_emailaddress }}", "jana@example.com"),
        headers={"X-Secret-Key": secret, "Content-Type": "application/json"},
        timeout=30,
    )
    assert sent.status_code == 200, sent.text
    with services.db.read() as session:
        assert services.loyalty.find(session, "jana@example.com").balance == 50


def test_ecomail_asks_for_its_list_from_the_account_and_activates(
    page: Page, log_in: LogIn, shoot: Shoot, services: Services
) -> None:
    fake = FakeEcomail()
    fake.add_list("Customers", 1)
    fake.add_list("Newsletter", 2)
    with services.db.transaction() as session:
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    with FakeServer(ecomail_app(fake), **ECOMAIL_OPTIONS) as server:
        log_in()
        page.goto("/admin/integrations/new?platform=ecomail")
        page.get_by_label("Name", exact=True).fill("shop")
        page.get_by_label("API key").fill(fake.api_key)
        page.get_by_label("API URL").fill(server.url)
        page.get_by_label("Notify Ecomail").check()
        page.get_by_label("Days before expiry").fill("14, 3")
        page.get_by_label("Send pin-changed").uncheck()
        page.get_by_role("button", name="Save and activate").click()
        expect(page.get_by_role("alert")).to_contain_text("Choose the Ecomail list to sync to.")
        picker = page.get_by_label("List ID", exact=True)
        expect(picker.locator("option")).to_have_text(
            ["Choose…", "Customers (1)", "Newsletter (2)"]
        )
        shoot("pick-list")
        picker.select_option(label="Customers (1)")
        page.get_by_role("button", name="Save and activate").click()
        expect(page.get_by_role("status").first).to_contain_text("Activated.")
        expect(page.locator("[data-state]")).to_have_text("active")
        expect(page.get_by_label("Days before expiry")).to_have_value("14, 3")
        expect(page.get_by_label("Send pin-changed")).not_to_be_checked()
        shoot("active")
        # The first activation queued the sync of every customer (no worker runs here).
        page.get_by_role("link", name="Export all customers").click()
        expect(page.locator('[data-field="status"]')).to_have_text("queued")
        with page.expect_download() as download:
            page.get_by_role("link", name=re.compile("import file")).click()
        assert "jana@example.com" in Path(download.value.path()).read_text(encoding="utf-8")
        # Its install took stock of the list picked (Ecomail creates fields at the first sync).
        assert server.requests_to("GET", "/lists/1") and not server.requests_to("GET", "/lists/2")
    with services.db.read() as session:
        row = services.integrations.get(session, "shop")
        assert row.settings["list_id"] == "1"
        assert (row.expiry_reminders, row.disabled_events) == ([14, 3], ["pin-changed"])


def test_a_form_the_database_could_not_keep_is_refused_with_what_is_wrong(
    page: Page, log_in: LogIn, console: str, services: Services
) -> None:
    log_in()
    page.goto("/admin/integrations/new?platform=ecomail")
    page.get_by_label("Name", exact=True).fill("42")
    page.get_by_label("API key").fill("key")
    page.get_by_role("button", name="Save and activate").click()
    expect(page.get_by_role("alert")).to_have_text(f"name: {NAME_RULE}; not 42.")
    # What no browser sends but a hand-made post can: text PostgreSQL cannot store.
    token = page.locator("input[name=csrf_token]").first.input_value()
    refused = page.request.post(
        f"{console}/admin/integrations/new?platform=ecomail",
        form={"csrf_token": token, "name": "shop", "api_key": "k\x00ey"},
    )
    assert refused.status == 422
    assert "Must not contain NUL characters" in refused.text()
    with services.db.read() as session:
        assert session.query(IntegrationRow).count() == 0


def test_the_expiry_notice_is_off_where_the_platform_has_no_events(
    page: Page, log_in: LogIn
) -> None:
    log_in()
    page.goto("/admin/integrations/new?platform=dotmailer")
    expect(page.get_by_label("Notify Dotdigital")).to_be_disabled()
    expect(page.get_by_label("Do not send")).to_be_checked()
    expect(page.locator("fieldset.expiry")).to_contain_text("has no events")


def test_an_export_is_cancelled_and_a_failed_one_resumed_to_100_percent(
    page: Page,
    log_in: LogIn,
    shoot: Shoot,
    services: Services,
    start_worker: Callable[[], None],
    smartemailing: tuple[FakeSmartEmailing, FakeServer],
) -> None:
    _installed(services, *smartemailing)
    seed_customers(services.db, EXPORTED)
    log_in()
    page.get_by_role("link", name="newsletter").click()
    page.get_by_role("link", name="Export all customers").click()
    page.get_by_role("button", name="Export all customers").click()
    expect(page.locator('[data-field="status"]')).to_have_text("queued")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status").first).to_have_text("Export cancelled.")
    expect(page.locator('[data-field="status"]')).to_have_text("cancelled")

    page.get_by_role("button", name="Export all customers").click()
    expect(page.locator('[data-field="status"]')).to_have_text("queued")
    # As the worker leaves an export whose pages the platform kept refusing.
    with services.db.transaction() as session:
        session.execute(
            update(ExportJob)
            .where(ExportJob.status == ExportStatus.QUEUED)
            .values(status=ExportStatus.FAILED, last_error="SmartEmailing answered 503.")
        )
    page.reload()
    expect(page.locator('[data-field="error"]')).to_have_text("SmartEmailing answered 503.")
    start_worker()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator('[data-field="percent"]')).to_have_text("100 %", timeout=60_000)
    expect(page.locator('[data-field="status"]')).to_have_text("finished")
    expect(page.locator('[data-field="rows"]')).to_have_text(f"{EXPORTED} of {EXPORTED}")
    expect(page.locator('[data-field="rate"]')).to_have_text(re.compile(r"^\d+ a second$"))
    shoot("finished")
    assert len(smartemailing[0].contacts) == EXPORTED


def test_a_delivery_the_platform_failed_is_a_dead_letter_until_replayed(
    page: Page,
    log_in: LogIn,
    shoot: Shoot,
    services: Services,
    start_worker: Callable[[], None],
    eventually: Eventually,
    smartemailing: tuple[FakeSmartEmailing, FakeServer],
) -> None:
    fake, server = smartemailing
    _installed(services, fake, server)
    services.settings.max_attempts = 1  # the first failure is the last
    server.fail_next(1, "500")
    with services.db.transaction() as session:
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    start_worker()
    eventually(lambda: outbox_status(services.db)[0].dead == 1, "the dead letter")
    log_in()
    expect(page.locator("tr[data-integration=newsletter] td.dead")).to_have_text("1")
    shoot("dashboard")
    page.locator("tr[data-integration=newsletter] td.dead a").click()
    letter = page.locator("tr[data-dead-letter]")
    expect(letter.locator("td.last-error")).to_contain_text("500")
    shoot("dead-letter")
    letter.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status").first).to_have_text("1 dead letter queued again.")
    eventually(lambda: "jana@example.com" in fake.contacts, "the replayed contact")
    assert fake.field_values("jana@example.com")["ellity_credit"] == "0"
