"""Settings every platform plugin has: a secret credential, its API's base URL, and the id of
something the admin picks on the platform (a contact list, an address book)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from marshmallow import fields, validate

if TYPE_CHECKING:
    from pointbridge.contract.platform import Integration


def secret(description: str) -> fields.String:
    """A required credential (API key, password): encrypted at rest, redacted in output."""
    return fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"secret": True, "description": description},
    )


def api_url(default: str, description: str) -> fields.Url:
    """The API base URL, defaulting to the platform's real one. Loopback and internal hosts
    are allowed for tests and proxies."""
    return fields.Url(
        load_default=default,
        require_tld=False,
        schemes={"http", "https"},
        metadata={"description": description},
    )


class _OptionalId(fields.Integer):
    def deserialize(self, value: Any, *args: Any, **kwargs: Any) -> Any:
        # Forms and ``--set name=`` send an empty text for "none chosen".
        blank = isinstance(value, str) and not value.strip()
        return super().deserialize(None if blank else value, *args, **kwargs)


def optional_id(description: str) -> fields.Integer:
    """The id (a positive integer) of something on the platform the admin may pick, such as a
    contact list; empty or missing loads as ``None``, for "none chosen"."""
    return _OptionalId(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={"description": description},
    )


def written_list(setting: str) -> Callable[[Integration], set[str]]:
    """For ``Platform.written_lists``: the list the setting names (as text), none while the
    setting is empty. Use it for the list pointbridge adds every synced contact to."""

    def lists(integration: Integration) -> set[str]:
        value = str(integration.settings.get(setting) or "").strip()
        return {value} if value else set()

    return lists
