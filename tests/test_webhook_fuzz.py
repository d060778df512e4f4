"""Fuzzing ``POST /webhooks/<id>/<token>``: whatever arrives, never a 5xx, and a refused request
changes nothing, on SQLite and PostgreSQL.

Both of the shipped platforms whose webhooks credit points are set up as a shop would: the
SmartEmailing automation (secret header, hand-typed body) and Ecomail (token in the URL only).
The inputs that once gave 500s are named cases below. ``POINTBRIDGE_FUZZ_EXAMPLES=5000 pytest
-m fuzz`` searches longer (core.testing.fuzz).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from pointbridge.services import Services
from pointbridge.testing.fuzz import (
    RawJson,
    assert_harmless,
    encoded,
    fingerprint,
    fuzz_settings,
    hostile_text,
    hostile_values,
    huge_numbers,
    mostly,
    tainted,
)

pytestmark = pytest.mark.fuzz

CUSTOMERS = ["jana@example.com", "petr@example.cz"]
JSON_KEYS = ["eventName", "data", "email", "listId", "list_id", "listd", "payload", "status"]
# Headers the test client itself sets from the request it builds.
TRANSPORT_HEADERS = {"content-length", "content-type", "transfer-encoding", "host"}


@dataclass(frozen=True)
class Hook:
    platform: str
    path: str
    secret: str

    @property
    def segments(self) -> tuple[str, str]:
        _, _, integration_id, token = self.path.split("/")
        return integration_id, token


@dataclass(frozen=True)
class Sent:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def hooks(services: Services) -> dict[str, Hook]:
    """SmartEmailing rewarding list 1, Ecomail syncing list 3 and rewarding 1 and 2; customers."""
    with services.db.transaction() as session:
        rows = [
            services.integrations.add(
                session,
                "newsletter",
                "smartemailing",
                {"username": "shop@example.com", "api_key": "se-key", "list_rewards": "1:50"},
            ),
            services.integrations.add(
                session,
                "ecomail",
                "ecomail",
                {"api_key": "eco-key", "list_id": "3", "list_rewards": "1:50,2:20"},
            ),
        ]
        for email in CUSTOMERS:
            services.loyalty.create_customer(session, {"email": email})
        return {
            row.platform: Hook(
                row.platform,
                urlsplit(services.integrations.webhook_url(row)).path,
                services.integrations.webhook_secret(row),
            )
            for row in rows
        }


def subscription(platform: str, email: Any, list_id: Any, event: Any = None) -> dict[str, Any]:
    """The body the platform sends; ``event`` defaults to a subscription."""
    if platform == "smartemailing":
        return {"eventName": event or "subscribed", "data": {"email": email, "listId": list_id}}
    return {"payload": {"email": email, "status": event or "SUBSCRIBED", "listId": list_id}}


EVENT_NAMES = {
    "smartemailing": ["subscribed", "unsubscribed"],
    "ecomail": ["SUBSCRIBED", "UNSUBSCRIBED"],
}


def shaped_bodies(platform: str) -> st.SearchStrategy[dict[str, Any]]:
    """The platform's body shape, each value the real thing, a near miss or anything at all."""
    anything = hostile_values(JSON_KEYS)
    emails = mostly(
        st.sampled_from(CUSTOMERS),
        st.one_of(st.sampled_from(CUSTOMERS).flatmap(tainted), anything),
    )
    list_ids = mostly(
        st.sampled_from(["1", "2", 1, 2, "7", " 1 "]), st.one_of(huge_numbers(), anything)
    )
    events = mostly(st.sampled_from(EVENT_NAMES[platform]), anything)
    return st.builds(subscription, st.just(platform), emails, list_ids, events)


PATHOLOGICAL_BODIES = [b"[" * 100_000, b"{" * 100_000, b'{"a":' * 50_000, b"\xff\xfe", b"\x00"]


def bodies(platform: str) -> st.SearchStrategy[bytes]:
    values = mostly(shaped_bodies(platform), hostile_values(JSON_KEYS))
    return mostly(
        st.builds(encoded, values, ensure_ascii=mostly(st.just(True), st.just(False))),
        st.one_of(st.binary(max_size=100), st.sampled_from(PATHOLOGICAL_BODIES)),
    )


def paths(hook: Hook) -> st.SearchStrategy[str]:
    """Mostly the real URL; else either segment replaced by text or a number of any size."""
    any_segment = st.one_of(
        hostile_text().map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
        st.integers(-(10**30), 10**30).map(str),
    )
    integration_id, token = hook.segments
    fuzzed = st.one_of(
        st.builds("/webhooks/{}/{}".format, any_segment, st.just(token)),
        st.builds("/webhooks/{}/{}".format, st.just(integration_id), any_segment),
    )
    return mostly(st.just(hook.path), fuzzed)


