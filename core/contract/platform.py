"""What a plugin declares about its platform, and what the host hands a plugin per call."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from enum import StrEnum
from typing import Any

import marshmallow

from pointbridge import untrusted_json
from pointbridge.contract.contact import Contact
from pointbridge.contract.errors import PermanentError, RateLimited, TransientError, WebhookRejected
from pointbridge.contract.events import Event
from pointbridge.kit.http import client_for
from pointbridge.kit.ratelimit import RateLimit
from pointbridge.kit.state import state_for


class Capability(StrEnum):
    EVENTS = "events"
    WEBHOOKS = "webhooks"
    CSV_EXPORT = "csv_export"


@dataclass(frozen=True, slots=True)
class Integration:
    """One configured connection, as a plugin sees it (read-only).

    ``settings`` are loaded by the platform's schema, secrets decrypted. ``data`` is what the
    plugin's ``install`` returned last (field ids, the regional endpoint...), kept by the host.
    ``rate_limit`` is the platform's declared limit (``Platform.rate_limit``), which paces
    every request of the integration's ``client``; ``rate_limits`` are its named ones
    (``Platform.rate_limits``), for a client made with ``limit=<name>``. ``timezone`` is the
    shop's (``[pointbridge] timezone``): write dates as its clock shows them
    (``loyalty_fields(contact, integration.timezone)``).
    """

    id: int
    name: str
    platform: str
    settings: Mapping[str, Any]
    data: Mapping[str, Any]
    field_prefix: str
    expiry_notice_days: int | None
    webhook_secret: str
    webhook_url: str
    rate_limit: RateLimit | None = None
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict, hash=False)
    timezone: tzinfo = UTC

    # ``integration.client(base_url, ...)``: the host-owned, kept, paced HTTP client (see
    # ``client_for``); a plugin calls it on every hook call instead of keeping its own.
    client = client_for
    # ``integration.state(Make)``: what the plugin keeps about this integration between calls
    # (see ``pointbridge.kit.state``), instead of module-level dicts of its own.
    state = state_for


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What ``install`` did: field names created and reused, and data for later calls."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    data: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One contact or event of a batch that was not delivered.

    ``key`` is ``Contact.customer_id`` or ``Event.id``. A ``PermanentError`` sends the item to
    the dead letters; a ``TransientError`` retries that item alone, with backoff; a
    ``RateLimited`` says the platform stopped the call before this item was tried: the item
    costs no attempt and waits, with the whole integration, for ``retry_after``.
    """

    key: int
    error: PermanentError | TransientError | RateLimited


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request from a platform, detached from Flask so plugins stay framework-free."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def text(self) -> str:
        """The body as UTF-8 text, or ``WebhookRejected(400)`` saying where it is not."""
        try:
            return self.body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise WebhookRejected(
                400, f"The request body is not UTF-8 text ({exc.reason} at byte {exc.start})."
            ) from None

    def json(self) -> Any:
        """The body as JSON, or ``WebhookRejected(400)`` saying where it is broken."""
        text = self.text()
        if not text.strip():
            raise WebhookRejected(400, "The request body is empty; expected JSON.")
        try:
            return parse_json(text)
        except json.JSONDecodeError as exc:
            raise WebhookRejected(400, json_problem(text, exc)) from None


def json_problem(text: str, exc: json.JSONDecodeError) -> str:
    """What is wrong with a body that is broken JSON, and where: the line, the column and the
    text just after (or that the body ends too early), for whoever typed it to find the spot.
    A plugin that parses with ``parse_json`` itself may add its users' usual mistakes."""
    near = text[exc.pos : exc.pos + 30].replace("\n", " ")
    where = f"just before '{near}'" if near else "the body ends too early"
    return (
        f"The request body is not valid JSON: {exc.msg} at line {exc.lineno}, column "
        f"{exc.colno} ({where})."
    )


def parse_json(text: str) -> Any:
    """``json.loads`` for a body anyone on the internet may have sent.

    Broken syntax raises ``json.JSONDecodeError``, for the caller to explain (a plugin may know
    its users' usual mistakes). Valid JSON that no platform sends (``untrusted_json``: too
    deep, a number too long) raises ``WebhookRejected(400)`` saying which.
    """
    try:
        return untrusted_json.loads(text)
    except untrusted_json.UnreadableJson as exc:
        raise WebhookRejected(400, str(exc)) from None


@dataclass(frozen=True, slots=True)
class ListSubscription:
    """Normalized webhook action: ``email`` joined (``subscribed``) or left list ``list_id``.

    ``raw`` keeps the platform's payload for logs and debugging (anymail's ``esp_event``).
    """

    email: str
    list_id: str
    subscribed: bool
    raw: Mapping[str, Any] = field(default_factory=dict)


WebhookAction = ListSubscription


def no_written_lists(integration: Integration) -> Collection[str]:
    return ()


def no_webhook_bodies(list_ids: Sequence[str]) -> Sequence[tuple[str, str]]:
    return ()


