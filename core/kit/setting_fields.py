"""Settings every platform plugin has: a secret credential, its API's base URL, and the id of
something the admin picks on the platform (a contact list, an address book)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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


def is_web_address(url: str) -> bool:
    """An http or https URL naming a host (loopback and internal hosts included), with no
    whitespace or control character anywhere in it."""
    if not url.isprintable() or any(char.isspace() for char in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is no number or out of range
    except ValueError:
        return False
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return False
    return _is_sendable_host(parts.netloc.rpartition("@")[2], host)


def _is_sendable_host(host_and_port: str, host: str) -> bool:
    """Whether requests can connect to ``host``: ``urlsplit`` also takes hosts it cannot, and
    sending to one raises urllib3's ``LocationParseError`` or requests' ``InvalidURL``, no
    connection error, so each delivery would fail as a plugin bug, retried forever."""
    if host_and_port.startswith("["):
        # Only a port may follow the bracket; IPvFuture ("[v1.x]") has no connection.
        after = host_and_port.partition("]")[2]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return not after or after.startswith(":")
    if "%" in host or host.startswith("*"):
        return False
    try:
        host.encode("idna")  # what urllib3 checks before connecting: no label empty or > 63
    except UnicodeError:
        return False
    return True


class WebAddress(fields.Url):
    """An http(s) URL setting, checked by ``is_web_address`` (the standard library's URL
    parser) instead of marshmallow's ``URL`` validator: that one compiles a case-insensitive
    pattern over most of Unicode the first time it runs, 30-40 ms in every process that
    loads an integration's settings (each CLI command, each web worker's first webhook, the
    first page of every export). Still a ``fields.Url``: JSON Schema and the admin form call
    it a URL."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, validate.URL)]

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        url = super()._deserialize(value, attr, data, **kwargs)
        if not is_web_address(url):
            raise self.make_error("invalid")
        return url


def api_url(default: str, description: str) -> WebAddress:
    """The API base URL, defaulting to the platform's real one. Loopback and internal hosts
    are allowed for tests and proxies."""
    return WebAddress(load_default=default, metadata={"description": description})


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
