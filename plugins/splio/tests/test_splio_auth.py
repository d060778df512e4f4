"""The Splio token: fetched once, renewed before expiry, renewed once on a 401, never leaked."""

from __future__ import annotations

import threading
import time

import pytest
from pointbridge_splio import install, push_contact
from pointbridge_splio.auth import ASSUMED_LIFETIME, Token, jwt_expiry
from pointbridge_splio.client import client_for
from pointbridge_splio.fake import FakeSplio, rate_limit_rules, serve

from pointbridge import AuthError, Integration
from pointbridge.testing import FakeServer


def _auth_calls(server: FakeServer) -> int:
    return len(server.requests_to("POST", "/authenticate"))


def _statuses(server: FakeServer, status: int) -> int:
    return len([r for r in server.requests if r.status == status])


def test_the_token_is_reused_between_calls(
    server: FakeServer, installed: Integration, make_contact
) -> None:
    push_contact(installed, [make_contact(1, "a@example.cz")])
    push_contact(installed, [make_contact(2, "b@example.cz")])
    assert _auth_calls(server) == 1  # install's token still serves both pushes


def test_the_key_travels_only_to_authenticate_and_calls_carry_the_bearer(
    server: FakeServer, installed: Integration, make_contact
) -> None:
    push_contact(installed, [make_contact(1, "a@example.cz")])
    key = installed.settings["api_key"]
    for recorded in server.requests:
        if recorded.path == "/authenticate":
            assert recorded.json() == {"api_key": key}
        else:
            assert key.encode() not in recorded.body
            assert recorded.headers["Authorization"].startswith("Bearer ")
            assert jwt_expiry(recorded.headers["Authorization"][7:]) is not None


def test_a_token_about_to_expire_is_renewed_before_use(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    fake.token_lifetime = 1.0
    client_for(installed).forget_token(client_for(installed).token())
    push_contact(installed, [make_contact(1, "a@example.cz")])
    time.sleep(1.0)

    assert push_contact(installed, [make_contact(2, "b@example.cz")]) == []
    assert _statuses(server, 401) == 0
    assert _auth_calls(server) == 3  # install's, the short-lived one, its renewal


def test_a_revoked_token_is_renewed_once_and_the_call_repeated(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    fake.revoke_tokens()

    assert push_contact(installed, [make_contact(1, "a@example.cz", points=4)]) == []
    assert fake.values("a@example.cz")["ellity_points_balance"] == "4"
    assert _statuses(server, 401) == 1
    assert len(server.requests_to("POST", "/data/contacts/bulk")) == 2


def test_a_second_401_is_an_auth_error_after_one_renewal(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    fake.reject_tokens = True
    with pytest.raises(AuthError, match="Splio refused the API key"):
        push_contact(installed, [make_contact(1, "a@example.cz")])
    assert len(server.requests_to("POST", "/data/contacts/bulk")) == 2
    assert _auth_calls(server) == 2


def test_a_key_revoked_in_splio_pauses_with_the_admin_message(
    fake: FakeSplio, installed: Integration, make_contact
) -> None:
    token = client_for(installed).token()
    fake.api_keys.clear()
    fake.revoke_tokens()
    with pytest.raises(AuthError) as raised:
        push_contact(installed, [make_contact(1, "a@example.cz")])
    message = str(raised.value)
    assert message.startswith("Splio refused the API key: check it (Splio → users → API users).")
    assert installed.settings["api_key"] not in message
    assert token not in message


def test_threads_sharing_an_expired_token_authenticate_once(
    server: FakeServer, installed: Integration
) -> None:
    client = client_for(installed)
    client.forget_token(client.token())
    before = _auth_calls(server)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(client.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _auth_calls(server) == before + 1
    assert len(set(tokens)) == 1


def test_a_token_without_expiry_is_kept_for_the_shorter_documented_lifetime() -> None:
    token = Token.issued("opaque-token-without-claims")
    remaining = token.renew_at - time.monotonic()
    assert ASSUMED_LIFETIME - 301 < remaining <= ASSUMED_LIFETIME - 300


def test_install_waits_out_a_short_rate_limit_instead_of_failing(make_integration) -> None:
    fake = FakeSplio(api_keys={"k"})
    # Another process on this IP leaves us 6 requests/s on the non-contact endpoints.
    with serve(fake, rate_limits=rate_limit_rules(others_per_second=6)) as server:
        result = install(make_integration(api_key="k", url=server.url))
    assert _statuses(server, 429) >= 1
    assert len(result.created) + len(result.existing) == 5
    assert len(fake.custom_field_names()) == 6  # nothing created twice by the retry