@dataclass(frozen=True)
class Platform:
    """A plugin's declaration of one email platform it connects to.

    :param name: short id used in config and CLI (``smartemailing``)
    :param title: human name (``SmartEmailing``)
    :param settings_schema: marshmallow schema of the integration's settings. Mark secret fields
        with ``metadata={"secret": True}``: they are encrypted at rest and redacted in output.
        An API base URL setting should default (``load_default``) to the real one.
    :param capabilities: what the platform supports beyond contact sync
    :param max_batch: most contacts one ``push_contact`` call receives
    :param max_event_batch: most events one ``emit_event`` call receives
    :param rate_limit: the platform's request budget for one integration; the host keeps every
        worker together under it
    :param rate_limits: budgets the platform counts apart from ``rate_limit``, by a name of the
        plugin's choosing: Splio allows 20 requests/s on contacts and 10/s on every other
        endpoint, so it declares ``rate_limit=RateLimit(20, 1.0)`` and
        ``rate_limits={"others": RateLimit(10, 1.0)}``. A client made with
        ``integration.client(url, limit="others")`` paces its requests under that budget alone
        (shared by every client of the integration naming it); the host's own pacing of hook
        calls uses ``rate_limit`` only.
    :param max_in_flight: most calls the host has running at once for one integration. More
        than one hides the platform's latency (a call that takes 200 ms caps one-at-a-time
        delivery at five batches a second whatever the rate limit). The host never has one
        customer in two running calls, so each customer's order holds. Raise it only as far
        as the platform takes concurrent requests from one account.
    :param csv_row: for ``Capability.CSV_EXPORT``, one CSV row (column -> value) per contact
    :param description: one line for ``pointbridge plugins``
    :param export_after_install: start the initial sync (an export of every customer) at the
        integration's first successful install, and again at an install after a
        ``target_settings`` change, instead of waiting for the admin to ask; ``False`` for a
        platform that must not receive the customers who were there before it
    :param target_settings: the settings that say where contacts go (the account, list, address
        book or URL): when one changes, the next install syncs every customer again. A new key
        for the same account is no new target, so secrets are rarely among them
    :param written_lists: the ids of the lists pointbridge itself adds an integration's
        contacts to (the list it syncs into), as the platform's webhooks name them. Declare
        them whenever the platform can report pointbridge's own writes as subscriptions
        (Ecomail calls a list's webhook for subscriptions made through its API; an automation
        on "change in list" fires for them too): the host then refuses a points reward on
        those lists and ignores subscriptions to them, or pointbridge's first export would
        credit every customer.
    :param webhook_bodies: for a platform whose webhook the admin builds by hand (SmartEmailing's
        automation action), what to paste beside the URL and secret for the lists that carry a
        points reward (none yet: an empty sequence), as ``(what it is, exact text)`` pairs; the
        admin console shows each with a copy button
    :param event_rate: events a second the platform takes, for a platform whose event API is
        not one request per ``max_event_batch`` events (Ecomail's tracker and Splio's
        interactions take one event a request, within their request budget); the host paces
        a night's expiry notices by it. Default: ``rate_limit``'s calls a second x
        ``max_event_batch``
    :param events_setting: for a platform whose events an integration may leave unset, the
        setting without which it takes none (Splio's ``events_channel``): the host then
        queues no event for that integration, and counts it out of a night's reminders
    """

    name: str
    title: str
    settings_schema: type[marshmallow.Schema]
    capabilities: frozenset[Capability] = frozenset()
    max_batch: int = 100
    max_event_batch: int = 100
    rate_limit: RateLimit | None = None
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict, hash=False)
    max_in_flight: int = 1
    csv_row: Callable[[Integration, Contact], Mapping[str, Any]] | None = None
    description: str = ""
    export_after_install: bool = True
    target_settings: Collection[str] = ()
    written_lists: Callable[[Integration], Collection[str]] = no_written_lists
    webhook_bodies: Callable[[Sequence[str]], Sequence[tuple[str, str]]] = no_webhook_bodies
    event_rate: float | None = None
    events_setting: str | None = None

    def __post_init__(self) -> None:
        # Checked here, where the plugin author sees it at import: the host divides by it
        # when it paces a night's expiry notices, so 0 stopped that run (ZeroDivisionError)
        # and a negative rate or NaN made no sense of the spacing.
        rate = self.event_rate
        if rate is not None and (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or rate <= 0
        ):
            raise ValueError(
                f"Platform {self.name!r}: event_rate is the events a second the platform takes, "
                f"a positive number (or None for rate_limit's), not {rate!r}."
            )

    def takes_events(self, settings: Mapping[str, Any]) -> bool:
        """Whether an integration with these (stored, non-secret) settings is sent events."""
        if not self.supports(Capability.EVENTS):
            return False
        return self.events_setting is None or bool(settings.get(self.events_setting))

    def events_per_second(self) -> float | None:
        """What the platform takes; None when it declares no budget."""
        if self.event_rate is not None:
            return self.event_rate
        if self.rate_limit is None:
            return None
        return self.rate_limit.calls / self.rate_limit.per_seconds * self.max_event_batch

    def secret_settings(self) -> set[str]:
        return {
            name
            for name, schema_field in self.settings_schema().fields.items()
            if schema_field.metadata.get("secret")
        }

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities


__all__ = [
    "Capability",
    "Contact",
    "Event",
    "InstallResult",
    "Integration",
    "ItemFailure",
    "ListSubscription",
    "Platform",
    "RateLimit",
    "WebhookAction",
    "WebhookRequest",
]
