from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pointbridge_smartemailing import emit_event, install, push_contact
from pointbridge_smartemailing.client import RATE_LIMIT, SmartEmailingClient
from pointbridge_smartemailing.fake import (
    FakeSmartEmailing,
    create_app,
    error_body,
    rate_limit_rule,
)

from pointbridge import (
    AuthError,
    Contact,
    Event,
    Integration,
    PermanentError,
    RateLimited,
    TransientError,
)
from pointbridge.ratelimit import SAFETY
from pointbridge.testing import FakeServer, Faults


def test_throttled_import_waits_as_told(
    fake: FakeSmartEmailing,
    make_integration: Callable[..., Integration],
    make_contact: Callable[..., Contact],
) -> None:
    data = install(make_integration()).data
    rule = rate_limit_rule(calls=1, per_seconds=30)
    with FakeServer(create_app(fake), rate_limits=[rule]) as throttled:
        integration = make_integration(url=throttled.url, data=data)
        assert push_contact(integration, [make_contact()]) == []
        with pytest.raises(RateLimited) as caught:
            push_contact(integration, [make_contact(points=1)])
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30
    assert fake.field_values("jan@example.cz")["ellity_credit"] == "120"


def test_server_errors_are_transient(
    fake: FakeSmartEmailing,
    make_integration: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    make_event: Callable[..., Event],
) -> None:
    faults = Faults(rate=1.0, kinds=("503",))
    with FakeServer(create_app(fake), faults=faults, error_body=error_body) as failing:
        integration = make_integration(url=failing.url)
        with pytest.raises(TransientError):
            emit_event(integration, [make_event()])
        with pytest.raises(TransientError):
            install(integration)
    assert fake.events == []


def test_dropped_connection_is_transient(
    fake: FakeSmartEmailing,
    make_integration: Callable[..., Integration],
    make_event: Callable[..., Event],
) -> None:
    dropping = FakeServer(create_app(fake), faults=Faults(rate=1.0, kinds=("drop",)))
    with dropping, pytest.raises(TransientError):
        emit_event(make_integration(url=dropping.url), [make_event()])


def test_revoked_key_pauses_with_admin_message_and_no_secret(
    make_integration: Callable[..., Integration],
    make_event: Callable[..., Event],
) -> None:
    with pytest.raises(AuthError) as caught:
        emit_event(make_integration(api_key="revoked-secret-key"), [make_event()])
    assert "check the e-mail" in str(caught.value)
    assert "revoked-secret-key" not in str(caught.value)


def test_whole_batch_refusal_is_permanent(fake: FakeSmartEmailing, server: FakeServer) -> None:
    client = SmartEmailingClient(server.url, fake.username, fake.api_key)
    items = [{"emailaddress": f"c{n}@example.cz"} for n in range(501)]
    with pytest.raises(PermanentError) as caught:
        client.import_contacts(items)
    assert "500" in str(caught.value)
    assert fake.contacts == {}


def test_every_request_of_a_call_waits_for_the_integrations_shared_budget(
    make_integration: Callable[..., Integration],
    fake: FakeSmartEmailing,
    server: FakeServer,
    pacer: Any,  # conftest's RecordingPacer
) -> None:
    integration = make_integration()
    # install makes a dozen requests (check, list fields, create ten): none may go unpaced.
    install(integration)
    requests_made = len(server.requests)
    assert requests_made == 12
    assert pacer.limit == RATE_LIMIT
    # The clock stands still, so every request after the first waits one full slot more.
    interval = 1 / (RATE_LIMIT.per_second * SAFETY)
    assert pacer.waits == pytest.approx([interval * n for n in range(1, requests_made)])


def test_the_first_request_of_a_hook_call_uses_the_slot_the_host_took(
    make_integration: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
    server: FakeServer,
    pacer: Any,  # conftest's RecordingPacer
) -> None:
    integration = make_integration()
    install(integration)
    pacer.clock += 3600  # long after: the budget is whole again
    pacer.waits.clear()
    server.requests.clear()
    with pacer.call():  # what the host does around every hook call
        assert push_contact(integration, [make_contact()]) == []
    assert [r.path for r in server.requests] == ["/import"]
    # One slot for the host's call, shared with its single request: nobody waited.
    assert pacer.waits == []
