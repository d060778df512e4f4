"""Hostile review of session 24's changes: a PostgreSQL credit in one statement, the
webhook's integration lookup outside a transaction, a webhook racing an admin, a bulk body
with a byte-order mark, and e-mails in Unicode NFC (migration 0013 included)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, insert, select

from pointbridge.services import Services
from pointbridge.storage.migrate import downgrade, upgrade
from pointbridge.storage.models import Customer, LedgerEntry, ListMembership, PointLot, User
from pointbridge.testing.served import released_together, served
from pointbridge.web.cli import cli

LIST_REWARD = 30
NDJSON = "application/x-ndjson"
BOM = "\ufeff".encode()


def _shop(services: Services, tmp_path: Path) -> str:
    """An integration rewarding list 7 and one customer; the webhook's path."""
    settings = {"path": str(tmp_path / "out.jsonl"), "list_rewards": f"7:{LIST_REWARD}"}
    with services.db.transaction() as session:
        row = services.integrations.add(session, "dry", "jsonl", settings)
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
        path = services.integrations.webhook_url(row).removeprefix(services.settings.public_url)
    return path


def _subscribe(client: FlaskClient, path: str) -> Any:
    return client.post(path, json={"email": "jana@example.com", "list_id": "7", "subscribed": True})


def _after_parsing(
    services: Services, monkeypatch: pytest.MonkeyPatch, admin: Callable[[Any], None]
) -> None:
    """Run ``admin`` (in its own transaction) after the webhook found its integration and
    the plugin parsed the body, before the points are written."""
    call = services.host.call

    def meanwhile(hook_name: str, *args: Any, **kwargs: Any) -> Any:
        answer = call(hook_name, *args, **kwargs)
        if hook_name == "handle_webhook":
            with services.db.transaction() as session:
                admin(session)
        return answer

    monkeypatch.setattr(services.host, "call", meanwhile)


def _memberships(services: Services) -> list[tuple[int, int]]:
    with services.db.read() as session:
        rows = session.execute(
            select(ListMembership.integration_id, ListMembership.credited_points)
        )
        return [tuple(row) for row in rows]


def _balance(services: Services) -> int:
    with services.db.read() as session:
        return session.scalar(select(Customer.balance).where(Customer.email == "jana@example.com"))


