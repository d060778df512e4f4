"""The webhook a shop's SmartEmailing automation posts when a contact joins or leaves a list.

SmartEmailing has no signed list webhooks; the shop builds an automation ("change in list" ->
"Webhook" action) that POSTs a body it types itself, with the header ``X-Secret-Key``. Because
the body is hand-typed (often pasted from SmartEmailing's own example, which is broken JSON with
``listd`` for ``listId``), every rejection says exactly what is wrong and the ``hint`` is the
body to paste.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pointbridge import Integration, ListSubscription, WebhookRejected, WebhookRequest, hookimpl
from pointbridge.contract.platform import json_problem, parse_json
from pointbridge.kit.webhook_secret import require_secret

SECRET_HEADER = "X-Secret-Key"
WEBHOOK_ACTION = "the automation's Webhook action"
EMAIL_MERGE_TAG = "{{ df_emailaddress }}"
EVENT_NAMES = {"subscribed": True, "unsubscribed": False}

_EVENT_NAME = re.compile(r'"eventName"\s*:\s*"([^"]*)"', re.IGNORECASE)
# One whitespace run on each side of the optional quote, never two in a row: two adjacent
# \s* make a long run of spaces take quadratic time. A longer number is no list's id.
_LIST_ID = re.compile(r'"(?:list_?i?d|listd)"\s*:\s*(?:"\s*)?(\d{1,100})(?!\d)', re.IGNORECASE)


def paste_body(event_name: str, list_id: str) -> str:
    """The exact body the Webhook action should send."""
    body = {"eventName": event_name, "data": {"email": EMAIL_MERGE_TAG, "listId": list_id}}
    return json.dumps(body, ensure_ascii=False)


def webhook_bodies(list_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The bodies of the two automations' Webhook actions (joining, leaving) for each rewarded
    list; while no list carries a reward, list 1's, for the admin to change."""
    lists = [(list_id, f"list {list_id}") for list_id in list_ids] or [
        ("1", "the list (put your list's ID for 1)")
    ]
    return [
        (f"Body for contacts {what} {named}", paste_body(event, list_id))
        for list_id, named in lists
        for event, what in (("subscribed", "joining"), ("unsubscribed", "leaving"))
    ]


def _hint(integration: Integration, text: str) -> str:
    """The body to paste, with whatever event name and list id the broken body still shows."""
    event = "subscribed"
    if (match := _EVENT_NAME.search(text)) and match.group(1).strip().lower() in EVENT_NAMES:
        event = match.group(1).strip().lower()
    list_id = "1"
    if match := _LIST_ID.search(text):
        list_id = match.group(1)
    elif integration.settings.get("contact_list_id") is not None:
        list_id = str(integration.settings["contact_list_id"])
    return paste_body(event, list_id)


def _parse(integration: Integration, request: WebhookRequest) -> tuple[str, Any]:
    text = ""
    try:
        text = request.text()
        if not text.strip():
            raise WebhookRejected(
                400, "The body is empty: paste the body from the hint into the Webhook action."
            )
        return text, parse_json(text)
    except WebhookRejected as exc:
        raise WebhookRejected(exc.status, exc.message, _hint(integration, text)) from None
    except json.JSONDecodeError as exc:
        raise WebhookRejected(400, _json_problem(text, exc), _hint(integration, text)) from exc


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    message = json_problem(text, exc)
    # The vendor's mistake: a key follows a value with no comma between them.
    after = text[exc.pos : exc.pos + 30].lstrip()
    if "listd" in text or (exc.msg.startswith("Expecting ','") and after.startswith('"')):
        message += (
            " SmartEmailing's published example is missing the comma after the e-mail and "
            "spells listId as 'listd'."
        )
    return message + " Paste the body from the hint into the Webhook action instead."


def _list_id_problem(data: dict[str, Any]) -> str:
    near = [
        key
        for key in data
        if key != "listId"
        and key.lower().replace("_", "").replace("-", "") in ("listid", "listd", "list", "id")
    ]
    if "listd" in near:
        return "data.listId is missing (found 'listd' — a known typo in SmartEmailing's example)."
    if near:
        return f"data.listId is missing (found '{near[0]}'; the key is spelt listId, capital I)."
    return "data.listId is missing: it names the list the contact joined or left."


@hookimpl
def handle_webhook(integration: Integration, request: WebhookRequest) -> list[ListSubscription]:
    require_secret(request, SECRET_HEADER, integration.webhook_secret, WEBHOOK_ACTION)
    text, body = _parse(integration, request)

    def reject(message: str) -> WebhookRejected:
        return WebhookRejected(400, message, _hint(integration, text))

    if not isinstance(body, dict):
        raise reject("The body must be a JSON object with eventName and data.")
    event = body.get("eventName")
    if not isinstance(event, str) or event.strip().lower() not in EVENT_NAMES:
        found = "missing" if event is None else json.dumps(event)
        raise reject(f'eventName is {found}: it must be "subscribed" or "unsubscribed".')
    data = body.get("data")
    if not isinstance(data, dict):
        raise reject("data is missing or not an object: it must hold email and listId.")

    email = data.get("email")
    if email is None:
        raise reject(f"data.email is missing: it must be the merge tag {EMAIL_MERGE_TAG}.")
    email = str(email).strip()
    if not email:
        raise reject(
            f"data.email is empty: the merge tag is probably misspelt; use {EMAIL_MERGE_TAG}."
        )
    if "{{" in email or "}}" in email:
        raise reject(
            f"data.email is {email!r}, a merge tag SmartEmailing did not fill in: use "
            f"{EMAIL_MERGE_TAG}."
        )
    # Whether it is an e-mail address is the host's rule, checked when it applies the action.

    if "listId" not in data:
        raise reject(_list_id_problem(data))
    list_id = data["listId"]
    if isinstance(list_id, bool) or not isinstance(list_id, str | int) or not str(list_id).strip():
        raise reject(f'data.listId is {json.dumps(list_id)}: it must be the list\'s ID, e.g. "1".')

    return [
        ListSubscription(
            email=email,
            list_id=str(list_id).strip(),
            subscribed=EVENT_NAMES[event.strip().lower()],
            raw=body,
        )
    ]
