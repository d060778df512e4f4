"""Reading a webhook's JSON body field by field, for platforms that post JSON.

What arrives is what the platform's docs show, or what an admin typed into an automation. When
a field is missing or of the wrong kind the webhook is refused with a 400 that names the field
by its dotted path, says what was found instead, and carries the plugin's ``hint`` (the body
the platform should send), so the admin sees what to fix::

    body = JsonBody.read(request, hint='Send {"data": {"email": "...", "status": "in"}}')
    return [
        ListSubscription(
            email=body.text("data.email"),
            list_id=body.identifier("data.listId"),
            subscribed=body.choice("data.status", {"in": True, "out": False}),
            raw=body.data,
        )
    ]

Whether a text is an e-mail address is the host's rule, applied to the actions returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pointbridge.contract.errors import WebhookRejected
from pointbridge.contract.platform import WebhookRequest

T = TypeVar("T")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class JsonBody:
    """A webhook body that is a JSON object; each reader raises ``WebhookRejected(400)``."""

    def __init__(self, data: dict[str, Any], hint: str | None = None) -> None:
        self.data = data
        self.hint = hint

    @classmethod
    def read(cls, request: WebhookRequest, hint: str | None = None) -> JsonBody:
        """The request's body; refused when it is empty, broken JSON or not an object."""
        try:
            data = request.json()
        except WebhookRejected as exc:
            raise WebhookRejected(exc.status, exc.message, hint) from None
        if not isinstance(data, dict):
            raise WebhookRejected(400, f"Expected a JSON object, got {_kind(data)}.", hint)
        return cls(data, hint)

    def reject(self, problem: str) -> WebhookRejected:
        """A 400 for a problem the plugin found itself, with the same hint."""
        return WebhookRejected(400, problem, self.hint)

    def value(self, path: str) -> Any:
        """The value at a dotted path (``payload.email``); ``None`` when the last key is
        missing, refused when an object on the way is."""
        *parents, last = path.split(".")
        node = self.data
        for depth, key in enumerate(parents):
            found = node.get(key)
            where = ".".join(parents[: depth + 1])
            if found is None:
                raise self.reject(f'The body has no "{where}" object (keys found: {sorted(node)}).')
            if not isinstance(found, dict):
                raise self.reject(f'"{where}" must be an object, got {_kind(found)}.')
            node = found
        return node.get(last)

    def text(self, path: str) -> str:
        """A string, stripped."""
        value = self.value(path)
        if not isinstance(value, str):
            raise self.reject(f"{path} must be text, got {value!r}.")
        return value.strip()

    def choice(self, path: str, choices: Mapping[str, T]) -> T:
        """One of ``choices``' keys, compared without case; its value."""
        value = self.value(path)
        folded = {key.casefold(): result for key, result in choices.items()}
        if not isinstance(value, str) or value.strip().casefold() not in folded:
            raise self.reject(f"{path} must be {' or '.join(choices)}, got {value!r}.")
        return folded[value.strip().casefold()]

    def identifier(self, path: str, *, digits: bool = False) -> str:
        """An id sent as a number or as text (``digits``: text of digits only), as text.
        ``true`` is no id, though Python counts it as an int."""
        value = self.value(path)
        text = str(value).strip() if isinstance(value, int | str) else ""
        if (
            isinstance(value, bool)
            or not text
            or (digits and isinstance(value, str) and not text.isdigit())
        ):
            expected = "a number" if digits else "an id"
            raise self.reject(f"{path} must be {expected}, got {value!r}.")
        return text
