"""pointbridge.kit.http for platforms that signal their own way: ``platform_error`` reads a failed
response before the status mapping, ``parse_reset`` reads reset headers of either kind."""

from __future__ import annotations

import pytest
import requests
from flask import Flask, Response

from pointbridge import PermanentError, RateLimited
from pointbridge.contract.errors import DeliveryError
from pointbridge.kit.http import ApiClient, parse_reset
from pointbridge.testing import FakeServer


def _app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/hourly", "hourly", lambda: Response('{"code": "HOURLY"}', 400))
    app.add_url_rule("/bad", "bad", lambda: Response('{"code": "BAD"}', 400))
    return app


def _hourly_limit(response: requests.Response) -> DeliveryError | None:
    if response.json().get("code") == "HOURLY":
        return RateLimited("hourly limit", retry_after=60)
    return None


def test_the_platforms_reading_wins_even_over_passthrough() -> None:
    with FakeServer(_app()) as server:
        client = ApiClient(server.url, platform_error=_hourly_limit)
        with pytest.raises(RateLimited) as caught:
            client.get("hourly", passthrough=(400,))
        assert caught.value.retry_after == 60
        # Responses it does not claim keep the usual mapping and passthrough.
        assert client.get("bad", passthrough=(400,)).status_code == 400
        with pytest.raises(PermanentError, match="GET bad: HTTP 400"):
            client.get("bad")


@pytest.mark.parametrize(
    ("value", "wait"),
    [("17", 17.0), ("1800000042", 42.0), ("1799999990", 0.0), (None, None), ("soon", None)],
)
def test_a_reset_header_is_seconds_or_a_moment(value: str | None, wait: float | None) -> None:
    assert parse_reset(value, now=1_800_000_000.0) == wait
