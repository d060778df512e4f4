"""How Dotdigital's failures reach the host: auth, rate limits, 5xx, slow or failed imports."""

from __future__ import annotations

import json

import pytest
import requests
from pointbridge_dotmailer import client, push_contact
from pointbridge_dotmailer.client import legacy_rate_limit, ratelimit_wait
from pointbridge_dotmailer.fake import import_id

from pointbridge import AuthError, PermanentError, RateLimited, TransientError

IMPORT = "/contacts/v3/import"


def _response(headers: dict[str, str], body: object = None, status: int = 429) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response._content = json.dumps(body).encode()
    return response


def test_ratelimit_reset_is_read_as_epoch_or_as_seconds() -> None:
    now = 1_800_000_000.0
    assert ratelimit_wait(_response({"x-ratelimit-reset": "1800000042"}), now) == 42.0
    assert ratelimit_wait(_response({"X-RateLimit-Reset": "17"}), now) == 17.0
    assert ratelimit_wait(_response({"x-ratelimit-reset": "1799999990"}), now) == 0.0
    assert ratelimit_wait(_response({"Retry-After": "3", "x-ratelimit-reset": "99"}), now) == 3.0
    assert ratelimit_wait(_response({}), now) is None
    busy = {"errorCode": "contacts:tooManyActiveImports", "description": "Wait."}
    assert ratelimit_wait(_response({}, busy), now) == client.ACTIVE_IMPORTS_WAIT


def test_the_legacy_hourly_scheme_is_a_rate_limit_not_a_refusal() -> None:
    hourly = {"message": "Your API usage has exceeded the allowed limit. ERROR_APIUSAGE_EXCEEDED"}
    assert isinstance(legacy_rate_limit(_response({}, hourly, 400)), RateLimited)
    invalid = {"message": "Invalid parameter. ERROR_PARAMETER_INVALID"}
    assert legacy_rate_limit(_response({}, invalid, 400)) is None


def test_import_rate_limit_waits_until_the_window_resets(
    installed, dd_server, dd_state, make_contact
) -> None:
    assert push_contact(installed, [make_contact(1), make_contact(2)]) == []
    dd_server.fail_next(1, "429", path=IMPORT, retry_after=30)
    with pytest.raises(RateLimited) as caught:
        push_contact(installed, [make_contact(3), make_contact(4)])
    # Read from x-ratelimit-reset, a whole epoch second, however long the call took.
    assert 20.0 <= caught.value.retry_after <= 31.0
    throttled = dd_server.requests_to("PUT", IMPORT)[-1]
    assert throttled.status == 429
    assert "customer3@example.com" not in dd_state.contacts


def test_too_many_running_imports_is_a_rate_limit(
    installed, dd_state, make_contact, monkeypatch
) -> None:
    dd_state.max_active_imports = 1
    dd_state.imports.finish_after_polls = 1000
    monkeypatch.setattr(client, "POLL_BUDGET_SECONDS", 0.1)
    # An import that does not finish in time: the host is told to send the batch again.
    with pytest.raises(TransientError, match="will be sent again"):
        push_contact(installed, [make_contact(1), make_contact(2)])
    # It is still running, so Dotdigital refuses another one.
    with pytest.raises(RateLimited) as caught:
        push_contact(installed, [make_contact(3), make_contact(4)])
    assert caught.value.retry_after == client.ACTIVE_IMPORTS_WAIT
    # Once Dotdigital catches up, the retried batch lands; the upsert makes it harmless.
    dd_state.imports.finish_after_polls = 0
    dd_state.max_active_imports = 25
    assert push_contact(installed, [make_contact(1), make_contact(2)]) == []
    assert dd_state.contacts["customer1@example.com"].data_fields["ELLITY_POINTS"] == 120


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        ("Failed", TransientError, "Failed"),
        ("RejectedByWatchdog", PermanentError, "watchdog"),
        ("ExceedsAllowedContactLimit", PermanentError, "contact limit"),
    ],
)
def test_import_outcomes(installed, dd_state, make_contact, status, error, text) -> None:
    dd_state.imports.outcome = status
    with pytest.raises(error, match=text):
        push_contact(installed, [make_contact(1), make_contact(2)])


@pytest.mark.parametrize("fault", ["503", "drop"])
def test_server_errors_are_transient(installed, dd_server, make_contact, fault) -> None:
    dd_server.fail_next(2, fault)
    with pytest.raises(TransientError, match="503" if fault == "503" else "could not connect"):
        push_contact(installed, [make_contact(1)])
    with pytest.raises(TransientError):
        push_contact(installed, [make_contact(1), make_contact(2)])
    assert not dd_server.requests_to("GET", f"{IMPORT}/{import_id(1)}")


def test_a_failed_status_poll_is_polled_again_not_imported_twice(
    installed, dd_server, dd_state, make_contact
) -> None:
    poll = f"{IMPORT}/{import_id(1)}"
    dd_server.fail_next(1, "503", path=poll)
    assert push_contact(installed, [make_contact(1), make_contact(2)]) == []
    assert len(dd_server.requests_to("PUT", IMPORT)) == 1
    # The 503 poll, then NotFinished, then Finished.
    assert [r.status for r in dd_server.requests_to("GET", poll)] == [503, 200, 200]
    assert dd_state.contacts["customer2@example.com"].data_fields["ELLITY_POINTS"] == 120


def test_revoked_password_pauses_with_the_admin_message(installed, dd_state, make_contact) -> None:
    dd_state.password = "rotated-in-dotdigital"
    for batch in ([make_contact(1)], [make_contact(1), make_contact(2)]):
        with pytest.raises(AuthError) as caught:
            push_contact(installed, batch)
        assert "check the API user's e-mail and password" in str(caught.value)
        assert "Correct-Horse-9" not in str(caught.value)


def test_unreachable_platform_is_transient(make_integration, make_contact) -> None:
    integration = make_integration(
        url="http://127.0.0.1:9", data={"api_endpoint": "http://127.0.0.1:9/"}
    )
    with pytest.raises(TransientError, match="could not connect"):
        push_contact(integration, [make_contact(1)])
