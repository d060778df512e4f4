"""``JsonBody``: a webhook's JSON read field by field, every refusal a 400 naming the field."""

from __future__ import annotations

import json

import pytest

from pointbridge import WebhookRejected, WebhookRequest
from pointbridge.kit.webhook_body import JsonBody

HINT = 'Send {"data": {"email": "...", "status": "in", "listId": 1}}'
STATUSES = {"in": True, "out": False}


def body(raw: object) -> JsonBody:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return JsonBody.read(WebhookRequest("POST", {}, {}, data), HINT)


def refusal(read: object) -> str:
    with pytest.raises(WebhookRejected) as caught:
        read()  # type: ignore[operator]
    assert (caught.value.status, caught.value.hint) == (400, HINT)
    return caught.value.message


def test_fields_are_read_by_dotted_path() -> None:
    read = body({"data": {"email": " ann@example.com ", "status": "OUT", "listId": 7}})
    assert read.text("data.email") == "ann@example.com"
    assert read.choice("data.status", STATUSES) is False
    assert read.identifier("data.listId") == "7"
    assert read.value("data.missing") is None


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [(b"", "empty"), (b'{"data": ', "not valid JSON"), ([1], "Expected a JSON object, got list")],
)
def test_a_body_that_is_no_json_object_is_refused_with_the_hint(raw: object, complaint: str):
    assert complaint in refusal(lambda: body(raw))


def test_a_missing_or_wrong_field_is_refused_naming_its_path_and_what_came() -> None:
    assert 'no "data" object' in refusal(lambda: body({"email": "x"}).text("data.email"))
    assert '"data" must be an object, got str' in refusal(
        lambda: body({"data": "x"}).text("data.a")
    )
    assert "data.email must be text, got None" in refusal(
        lambda: body({"data": {}}).text("data.email")
    )
    wrong_status = body({"data": {"status": "bounced"}})
    assert "data.status must be in or out, got 'bounced'" in refusal(
        lambda: wrong_status.choice("data.status", STATUSES)
    )


@pytest.mark.parametrize("list_id", [None, True, "", " ", 1.5, {"id": 1}])
def test_an_identifier_is_a_number_or_text_and_never_a_boolean(list_id: object) -> None:
    assert "data.listId must be an id" in refusal(
        lambda: body({"data": {"listId": list_id}}).identifier("data.listId")
    )


def test_an_identifier_may_be_required_to_be_digits() -> None:
    read = body({"data": {"listId": "12", "other": "A-12"}})
    assert read.identifier("data.listId", digits=True) == "12"
    assert read.identifier("data.other") == "A-12"
    assert "must be a number, got 'A-12'" in refusal(
        lambda: read.identifier("data.other", digits=True)
    )
