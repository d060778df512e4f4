"""Fuzzing the management API with schemathesis: whatever it is sent, never a 5xx, a refusal is
the JSON error body, and no answer holds a platform secret."""

from __future__ import annotations

import json

import pytest
import schemathesis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.generation import GenerationMode

from pointbridge.services import Services
from pointbridge.testing.fuzz import fuzz_settings
from tests.test_api_fuzz import OPERATIONS as CUSTOMER_OPERATIONS
from tests.test_management_api import API_KEY, VaultPlugin

pytestmark = pytest.mark.fuzz

OPERATIONS = [
    "GET /api/integrations",
    "POST /api/integrations",
    "GET /api/integrations/{name}",
    "PATCH /api/integrations/{name}",
    "DELETE /api/integrations/{name}",
    "POST /api/integrations/{name}/install",
    "POST /api/integrations/{name}/enable",
    "POST /api/integrations/{name}/disable",
    "POST /api/integrations/{name}/rotate-webhook",
    "POST /api/integrations/{name}/export",
    "GET /api/integrations/{name}/export",
    "DELETE /api/integrations/{name}/export",
    "GET /api/platforms",
    "GET /api/platforms/{name}",
    "GET /api/outbox",
    "GET /api/outbox/dead",
    "POST /api/outbox/retry",
    "GET /api/tokens",
    "POST /api/tokens",
    "DELETE /api/tokens/{token_id}",
]


@pytest.fixture
def shop(services: Services) -> str:
    """An integration whose install asks for a list, so installs reach the platform's answer."""
    services.host.register(VaultPlugin(), "vault")
    with services.db.transaction() as session:
        settings = {"login": "shop@example.com", "api_key": API_KEY}
        return services.integrations.add(session, "shop", "vault", settings).name


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_input_makes_the_management_api_fail(
    label: str, app: Flask, auth: dict[str, str], shop: str
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    found = {
        f"{op.method.upper()} {op.path}": op
        for op in (result.ok() for result in schema.get_all_operations())
    }
    assert set(found) == {*OPERATIONS, *CUSTOMER_OPERATIONS}, "update the list of operations"
    operation = found[label]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    strategies = [operation.as_strategy(mode) for mode in modes]
    if "{name}" in operation.path:
        known = {"name": "vault" if "platforms" in operation.path else shop}
        strategies += [operation.as_strategy(mode, path_parameters=known) for mode in modes]

    @given(case=st.one_of(strategies))
    @fuzz_settings(ci_examples=25)
    def never_a_server_error(case: Case) -> None:
        response = case.call(headers=auth)
        assert response.status_code < 500, response.text
        assert API_KEY not in response.text
        if response.status_code >= 400:
            assert {"code", "message", "errors"} <= set(json.loads(response.text))

    never_a_server_error()
