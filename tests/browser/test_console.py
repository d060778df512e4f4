"""The admin console in a real Chromium: log-in and its lockout, the dashboard, replaying a
dead letter, a customer's balance, CSRF, and pages that need a log-in. Each page's screenshot
is saved under tests/browser/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import requests
from playwright.sync_api import Page, expect
from sqlalchemy import update

from pointbridge.services import Services
from pointbridge.storage.models import IntegrationRow, OutboxMessage, OutboxStatus

LogIn = Callable[..., None]
Shoot = Callable[[str], None]


def _dead_letter(services: Services, tmp_path: Path) -> None:
    """An integration with one customer whose contact update the platform refused for good."""
    with services.db.transaction() as session:
        services.integrations.add(
            session, "newsletter", "jsonl", {"path": str(tmp_path / "o.jsonl")}
        )
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    with services.db.transaction() as session:
        session.execute(
            update(OutboxMessage).values(
                status=OutboxStatus.DEAD, attempts=12, last_error="The platform refused the e-mail."
            )
        )


def test_pages_need_a_log_in(page: Page, shoot: Shoot) -> None:
    for path in (
        "/admin/",
        "/admin/deliveries",
        "/admin/customers?email=a@example.com",
        "/admin/integrations/new?platform=smartemailing",
        "/admin/integrations/newsletter/webhook",
        "/admin/integrations/newsletter/export",
    ):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/admin/login\?next="))
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shoot("login")


def test_a_log_in_leads_back_to_the_page_asked_for(page: Page, log_in: LogIn) -> None:
    page.goto("/admin/deliveries")
    page.get_by_label("E-mail").fill("admin@example.com")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_a_wrong_password_is_refused_and_five_lock_the_account(page: Page, log_in: LogIn) -> None:
    log_in("not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    for _ in range(3):
        log_in("still not it")
        expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    log_in("fifth wrong one")
    expect(page.get_by_role("alert")).to_contain_text("try again in 30 s")
    # Locked: even the right password waits.
    log_in()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed log-ins")
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_the_dashboard_shows_an_integration_and_its_dead_count(
    page: Page, log_in: LogIn, shoot: Shoot, services: Services, tmp_path: Path
) -> None:
    _dead_letter(services, tmp_path)
    log_in()
    row = page.locator("tr[data-integration=newsletter]")
    expect(row.locator("td").nth(1)).to_have_text("jsonl")
    expect(row.locator("td.dead")).to_have_text("1")
    expect(row.locator("td.last-delivery")).to_have_text("never")
    shoot("dashboard")


def test_a_replayed_dead_letter_leaves_the_list(
    page: Page, log_in: LogIn, shoot: Shoot, services: Services, tmp_path: Path
) -> None:
    _dead_letter(services, tmp_path)
    log_in()
    page.locator("tr[data-integration=newsletter] td.dead a").click()
    letter = page.locator("tr[data-dead-letter]")
    expect(letter).to_have_count(1)
    expect(letter.locator("td.last-error")).to_have_text("The platform refused the e-mail.")
    shoot("deliveries")
    letter.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status").first).to_have_text("1 dead letter queued again.")
    expect(page.locator("tr[data-dead-letter]")).to_have_count(0)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("tr[data-integration=newsletter] td.dead")).to_have_text("0")
    expect(page.locator("tr[data-integration=newsletter] td.pending")).to_have_text("1")


def test_a_customer_search_shows_the_balance_lots_and_ledger(
    page: Page, log_in: LogIn, shoot: Shoot, services: Services
) -> None:
    with services.db.transaction() as session:
        customer = services.loyalty.create_customer(session, {"email": "jana@example.com"})
        services.loyalty.post_transaction(
            session, customer, points=120, reason="order", reference="order-1001"
        )
    log_in()
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("E-mail").fill("Jana@Example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".balance")).to_have_text("120 points")
    expect(page.locator("table.ledger tbody td")).to_have_text(
        [re.compile(r"UTC$"), "+120", "order", "order-1001"]
    )
    expect(page.locator("table.lots tbody tr")).to_have_count(1)
    shoot("customer")
    page.get_by_label("E-mail").fill("nobody@example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("alert")).to_have_text("No customer with e-mail nobody@example.com.")


def test_a_post_without_the_csrf_token_is_refused(
    page: Page, log_in: LogIn, console: str, services: Services, tmp_path: Path
) -> None:
    _dead_letter(services, tmp_path)
    log_in()
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    # The logged-in browser's cookie, but a form with no token: what a hostile page would post.
    response = page.request.post(
        f"{console}/admin/deliveries/replay", form={"integration": "newsletter"}
    )
    assert response.status == 400
    assert "CSRF" in response.text()
    page.goto("/admin/deliveries")
    expect(page.locator("tr[data-dead-letter]")).to_have_count(1)
    # Without the browser's session either, the refusal is the same.
    assert requests.post(f"{console}/admin/deliveries/replay", timeout=10).status_code == 400
    # Nor is an integration added, changed or exported by a form without its token.
    for path in (
        "/admin/integrations/new?platform=smartemailing",
        "/admin/integrations/newsletter",
        "/admin/integrations/newsletter/export",
    ):
        refused = page.request.post(f"{console}{path}", form={"name": "x", "action": "cancel"})
        assert refused.status == 400, path
    with services.db.read() as session:
        assert [row.name for row in session.query(IntegrationRow)] == ["newsletter"]


def test_crafted_replay_posts_are_refused_and_replay_nothing(
    page: Page, log_in: LogIn, console: str, services: Services, tmp_path: Path
) -> None:
    """With a valid token: an id no row can have was a 500, one that is not a number
    replayed every dead letter, a name with a NUL was a 500 on PostgreSQL."""
    _dead_letter(services, tmp_path)
    log_in()
    page.goto("/admin/deliveries")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    for form in (
        {"id": "99999999999999999999"},
        {"id": "abc"},
        {"id": "-1"},
        {"integration": "news\x00letter"},
    ):
        response = page.request.post(
            f"{console}/admin/deliveries/replay", form={**form, "csrf_token": token}
        )
        assert response.status == 200, form
        page.goto("/admin/deliveries")
        expect(page.locator("tr[data-dead-letter]")).to_have_count(1)