# What an HTTP server hands the app: header values are latin-1, without control characters.
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)


def headers(hook: Hook) -> st.SearchStrategy[dict[str, str]]:
    names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z").filter(
        lambda name: name.lower() not in TRANSPORT_HEADERS
    )
    extra = st.dictionaries(names, HEADER_TEXT, max_size=3)
    fixed = st.fixed_dictionaries(
        {
            "X-Secret-Key": mostly(st.just(hook.secret), HEADER_TEXT),
            "Content-Type": mostly(st.just("application/json"), HEADER_TEXT),
        }
    )
    return st.builds(lambda extra, fixed: {**extra, **fixed}, extra, fixed)


def requests(hook: Hook) -> st.SearchStrategy[Sent]:
    query = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=2)
    return st.builds(Sent, paths(hook), bodies(hook.platform), headers(hook), query)


def send(client: FlaskClient, sent: Sent) -> Any:
    return client.post(sent.path, data=sent.body, headers=sent.headers, query_string=sent.query)


@pytest.mark.parametrize("platform", sorted(EVENT_NAMES))
def test_no_request_makes_a_webhook_fail_or_write(
    platform: str, client: FlaskClient, services: Services, hooks: dict[str, Hook]
) -> None:
    @given(sent=requests(hooks[platform]))
    @fuzz_settings(ci_examples=120)
    def never_a_server_error(sent: Sent) -> None:
        before = fingerprint(services.db)
        response = send(client, sent)
        assert_harmless(services.db, before, response.status_code, response.text)

    never_a_server_error()


def _with_path(path: str) -> Callable[[Hook], Sent]:
    def build(hook: Hook) -> Sent:
        body = encoded(subscription(hook.platform, CUSTOMERS[0], "1"), ensure_ascii=True)
        return Sent(path.format(id=hook.segments[0]), body, {"X-Secret-Key": hook.secret})

    return build


def _with_body(body: Callable[[str], bytes]) -> Callable[[Hook], Sent]:
    def build(hook: Hook) -> Sent:
        headers = {"X-Secret-Key": hook.secret, "Content-Type": "application/json"}
        return Sent(hook.path, body(hook.platform), headers)

    return build


def _email(email: str) -> Callable[[Hook], Sent]:
    return _with_body(
        lambda platform: encoded(subscription(platform, email, "1"), ensure_ascii=True)
    )


UNKNOWN_URL = "Unknown webhook URL"
NOT_AN_EMAIL = "not an e-mail address"
# name: (the request, given the hook; the status; what the message names)
REGRESSIONS: dict[str, tuple[Callable[[Hook], Sent], int, str]] = {
    "/webhooks/1/%C3%A9": (_with_path("/webhooks/{id}/%C3%A9"), 401, UNKNOWN_URL),
    "/webhooks/100000000000000000000/x": (
        _with_path("/webhooks/100000000000000000000/x"),
        401,
        UNKNOWN_URL,
    ),
    "body of 100,000 [": (_with_body(lambda platform: b"[" * 100_000), 400, "nested"),
    "listId of 5,000 digits": (
        _with_body(
            lambda platform: encoded(
                subscription(platform, CUSTOMERS[0], RawJson("7" * 5000)), ensure_ascii=True
            )
        ),
        400,
        "digits",
    ),
    "e-mail with NUL": (_email("jana\x00@example.com"), 422, NOT_AN_EMAIL),
    "e-mail with a lone surrogate": (_email("jana\ud83d@example.com"), 422, NOT_AN_EMAIL),
    "e-mail with U+202E": (_email("jana\u202e@example.com"), 422, NOT_AN_EMAIL),
}


@pytest.mark.parametrize("platform", sorted(EVENT_NAMES))
@pytest.mark.parametrize(("build", "status", "named"), REGRESSIONS.values(), ids=list(REGRESSIONS))
def test_inputs_that_once_gave_500s_are_refused_saying_why(
    platform: str,
    client: FlaskClient,
    services: Services,
    hooks: dict[str, Hook],
    build: Callable[[Hook], Sent],
    status: int,
    named: str,
) -> None:
    before = fingerprint(services.db)
    response = send(client, build(hooks[platform]))
    assert response.status_code == status, response.text
    assert named in response.json["message"]
    assert fingerprint(services.db) == before
