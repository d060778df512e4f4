"""The Splio token: fetched once, renewed before expiry, renewed once on a 401, never leaked."""

from __future__ import annotations

import threading
import time

import pytest
from pointbridge_splio import install, push_contact
from pointbridge_splio.auth import ASSUMED_LIFETIME, jwt_expiry, renewal_time
from pointbridge_splio.client import SplioClient
from pointbridge_splio.fake import FakeSplio
from pointbridge_splio.fields import FIELDS

from pointbridge import AuthError, Integration, RateLimited
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact


def _auth_calls(server: FakeServer) -> int:
    return len(server.requests_to("POST", "/authenticate"))


def _statuses(server: FakeServer, status: int) -> int:
    return len([r for r in server.requests if r.status == status])


def test_the_token_is_reused_between_calls(server: FakeServer, installed: Integration) -> None:
    push_contact(installed, [sample_contact(1, "a@example.cz")])
    push_contact(installed, [sample_contact(2, "b@example.cz")])
    assert _auth_calls(server) == 1  # install's token still serves both pushes


def test_the_key_travels_only_to_authenticate_and_calls_carry_the_bearer(
    server: FakeServer, installed: Integration
) -> None:
    push_contact(installed, [sample_contact(1, "a@example.cz")])
    key = installed.settings["api_key"]
    for recorded in server.requests:
        if recorded.path == "/authenticate":
            assert recorded.json() == {"api_key": key}
            assert "Authorization" not in recorded.headers
        else:
            assert key.encode() not in recorded.body
            assert recorded.headers["Authorization"].startswith("Bearer ")
            assert jwt_expiry(recorded.headers["Authorization"][7:]) is not None


def test_a_token_about_to_expire_is_renewed_before_use(
    server: FakeServer, installed: Integration
) -> None:
    kept = SplioClient(installed).auth
    assert kept.value is not None
    kept.renew_at = time.monotonic()  # its renewal time came

    assert push_contact(installed, [sample_contact(2, "b@example.cz")]) == []
    assert _statuses(server, 401) == 0
    assert _auth_calls(server) == 2  # install's, its renewal


def test_a_revoked_token_is_renewed_once_and_the_call_repeated(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    fake.revoke_tokens()

    assert push_contact(installed, [sample_contact(1, "a@example.cz", points=4)]) == []
    assert fake.values("a@example.cz")["ellity_points_balance"] == "4"
    assert _statuses(server, 401) == 1
    assert len(server.requests_to("POST", "/data/contacts/bulk")) == 2


def test_a_second_401_is_an_auth_error_after_one_renewal(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    fake.reject_tokens = True
    with pytest.raises(AuthError, match="Splio refused the API key"):
        push_contact(installed, [sample_contact(1, "a@example.cz")])
    assert len(server.requests_to("POST", "/data/contacts/bulk")) == 2
    assert _auth_calls(server) == 2


def test_a_key_revoked_in_splio_pauses_with_the_admin_message(
    fake: FakeSplio, installed: Integration
) -> None:
    token = SplioClient(installed).bearer()
    fake.api_keys.clear()
    fake.revoke_tokens()
    with pytest.raises(AuthError) as raised:
        push_contact(installed, [sample_contact(1, "a@example.cz")])
    message = str(raised.value)
    assert message.startswith("Splio refused the API key: check it (Splio → users → API users).")
    assert installed.settings["api_key"] not in message
    assert token not in message


def test_a_new_key_starts_afresh(
    server: FakeServer, fake: FakeSplio, installed: Integration, make_integration
) -> None:
    fake.api_keys.add("second-key")
    push_contact(installed, [sample_contact(1, "a@example.cz")])
    rekeyed = make_integration(
        api_key="second-key", data=dict(installed.data), integration_id=installed.id
    )
    assert push_contact(rekeyed, [sample_contact(1, "a@example.cz", points=3)]) == []
    assert server.requests_to("POST", "/authenticate")[-1].json() == {"api_key": "second-key"}
    # Another key may be another universe: what the old one knew is not assumed.
    assert len(server.requests_to("POST", "/data/contacts/bulk")) == 2


def test_threads_sharing_an_expired_token_authenticate_once(
    server: FakeServer, installed: Integration
) -> None:
    client = SplioClient(installed)
    client.auth.forget(client.bearer())
    before = _auth_calls(server)
    tokens: list[str] = []
    together = threading.Barrier(8, timeout=60)

    def ask() -> None:
        together.wait()  # all eight ask at once, into the one expired token
        tokens.append(client.bearer())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _auth_calls(server) == before + 1
    assert len(set(tokens)) == 1


def test_a_token_without_expiry_is_kept_for_the_shorter_documented_lifetime() -> None:
    before = time.monotonic()
    renew_at = renewal_time("opaque-token-without-claims")
    after = time.monotonic()
    # Renewed five minutes before the assumed lifetime ends, counted from when it was issued.
    assert before + ASSUMED_LIFETIME - 300 <= renew_at <= after + ASSUMED_LIFETIME - 300


def test_a_429_during_install_says_how_long_and_the_retry_creates_nothing_twice(
    fake: FakeSplio, server: FakeServer, make_integration
) -> None:
    integration = make_integration()
    # Another process on this IP used up the 10/s off contacts: the host waits this out.
    server.fail_next(1, "429", path="/data/fields", retry_after=2)
    with pytest.raises(RateLimited) as raised:
        install(integration)
    assert raised.value.retry_after == 2.0

    result = install(integration)
    assert len(result.created) + len(result.existing) == len(FIELDS)
    # Nothing created twice by the retry: the universe's civility and ours.
    assert len(fake.custom_field_names()) == len(FIELDS) + 1


def test_splios_hour_long_token_is_renewed_five_minutes_before_it_ends(
    installed: Integration,
) -> None:
    # Splio's authentication reference: a token is valid for one hour (not 24 h), and the
    # fake's default token says so in its exp claim; renewal comes five minutes before that.
    kept = SplioClient(installed).auth
    expiry = jwt_expiry(kept.value or "")
    assert expiry is not None
    assert 3600 - 30 <= expiry - time.time() <= 3600
    assert 3600 - 300 - 30 <= kept.renew_at - time.monotonic() <= 3600 - 300
