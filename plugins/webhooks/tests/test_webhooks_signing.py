"""Every message verifies with the spec's reference library; ids are stable across retries;
a secret rotation keeps the old secret working until its overlap ends."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pointbridge_webhooks import PLATFORM, contact_message, event_message, signing
from pointbridge_webhooks.receiver import NEXT_SECRET, SECRET, Receiver
from standardwebhooks.webhooks import Webhook

from pointbridge import AuthError, Event, EventType, Integration
from pointbridge.plugins import PluginHost
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.contract import sample_integration
from pointbridge.testing.pacing import record_pacing


@pytest.fixture(autouse=True)
def pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    record_pacing(monkeypatch)


def _integration(endpoint: FakeServer, **settings: Any) -> Integration:
    return sample_integration(
        PLATFORM, {"url": endpoint.url + "/hook", "secret": SECRET, **settings}
    )


def _push(integration: Integration, *contacts: Any) -> list[Any]:
    return list(
        PluginHost().call("push_contact", "webhooks", integration=integration, contacts=contacts)
    )


def test_our_signature_is_the_reference_librarys() -> None:
    body = b'{"type":"contact.updated"}'
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    ours = signing.signature(SECRET, "msg_1", int(at.timestamp()), body)

    assert ours == Webhook(SECRET).sign("msg_1", at, body.decode())


def test_a_contact_update_arrives_signed_with_its_loyalty_data(
    endpoint: FakeServer, receiver: Receiver
) -> None:
    assert _push(_integration(endpoint), sample_contact(1, "jana@example.com", points=120)) == []

    [message] = receiver.of_type("contact.updated")
    assert message["data"]["email"] == "jana@example.com" and message["data"]["points"] == 120
    assert message["data"]["membership"] == "guest"
    assert receiver.ids == [message["id"]]


def test_every_contact_update_gets_its_own_id_even_back_to_an_earlier_state() -> None:
    contact = sample_contact(1, points=120)
    # A -> B -> A: the third state must not reuse the first's id, or a receiver that
    # deduplicates would drop it and stay on B.
    ids = [
        contact_message(state, UTC)[0]
        for state in (contact, replace(contact, first_name="Eva"), replace(contact))
    ]
    assert len(set(ids)) == 3


def test_an_event_is_named_by_its_outbox_row() -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    event = Event(71, EventType.CREDIT_CHANGED, 1, "jana@example.com", at, {"points": 5})
    message_id, _ = event_message(event)
    assert message_id == f"msg_event_{event.uid}"


def test_during_a_rotation_a_receiver_with_either_secret_verifies(
    endpoint: FakeServer, receiver: Receiver
) -> None:
    rotating = _integration(
        endpoint,
        secret=NEXT_SECRET,
        previous_secret=SECRET,
        previous_secret_until=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
    )
    receiver.secret = SECRET  # not yet told about the new one
    assert _push(rotating, sample_contact(1)) == []
    receiver.secret = NEXT_SECRET
    assert _push(rotating, sample_contact(2)) == []
    assert [m["data"]["customer_id"] for m in receiver.messages] == [1, 2]


def test_after_the_overlap_only_the_new_secret_signs(
    endpoint: FakeServer, receiver: Receiver
) -> None:
    rotated = _integration(
        endpoint,
        secret=NEXT_SECRET,
        previous_secret=SECRET,
        previous_secret_until=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    )
    receiver.secret = SECRET
    with pytest.raises(AuthError, match="verifies with this integration's secret"):
        _push(rotated, sample_contact(1))
    assert receiver.messages == []


@pytest.mark.parametrize("secret", ["not-base64-!!", "whsec_" + "QUJD", ""])
def test_a_malformed_secret_is_refused_when_set(secret: str) -> None:
    with pytest.raises(Exception, match="secret"):
        PLATFORM.settings_schema().load({"url": "https://example.com/hook", "secret": secret})


def test_the_readmes_plain_python_verifier_accepts_ours_and_refuses_a_tampered_body() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("```python\nimport base64, hashlib, hmac, time")[1].split("```")[0]
    namespace: dict[str, Any] = {}
    exec("import base64, hashlib, hmac, time" + block, namespace)
    body = b'{"type":"contact.updated"}'
    headers = signing.headers([NEXT_SECRET, SECRET], "msg_1", int(time.time()), body)

    assert namespace["verify"](SECRET, body, headers)
    assert namespace["verify"](NEXT_SECRET, body, headers)
    assert not namespace["verify"](SECRET, body + b" ", headers)


def test_a_url_carrying_a_password_is_refused() -> None:
    with pytest.raises(Exception, match="no user or password"):
        PLATFORM.settings_schema().load(
            {"url": "https://crm:hunter2@crm.example.com/hook", "secret": SECRET}
        )
