"""schemathesis against /api/openapi.json: whatever it sends, the API never answers 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case

from core.migrate import upgrade
from core.plugins import PluginHost
from core.services import Services
from core.settings import Settings
from core.tokens import create_token
from web import create_app

os.environ.setdefault("POINTBRIDGE_SECRET_KEY", "tests-only-secret-key")


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'fuzz.sqlite3'}"
    upgrade(url)
    services = Services.build(
        Settings(instance_path=folder, database_url=url, secret_key="fuzz"), PluginHost()
    )
    with services.db.transaction() as session:
        token = create_token(session, "fuzz")
        customer = services.loyalty.create_customer(session, {"email": "fuzz@example.com"})
        services.loyalty.post_transaction(session, customer, 100, "order")
    yield create_app(services=services), token
    services.db.dispose()


def operations() -> list[str]:
    return [
        "POST /api/customers",
        "GET /api/customers",
        "GET /api/customers/{customer_id}",
        "PATCH /api/customers/{customer_id}",
        "POST /api/customers/{customer_id}/transactions",
        "PUT /api/customers/{customer_id}/pin",
        "GET /api/customers/{customer_id}/ledger",
    ]


# schemathesis' own pytest plugin does not run under pytest 9 yet, so each operation's
# hypothesis strategy is driven directly.
@pytest.mark.parametrize("label", operations())
def test_no_input_makes_the_api_fail(label: str, fuzzed_app) -> None:
    app, token = fuzzed_app
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    found = {
        f"{op.method.upper()} {op.path}": op
        for op in (result.ok() for result in schema.get_all_operations())
    }
    assert set(found) == set(operations()), "the spec gained or lost an operation: update the list"
    operation = found[label]

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def never_a_server_error(case: Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, f"{label} {case.body!r}: {response.text}"

    never_a_server_error()
