from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pointbridge_smartemailing import emit_event, install, push_contact
from pointbridge_smartemailing.fake import FakeSmartEmailing

from pointbridge import (
    AuthError,
    Contact,
    Event,
    Integration,
    PermanentError,
    Platform,
    RateLimited,
    TransientError,
)
from pointbridge.kit.ratelimit import SAFETY
from pointbridge.testing import FakeServer


def test_throttled_import_waits_as_told(
    fake: FakeSmartEmailing,
    server: FakeServer,
    make_integration: Callable[..., Integration],
    make_contact: Callable[..., Contact],
) -> None:
    integration = make_integration(data=install(make_integration()).data)
    assert push_contact(integration, [make_contact()]) == []
    server.fail_next(1, "429", path="/import", retry_after=30)
    with pytest.raises(RateLimited) as caught:
        push_contact(integration, [make_contact(points=1)])
    assert caught.value.retry_after == 30
    assert fake.field_values("jan@example.cz")["ellity_credit"] == "120"


@pytest.mark.parametrize("fault", ["503", "drop"])
def test_server_errors_and_dropped_connections_are_transient(
    fake: FakeSmartEmailing,
    server: FakeServer,
    make_integration: Callable[..., Integration],
    make_event: Callable[..., Event],
    fault: str,
) -> None:
    integration = make_integration()
    server.fail_next(1, fault)
    with pytest.raises(TransientError):
        emit_event(integration, [make_event()])
    server.fail_next(1, fault)
    with pytest.raises(TransientError):
        install(integration)
    assert fake.events == [] and fake.customfields == {}


def test_revoked_key_pauses_with_admin_message_and_no_secret(
    make_integration: Callable[..., Integration],
    make_event: Callable[..., Event],
) -> None:
    with pytest.raises(AuthError) as caught:
        emit_event(make_integration(api_key="revoked-secret-key"), [make_event()])
    assert "check the e-mail" in str(caught.value)
    assert "revoked-secret-key" not in str(caught.value)


def test_a_list_deleted_since_install_fails_the_batch_for_good(
    make_integration: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
) -> None:
    integration = make_integration(contact_list_id=7)
    integration = make_integration(contact_list_id=7, data=install(integration).data)
    del fake.contactlists[7]
    with pytest.raises(PermanentError) as caught:
        push_contact(integration, [make_contact(marketing_consent=True)])
    assert "Contactlist 7 does not exist" in str(caught.value)
    assert fake.contacts == {}


def test_every_request_of_a_call_waits_for_the_integrations_shared_budget(
    make_integration: Callable[..., Integration],
    fake: FakeSmartEmailing,
    server: FakeServer,
    pacer: Any,  # conftest's RecordingPacer
    platform: Platform,
) -> None:
    integration = make_integration()
    # install makes a dozen requests (check, list fields, create thirteen): none may go unpaced.
    install(integration)
    requests_made = len(server.requests)
    assert requests_made == 15
    assert pacer.limit == platform.rate_limit
    # The clock stands still, so every request after the first waits one full slot more.
    interval = 1 / (platform.rate_limit.per_second * SAFETY)
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