def test_a_removed_integrations_webhook_credits_nothing_when_a_new_integration_is_added_meanwhile(
    client: FlaskClient,
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """37947c0 answers 401 when the foreign key refuses the write; on SQLite an integration
    added after the removal takes the removed one's id (INTEGER PRIMARY KEY without
    AUTOINCREMENT reuses the largest id), so the stale webhook's membership and points are
    written, under the new integration."""
    path = _shop(services, tmp_path)

    def replace(session: Any) -> None:
        services.integrations.remove(session, services.integrations.get(session, "dry"))
        session.flush()
        services.integrations.add(
            session, "other", "jsonl", {"path": str(tmp_path / "other.jsonl")}
        )

    _after_parsing(services, monkeypatch, replace)

    response = _subscribe(client, path)

    assert response.status_code == 401, response.json
    assert (_balance(services), _memberships(services)) == (0, [])


@pytest.mark.parametrize("change", ["disable", "reward taken away"])
def test_an_integration_disabled_or_unrewarded_before_the_write_credits_nothing(
    client: FlaskClient,
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    path = _shop(services, tmp_path)

    def admin(session: Any) -> None:
        row = services.integrations.get(session, "dry")
        if change == "disable":
            services.integrations.disable(row)
        else:
            services.integrations.update(row, {"list_rewards": "8:5"})

    _after_parsing(services, monkeypatch, admin)

    response = _subscribe(client, path)

    assert response.status_code in (403, 422), response.json
    assert _balance(services) == 0


# money over real HTTP: a credit in one statement on PostgreSQL -------------------------------

THREADS = 24


@pytest.fixture
def base(app: Flask) -> Iterator[str]:
    with served(app) as url:
        yield url


def _post(
    http: requests.Session, url: str, auth: dict[str, str], points: int, **extra: Any
) -> requests.Response:
    return http.post(
        url, json={"points": points, "reason": "order", **extra}, headers=auth, timeout=60
    )


def _lots_match_their_entries(services: Services, customer_id: int) -> None:
    """Balance == ledger sum == open lots' remaining, and every lot is its own credit's."""
    with services.db.read() as session:
        balance = session.scalar(select(Customer.balance).where(Customer.id == customer_id))
        entries = {
            row.id: row
            for row in session.execute(
                select(LedgerEntry.id, LedgerEntry.customer_id, LedgerEntry.points,
                       LedgerEntry.expires_on)
            )
        }  # fmt: skip
        lots = session.execute(
            select(PointLot.entry_id, PointLot.customer_id, PointLot.points,
                   PointLot.remaining, PointLot.expires_on)
        ).all()  # fmt: skip
    assert balance == sum(e.points for e in entries.values() if e.customer_id == customer_id)
    assert balance == sum(lot.remaining for lot in lots if lot.customer_id == customer_id)
    credits = sorted(e.id for e in entries.values() if e.points > 0)
    assert sorted(lot.entry_id for lot in lots) == credits
    for lot in lots:
        entry = entries[lot.entry_id]
        assert (lot.customer_id, lot.points, lot.expires_on) == (
            entry.customer_id, entry.points, entry.expires_on,
        )  # fmt: skip


def test_one_reference_sent_at_once_with_two_amounts_credits_once_and_409s_the_other(
    base: str, app: Flask, services: Services, auth: dict[str, str]
) -> None:
    with services.db.transaction() as session:
        customer_id = services.loyalty.create_customer(session, {"email": "jana@example.com"}).id
    url = f"{base}/api/customers/{customer_id}/transactions"
    amounts = [25 if n % 2 else 40 for n in range(THREADS)]

    responses = released_together(
        [lambda http, p=p: _post(http, url, auth, p, reference="order-1") for p in amounts]
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1 and not any(status >= 500 for status in statuses), statuses
    first = next(r.json() for r in responses if r.status_code == 201)
    replays = [r.json() for r in responses if r.status_code == 200]
    assert statuses[200] == amounts.count(first["points"]) - 1
    assert statuses[409] == THREADS - amounts.count(first["points"])
    assert {(r["id"], r["balance"], r["replayed"]) for r in replays} <= {
        (first["id"], first["points"], True)
    }
    _lots_match_their_entries(services, customer_id)
    missing = _post(requests.Session(), f"{base}/api/customers/999999/transactions", auth, 5,
                    reference="order-1")  # fmt: skip
    assert missing.status_code == 404, missing.text
    assert app.test_cli_runner().invoke(cli, ["ledger", "verify"]).exit_code == 0


def test_credits_debits_and_subscription_webhooks_on_one_customer_keep_lots_on_their_entries(
    base: str, app: Flask, services: Services, auth: dict[str, str], tmp_path: Path
) -> None:
    path = _shop(services, tmp_path)
    with services.db.read() as session:
        customer_id = session.scalar(select(Customer.id))
    url = f"{base}/api/customers/{customer_id}/transactions"
    hook = f"{base}{path}"

    def flip(subscribed: bool) -> Callable[[requests.Session], requests.Response]:
        body = {"email": "jana@example.com", "list_id": "7", "subscribed": subscribed}
        return lambda http: http.post(hook, json=body, timeout=60)

    calls: list[Callable[[requests.Session], requests.Response]] = []
    for n in range(THREADS * 3):
        kind = n % 4
        if kind == 0:
            calls.append(lambda http, n=n: _post(http, url, auth, 7 + n % 5, reference=f"c{n}"))
        elif kind == 1:
            calls.append(lambda http: _post(http, url, auth, -6))
        else:
            calls.append(flip(kind == 2))

    responses = released_together(calls)

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 201, 409}, statuses
    _lots_match_their_entries(services, customer_id)
    credited = sum(m[1] for m in _memberships(services))
    assert credited in (0, LIST_REWARD)
    assert app.test_cli_runner().invoke(cli, ["ledger", "verify"]).exit_code == 0


# bulk bodies with byte-order marks ------------------------------------------------------------


def _bulk(client: FlaskClient, auth: dict[str, str], data: bytes, content_type: str) -> Any:
    return client.post(
        "/api/customers/bulk", data=data, headers={**auth, "Content-Type": content_type}
    )


def test_a_byte_order_mark_before_blank_ndjson_lines_counts_the_items_from_zero(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = BOM + b"  \r\n\n" + b'{"email": "jana@example.com"}\n'
    response = _bulk(client, auth, body, NDJSON)
    assert response.status_code == 200, response.json
    assert response.json["created"] == 1 and response.json["items"][0]["index"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "line"),
    [
        (b'{"email": "a@b.cz"}\n' + BOM + b'{"email": "c@b.cz"}\n', NDJSON, "Line 2"),
        (BOM + BOM + b'[{"email": "a@b.cz"}]', "application/json", "Line 1"),
        ("\ufeff[]".encode("utf-16-le"), "application/json", "Line 1"),
        ("\ufeff{}\n".encode("utf-16-be"), NDJSON, "Line 1"),
    ],
    ids=["mid-ndjson", "two-marks", "utf-16-le", "utf-16-be"],
)
def test_a_byte_order_mark_anywhere_but_the_start_is_a_400_naming_the_line(
    client: FlaskClient, auth: dict[str, str], body: bytes, content_type: str, line: str
) -> None:
    response = _bulk(client, auth, body, content_type)
    assert response.status_code == 400, response.json
    assert response.json["message"].startswith(line)


# e-mails in NFC -------------------------------------------------------------------------------

COMPOSED, DECOMPOSED = "jan\u00e1k@example.cz", "jana\u0301k@example.cz"


def test_a_fullwidth_look_alike_of_an_address_is_not_a_second_customer(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    created = client.post("/api/customers", json={"email": "jana@example.com"}, headers=auth)
    assert created.status_code == 201
    twin = client.post(
        "/api/customers", json={"email": "\uff4a\uff41\uff4e\uff41@example.com"}, headers=auth
    )
    assert twin.status_code in (409, 422), twin.json


def test_bulk_and_webhooks_find_a_customer_by_the_decomposed_form_of_the_address(
    client: FlaskClient, auth: dict[str, str], services: Services, tmp_path: Path
) -> None:
    path = _shop(services, tmp_path)
    with services.db.transaction() as session:
        services.loyalty.create_customer(session, {"email": COMPOSED})
    bulk = _bulk(
        client, auth, f'{{"email": "{DECOMPOSED}", "first_name": "Jan"}}\n'.encode(), NDJSON
    )
    assert bulk.status_code == 200 and bulk.json["updated"] == 1, bulk.json
    hook = client.post(path, json={"email": DECOMPOSED.upper(), "list_id": "7", "subscribed": True})
    assert hook.status_code == 200, hook.json
    found = client.get("/api/customers", query_string={"email": DECOMPOSED}, headers=auth).json
    assert [(c["first_name"], c["balance"]) for c in found["items"]] == [("Jan", LIST_REWARD)]


def test_migration_0013_composes_admin_addresses_unless_the_composed_one_is_taken(
    database_url: str,
) -> None:
    downgrade(database_url, "0012")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(User.__table__),
                [
                    {"id": 1, "email": DECOMPOSED, "password_hash": "x"},
                    {"id": 2, "email": "\u00e9va@example.cz", "password_hash": "x"},
                    {"id": 3, "email": "e\u0301va@example.cz", "password_hash": "x"},
                ],
            )
        upgrade(database_url)
        with engine.connect() as connection:
            stored = dict(connection.execute(select(User.id, User.email)).all())
        with engine.begin() as connection:
            connection.execute(User.__table__.delete())
    finally:
        engine.dispose()
        upgrade(database_url)
    assert stored == {1: COMPOSED, 2: "\u00e9va@example.cz", 3: "e\u0301va@example.cz"}
