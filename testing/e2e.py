"""A whole pointbridge host for end-to-end tests of a plugin.

``Pointbridge`` runs the real host: a fresh database (SQLite file, or any URL you pass), the
Flask app served over real HTTP on a loopback port, the real CLI, and a worker you drive with
``deliver()``. A plugin's e2e test points an integration at its fake platform and checks what
arrives there. The fake holds only the routes the plugin calls (here a platform whose install
needs none and which takes one ``PUT`` per contact)::

    from flask import Flask, request

    from pointbridge.testing import FakeServer
    from pointbridge.testing.e2e import Pointbridge


    def create_fake_app(contacts: dict[str, dict]) -> Flask:
        app = Flask("fake-myplatform")

        @app.put("/contacts/<email>")
        def upsert(email: str) -> dict:
            contacts[email] = request.get_json()
            return {"email": email}

        return app


    def test_story(tmp_path, database_url):
        contacts: dict[str, dict] = {}
        with (
            FakeServer(create_fake_app(contacts)) as fake,
            Pointbridge(tmp_path, database_url=database_url) as pb,
        ):
            pb.add_integration("shop", "myplatform", {"api_url": fake.url, "api_key": "good"})
            customer = pb.create_customer("jana@example.com", first_name="Jana")
            pb.transaction(customer["id"], 120, "order")
            pb.deliver()
            assert contacts["jana@example.com"]["ellity_credit"] == "120"

``cli()`` fails the test when the exit code is not the expected one and returns the output;
``webhook()`` posts to the integration's real webhook URL; ``seed_customers()`` inserts many
customers fast (for export tests); ``deliver()`` runs the worker until nothing is pending,
waiting out backoff and rate-limit pauses, and fails with the outbox status on timeout.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests
from click.testing import Result
from sqlalchemy import func, literal, select

from pointbridge.access.tokens import create_token
from pointbridge.delivery.admin import dead_letters, outbox_status
from pointbridge.delivery.worker import Backoff, RoundResult
from pointbridge.plugins import PluginHost
from pointbridge.services import Services
from pointbridge.settings import Settings
from pointbridge.storage.db import Database
from pointbridge.storage.migrate import upgrade
from pointbridge.storage.models import (
    Customer,
    IntegrationRow,
    LedgerEntry,
    OutboxMessage,
    OutboxStatus,
    PointLot,
    outbox_status_is,
)
from pointbridge.testing.server import FakeServer


class Pointbridge:
    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str | None = None,
        host: PluginHost | None = None,
        max_attempts: int = 8,
        **settings: Any,
    ) -> None:
        os.environ.setdefault("POINTBRIDGE_SECRET_KEY", "tests-only-secret-key")
        url = database_url or f"sqlite:///{tmp_path / 'pointbridge-e2e.sqlite3'}"
        upgrade(url)
        self.settings = Settings(
            instance_path=tmp_path / "instance",
            database_url=url,
            secret_key="tests-only-secret-key",
            max_attempts=max_attempts,
            **settings,
        )
        self.services = Services.build(self.settings, host)
        from pointbridge.web import create_app

        self.app = create_app(services=self.services)
        self._server = FakeServer(self.app)
        self.url = self._server.url
        self.settings.public_url = self.url
        with self.services.db.transaction() as session:
            self.token = create_token(session, "e2e")
        self.worker = self.services.worker(backoff=Backoff(base=0.05, cap=0.5))

    def __enter__(self) -> Pointbridge:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self.services.db.dispose()

    # the CLI ------------------------------------------------------------------------------

    def cli(self, *args: str, exit_code: int | None = 0) -> str:
        """Run ``pointbridge ARGS``; fail unless it exits with ``exit_code`` (None: any)."""
        from pointbridge.web.cli import cli

        result: Result = self.app.test_cli_runner().invoke(cli, list(args))
        if exit_code is not None and result.exit_code != exit_code:
            raise AssertionError(
                f"pointbridge {' '.join(args)} exited {result.exit_code}, expected "
                f"{exit_code}:\n{result.output}"
                + (f"\n{result.exception!r}" if result.exception else "")
            )
        return result.output

    def add_integration(
        self, name: str, plugin: str, settings: Mapping[str, Any], exit_code: int | None = 0
    ) -> str:
        """``pointbridge integrations add NAME --plugin PLUGIN --set KEY=VALUE ...``, which
        also installs it; returns the output."""
        pairs = [f"--set={key}={value}" for key, value in settings.items()]
        return self.cli(
            "integrations", "add", name, "--plugin", plugin, *pairs, exit_code=exit_code
        )

    # the REST API over HTTP ---------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/api{path}", headers=headers, timeout=30, **kwargs
        )

    def create_customer(self, email: str, **fields: Any) -> dict[str, Any]:
        response = self.api("POST", "/customers", json={"email": email, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def update_customer(self, customer_id: int, **fields: Any) -> dict[str, Any]:
        response = self.api("PATCH", f"/customers/{customer_id}", json=fields)
        assert response.status_code == 200, response.text
        return response.json()

    def transaction(
        self, customer_id: int, points: int, reason: str, **fields: Any
    ) -> dict[str, Any]:
        body = {"points": points, "reason": reason, **fields}
        if isinstance(body.get("expires_at"), date):
            body["expires_at"] = body["expires_at"].isoformat()
        response = self.api("POST", f"/customers/{customer_id}/transactions", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def set_pin(self, customer_id: int, pin: str | None = None) -> str:
        response = self.api(
            "PUT", f"/customers/{customer_id}/pin", json={} if pin is None else {"pin": pin}
        )
        assert response.status_code == 200, response.text
        return response.json()["pin"]

    def shop_for_rounds(
        self, customers: int, rounds: int, timeout: float = 90
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A busy shop, for end-to-end tests under faults: ``shopper<n>@example.com``
        customers, each credited once a round (5 + n + round points), every third given a
        new PIN in the second round; the outbox delivered after each round. Returns the
        customers and those given a PIN."""
        created = [self.create_customer(f"shopper{n}@example.com") for n in range(customers)]
        with_pin = created[::3]
        for round_ in range(rounds):
            for n, customer in enumerate(created):
                self.transaction(customer["id"], 5 + n + round_, "order")
            if round_ == 1:
                for customer in with_pin:
                    self.set_pin(customer["id"])
            self.deliver(timeout=timeout)
        return created, with_pin

    def customer(self, customer_id: int) -> dict[str, Any]:
        response = self.api("GET", f"/customers/{customer_id}")
        assert response.status_code == 200, response.text
        return response.json()

    # webhooks -----------------------------------------------------------------------------

    def integration(self, name: str) -> IntegrationRow:
        with self.services.db.transaction() as session:
            return self.services.integrations.get(session, name)

    def webhook_url(self, name: str) -> str:
        return self.services.integrations.webhook_url(self.integration(name))

    def webhook_secret(self, name: str) -> str:
        return self.services.integrations.webhook_secret(self.integration(name))

    def webhook(self, name: str, **kwargs: Any) -> requests.Response:
        """POST to the integration's webhook URL (``json=``, ``data=``, ``headers=``)."""
        return requests.post(self.webhook_url(name), timeout=30, **kwargs)

    # delivery -----------------------------------------------------------------------------

    def pending(self, name: str | None = None) -> int:
        with self.services.db.transaction() as session:
            statement = select(func.count(OutboxMessage.id)).where(
                outbox_status_is(OutboxStatus.PENDING)
            )
            if name:
                statement = statement.where(
                    OutboxMessage.integration_id == self.integration(name).id
                )
            return session.scalar(statement) or 0

    def dead(self, name: str | None = None) -> int:
        return len(dead_letters(self.services.db, name, limit=100_000))

    def last_outbox_id(self) -> int:
        """The newest outbox row's id (0 when empty): mark it, then read ``attempts(after=)``."""
        with self.services.db.read() as session:
            return session.scalar(select(func.max(OutboxMessage.id))) or 0

    def attempts(self, after: int = 0) -> list[int]:
        """How many attempts each outbox row newer than ``after`` has spent, delivered or not."""
        with self.services.db.read() as session:
            return list(
                session.scalars(
                    select(OutboxMessage.attempts)
                    .where(OutboxMessage.id > after)
                    .order_by(OutboxMessage.id)
                )
            )

    def balances(self) -> dict[str, int]:
        """Every customer's balance by e-mail, read straight from the database."""
        with self.services.db.read() as session:
            rows = session.execute(select(Customer.email, Customer.balance))
            return {email: balance for email, balance in rows}

    def customer_id(self, email: str) -> int:
        with self.services.db.read() as session:
            found = session.scalar(select(Customer.id).where(Customer.email == email))
        assert found is not None, f"no customer {email}"
        return found

    def deliver(self, timeout: float = 60.0) -> RoundResult:
        """Run the worker until no row is pending; waits out backoff and 429 pauses."""
        deadline = time.monotonic() + timeout
        total = RoundResult()
        while True:
            result = self.worker.run_once()
            total += result
            if self.pending() == 0:
                return total
            if time.monotonic() > deadline:
                status = "\n".join(str(line) for line in outbox_status(self.services.db))
                raise AssertionError(f"outbox not drained in {timeout}s:\n{status}")
            if not (result.delivered or result.failed):
                time.sleep(0.05)

    # bulk data ----------------------------------------------------------------------------

    def seed_customers(
        self, count: int, *, points: int = 10, start: int = 0, marketing_consent: bool = False
    ) -> None:
        """Insert ``count`` customers (``customer{n}@example.com``) with ``points`` each, fast,
        without outbox rows: for export tests."""
        seed_customers(
            self.services.db,
            count,
            points=points,
            start=start,
            marketing_consent=marketing_consent,
        )


