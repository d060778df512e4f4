"""``require_secret``: a webhook's shared secret in a header, or a 401 saying where to set it."""

from __future__ import annotations

import pytest

from pointbridge import WebhookRejected, WebhookRequest
from pointbridge.kit.webhook_secret import require_secret

SECRET = "whsec-0123456789"


def _check(headers: dict[str, str], secret: str | None = SECRET) -> None:
    require_secret(WebhookRequest("POST", headers, {}, b"{}"), "X-Token", secret, "the hook form")


def test_the_secret_in_the_header_passes_whatever_the_headers_case() -> None:
    _check({"x-token": SECRET})
    _check({"X-Token": f" {SECRET} "})  # pasted with a space


@pytest.mark.parametrize(
    ("headers", "secret", "complaint"),
    [
        ({}, SECRET, "The X-Token header is missing: in the hook form add the header X-Token"),
        ({"X-Token": ""}, SECRET, "The X-Token header is missing"),
        ({"X-Token": "guess"}, SECRET, "does not match this integration's webhook secret"),
        ({"X-Token": "guess"}, "", "does not match"),  # no secret: nobody gets in
        ({"X-Token": SECRET[:-1]}, SECRET, "copy the secret from pointbridge into the hook form"),
    ],
)
def test_anything_else_is_a_401_that_says_where_to_fix_it(
    headers: dict[str, str], secret: str, complaint: str
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        _check(headers, secret)
    assert caught.value.status == 401
    assert complaint in caught.value.message
    assert "guess" not in caught.value.message and SECRET[:-1] not in caught.value.message
