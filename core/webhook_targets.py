"""Which integration a webhook URL names, and the plugin's view of it, kept per process.

A campaign's webhooks arrive in bursts for the same few integrations. Loading the row as an
ORM object and building its view (the settings schema, three Fernet decryptions) on every
request cost more CPU than the points transaction the webhook asks for. The row's columns are
still read on every request, and a view is reused only while they are what it was built
from: a rotated token, a disabled integration, new list rewards or settings are seen by the
next request in every process, with no time to live to wait out.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pointbridge.contract.platform import Integration
from pointbridge.integrations import Integrations, webhook_token_digest
from pointbridge.storage.models import IntegrationRow
from pointbridge.storage.sql import id_in

_INTEGRATIONS = IntegrationRow.__table__
# What a webhook and the plugin's view read. The worker's lease and pause columns change all
# the time and no view depends on them, so they are left out: a view outlives them.
_VIEWED = (
    "id",
    "name",
    "platform",
    "settings",
    "secrets",
    "data",
    "field_prefix",
    "expiry_notice_days",
    "expiry_reminders",
    "disabled_events",
    "reward_thresholds",
    "list_rewards",
    "status",
    "webhook_token_hash",
    "webhook_token_encrypted",
    "webhook_secret",
)
_BY_ID = select(*(_INTEGRATIONS.c[name] for name in _VIEWED)).where(
    _INTEGRATIONS.c.id == bindparam("id")
)


class WebhookTarget:
    """A webhook URL's integration: its row, detached and only read, and the plugin's view,
    built when first asked for."""

    def __init__(
        self, row: IntegrationRow, columns: tuple[Any, ...], integrations: Integrations
    ) -> None:
        self.row = row
        self.columns = columns
        self._integrations = integrations
        self._view: Integration | None = None

    def view(self) -> Integration:
        if self._view is None:
            self._view = self._integrations.view(self.row)
        return self._view


class WebhookTargets:
    """Finds a webhook URL's integration, reusing the target last built from the same row
    contents."""

    def __init__(self, integrations: Integrations) -> None:
        self.integrations = integrations
        self._targets: dict[int, WebhookTarget] = {}

    def find(self, session: Session, integration_id: str, token: str) -> WebhookTarget | None:
        """The integration a webhook URL names, or None for any other URL: an unknown id, a
        wrong token, or text no URL of ours holds (the checks come before anything that could
        overflow or fail on it)."""
        row_id = id_in(integration_id)
        if row_id is None or not token.isascii():
            return None
        found = session.connection().execute(_BY_ID, {"id": row_id}).first()
        if found is None:
            return None
        # Constant time over bytes of equal length, whatever the caller sent.
        expected = bytes.fromhex(found.webhook_token_hash)
        if not hmac.compare_digest(webhook_token_digest(token), expected):
            return None
        columns = tuple(found)
        cached = self._targets.get(row_id)
        if cached is not None and cached.columns == columns:
            return cached
        target = WebhookTarget(IntegrationRow(**found._asdict()), columns, self.integrations)
        self._targets[row_id] = target
        return target