def seed_customers(
    db: Database, count: int, *, points: int = 10, start: int = 0, marketing_consent: bool = False
) -> None:
    """Insert ``count`` customers (``customer{n}@example.com``) with ``points`` each, fast,
    without outbox rows: for export tests."""
    now = datetime.now(UTC)
    chunk = 5000
    with db.transaction() as session:
        for first in range(start, start + count, chunk):
            numbers = range(first, min(first + chunk, start + count))
            rows = [
                {
                    "email": f"customer{n}@example.com",
                    "first_name": f"First{n}",
                    "last_name": f"Last{n}",
                    "referral_code": f"SEED{n:08d}",
                    "registered": True,
                    "marketing_consent": marketing_consent,
                    "balance": points,
                    "missions": 0,
                    "rewards": 0,
                    "referrals": 0,
                    "last_change_at": now,
                    "last_change_points": points,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in numbers
            ]
            session.execute(Customer.__table__.insert(), rows)
        if points:
            session.execute(
                LedgerEntry.__table__.insert().from_select(
                    ["customer_id", "points", "reason", "created_at"],
                    select(
                        Customer.id,
                        literal(points, LedgerEntry.points.type),
                        literal("import"),
                        literal(now, LedgerEntry.created_at.type),
                    )
                    .where(Customer.referral_code.like("SEED%"))
                    .where(~Customer.id.in_(select(LedgerEntry.customer_id))),
                )
            )
            session.execute(
                PointLot.__table__.insert().from_select(
                    ["customer_id", "entry_id", "points", "remaining"],
                    select(
                        LedgerEntry.customer_id,
                        LedgerEntry.id,
                        LedgerEntry.points,
                        LedgerEntry.points,
                    ).where(~LedgerEntry.id.in_(select(PointLot.entry_id))),
                )
            )
