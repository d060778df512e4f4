"""A broken JSON webhook body is refused with where it breaks, for whoever typed it."""

from __future__ import annotations

import pytest

from pointbridge import WebhookRejected, WebhookRequest


def _refusal(body: bytes) -> str:
    with pytest.raises(WebhookRejected) as caught:
        WebhookRequest("POST", {}, {}, body).json()
    assert caught.value.status == 400
    return caught.value.message


def test_the_message_shows_the_text_where_the_json_breaks() -> None:
    message = _refusal(b'{"email": "a@b.cz"\n "list": 1}')
    assert message == (
        "The request body is not valid JSON: Expecting ',' delimiter at line 2, column 2 "
        "(just before '\"list\": 1}')."
    )


def test_a_cut_off_body_is_said_to_end_too_early() -> None:
    assert _refusal(b'{"email": "a@b.cz"').endswith("(the body ends too early).")
