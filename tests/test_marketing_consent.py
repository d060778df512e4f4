"""A customer's marketing consent: false unless the shop says so, the same through the REST API,
the bulk route and the CSV import, and carried to every platform in the contact snapshot."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from pointbridge.delivery.snapshots import load_contacts
from pointbridge.services import Services
from pointbridge.storage.models import Customer
from pointbridge.web.cli import cli


def _consents(services: Services) -> dict[str, bool]:
    with services.db.read() as session:
        return dict(session.execute(select(Customer.email, Customer.marketing_consent)).all())


def test_rest_consent_is_false_unless_given_and_can_be_changed(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    silent = client.post("/api/customers", json={"email": "jana@example.com"}, headers=auth)
    assert silent.status_code == 201, silent.json
    assert silent.json["marketing_consent"] is False
    agreed = client.post(
        "/api/customers",
        json={"email": "petr@example.com", "marketing_consent": True},
        headers=auth,
    )
    assert agreed.json["marketing_consent"] is True

    url = f"/api/customers/{silent.json['id']}"
    changed = client.patch(url, json={"marketing_consent": True}, headers=auth)
    assert changed.status_code == 200, changed.json
    assert client.get(url, headers=auth).json["marketing_consent"] is True
    refused = client.patch(url, json={"marketing_consent": "perhaps"}, headers=auth)
    assert refused.status_code == 422
    assert "marketing_consent" in refused.json["errors"]


def test_bulk_takes_consent_and_a_resend_changes_nothing(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    body = [
        {"email": "jana@example.com", "marketing_consent": True},
        {"email": "petr@example.com"},
    ]
    first = client.post("/api/customers/bulk", json=body, headers=auth)
    assert [r["status"] for r in first.json["items"]] == ["created", "created"]
    again = client.post("/api/customers/bulk", json=body, headers=auth)
    assert [r["status"] for r in again.json["items"]] == ["unchanged", "unchanged"]
    assert _consents(services) == {"jana@example.com": True, "petr@example.com": False}


def test_csv_import_takes_consent_and_an_empty_cell_keeps_it(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(
        "email,marketing_consent\njana@example.com,true\npetr@example.com,false\neva@example.com,\n"
    )
    result = app.test_cli_runner().invoke(cli, ["customers", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert _consents(services) == {
        "jana@example.com": True,
        "petr@example.com": False,
        "eva@example.com": False,
    }
    source.write_text("email,marketing_consent\njana@example.com,\npetr@example.com,1\n")
    result = app.test_cli_runner().invoke(cli, ["customers", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert _consents(services)["jana@example.com"] is True
    assert _consents(services)["petr@example.com"] is True


def test_plugins_get_the_consent_in_the_contact(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    ids = [
        client.post("/api/customers", json=body, headers=auth).json["id"]
        for body in (
            {"email": "a@example.com", "marketing_consent": True},
            {"email": "b@example.com"},
        )
    ]
    with services.db.read() as session:
        contacts = load_contacts(session, ids, "https://shop.example/r/")
    assert [contacts[i].marketing_consent for i in ids] == [True, False]
