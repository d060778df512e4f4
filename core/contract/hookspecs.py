"""The plugin contract. These docstrings are the plugin author's manual.

A plugin is a module (or object) with functions decorated ``@hookimpl``, published through the
entry-point group ``pointbridge``::

    [options.entry_points]
    pointbridge =
        myplatform = pointbridge_myplatform

The host calls ``install``, ``push_contact``, ``emit_event`` and ``handle_webhook`` for exactly
one integration at a time and only on the plugin that registered that integration's platform,
so an implementation never has to check whether a call is meant for it. If one plugin registers
several platforms, ``integration.platform`` tells them apart.

Plugins never touch the database and never decide points: they translate between pointbridge
and one platform's API, and classify what went wrong with the errors in ``core.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pluggy

from pointbridge.contract.contact import Contact
from pointbridge.contract.events import Event
from pointbridge.contract.platform import (
    InstallResult,
    Integration,
    ItemFailure,
    Platform,
    WebhookAction,
    WebhookRequest,
)

PROJECT = "pointbridge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_platforms(register: Callable[[Platform], None]) -> None:
    """Declare the email platforms this plugin connects to.

    Called once at start-up. Call ``register(Platform(...))`` once per platform; the
    ``Platform`` carries the name, title, settings schema, capabilities, batch sizes and the
    platform's rate limit (see ``core.platform.Platform``).

    :param register: callback taking a ``Platform``
    """


@hookspec(firstresult=True)
def install(integration: Integration) -> InstallResult:
    """Check the credentials and create what the platform needs before the first sync.

    Called when an admin saves credentials or runs ``pointbridge integrations install``. Create
    the custom fields / data fields (prefixed with ``integration.field_prefix`` where the
    platform's naming rules allow) and reuse those that exist, matched by name, so a second
    install creates nothing. Must be safe to call again at any time.

    :param integration: the integration, with its settings loaded and secrets decrypted
    :returns: ``InstallResult`` naming the fields created and reused; its ``data`` (field ids,
        regional endpoint...) is stored and handed back as ``integration.data`` on later calls
    :raises AuthError: credentials refused; the message tells the admin what to check
    :raises ConfigurationError: the account cannot work this way (a prefix the platform
        rejects, an unsupported set-up); the message says what to change
    :raises ChoiceRequired: a setting must be picked first (e.g. the list to sync to); its
        options are shown to the admin
    """


@hookspec(firstresult=True)
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> Sequence[ItemFailure]:
    """Create or update these contacts and their loyalty fields on the platform.

    ``contacts`` holds at most ``Platform.max_batch`` snapshots, one per customer, each the
    latest state at send time. Updates must be idempotent (upserts): the host delivers at least
    once. Never resubscribe a contact who unsubscribed and never trigger double opt-in mails.
    With ``Platform.max_in_flight`` above 1 the host makes several calls at once, from
    different threads, never with the same customer in two of them.

    Make HTTP requests through ``integration.client(base_url, ...)``: the host keeps it, paces
    it under ``Platform.rate_limit`` and maps statuses onto the errors below. A platform without
    a batch endpoint sends item by item with ``pointbridge.send_each``, which applies the
    item-level rules: a 429 halfway through hands the untried rest back as ``RateLimited``
    items (they cost no attempt and wait out ``retry_after``); a timeout on one item is that
    item's ``TransientError`` (the platform may have applied it; the retry is an upsert).

    :param integration: the integration to deliver to
    :param contacts: the snapshots
    :returns: the items that failed (``ItemFailure``); an empty sequence means all delivered
    :raises RateLimited: the whole call was throttled; ``retry_after`` seconds if known
    :raises TransientError: the whole call may succeed later (timeout, 5xx, connection)
    :raises AuthError: the credentials stopped working; the integration pauses
    :raises ConfigurationError: the account needs an admin (a field was deleted, a limit
        reached); the integration pauses with the message shown, the rows wait
    :raises PermanentError: the whole batch is unacceptable (rare; prefer ``ItemFailure``)
    """


@hookspec(firstresult=True)
def emit_event(integration: Integration, events: Sequence[Event]) -> Sequence[ItemFailure]:
    """Fire these events on the platform, to start the shop's automations.

    Called only for platforms that declare ``Capability.EVENTS``, with at most
    ``Platform.max_event_batch`` events. The host sends a customer's contact update before that
    customer's events, so the fields an automation reads are already current. An event for a
    contact the platform does not know yet must come back as a ``TransientError`` item, not be
    dropped.

    :returns: the items that failed; an empty sequence means all delivered
    :raises: as ``push_contact``
    """


@hookspec(firstresult=True)
def handle_webhook(integration: Integration, request: WebhookRequest) -> Sequence[WebhookAction]:
    """Turn a platform's webhook request into normalized actions.

    Called only for platforms that declare ``Capability.WEBHOOKS``, after the host checked the
    URL's token. Check any platform-level secret or signature (compare in constant time with
    ``hmac.compare_digest``; ``pointbridge.kit.webhook_secret.require_secret`` does it for a secret
    sent as-is in a header) against ``integration.webhook_secret``, parse the body and return
    e.g. ``[ListSubscription(email, list_id, subscribed)]``. The host applies the actions
    idempotently, so duplicate deliveries are harmless.

    :raises WebhookRejected: with 401 for a bad secret, 400 for a malformed body (the message
        says what is wrong; ``hint`` may show the body to configure)
    """
