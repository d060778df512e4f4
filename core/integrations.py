"""Integrations: configured connections to a platform, their settings, secrets and install."""

from __future__ import annotations

import hashlib
import json
import secrets as token_source
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import marshmallow
from sqlalchemy import select
from sqlalchemy.orm import Session

from pointbridge.contract.errors import (
    ChoiceRequired,
    ConfigurationError,
    DeliveryError,
    RateLimited,
)
from pointbridge.contract.platform import Capability, InstallResult, Integration, Platform
from pointbridge.host_options import (
    MAX_NAME,
    IntegrationError,
    parse_disabled_events,
    parse_field_prefix,
    parse_integration_name,
    parse_list_rewards,
    parse_notice_days,
    parse_reward_thresholds,
)
from pointbridge.kit.ratelimit import throttle_cleared
from pointbridge.loyalty.schema import has_unstorable
from pointbridge.plugins import PluginHost
from pointbridge.settings import Settings
from pointbridge.storage.db import Database
from pointbridge.storage.models import IntegrationRow, IntegrationStatus
from pointbridge.storage.secrets import SecretBox, redact
from pointbridge.storage.sql import id_in

HOST_SETTINGS = (
    "field_prefix",
    "expiry_notice_days",
    "list_rewards",
    "disabled_events",
    "reward_thresholds",
)
# Host settings that change only what pointbridge itself does: no install needed after them.
HOST_ONLY_SETTINGS = frozenset(HOST_SETTINGS) - {"field_prefix"}
# In an integration's data, beside the plugin's own: the target its initial sync went to, and
# the field prefix it wrote under (every field's name: a new prefix starts with empty fields).
SYNCED_TARGET = "pointbridge:synced_target"
SYNCED_PREFIX = "pointbridge:synced_prefix"
HOST_DATA = frozenset({SYNCED_TARGET, SYNCED_PREFIX})
# Installs run in the admin's terminal or page: a few minutes of a platform's 429s are waited
# out, a platform that keeps refusing is reported.
INSTALL_ATTEMPTS = 8
MAX_INSTALL_WAIT = 60.0


class IntegrationNotFound(IntegrationError):
    pass


class StoredSettingsRefused(IntegrationError):
    """An integration's stored settings fail its schema: saved before they were checked as
    they are now. Nothing can use them until an admin sets them again; the message says which
    and why, without quoting the values (a URL may hold a proxy's password)."""

    def __init__(self, error: marshmallow.ValidationError) -> None:
        refused = error.normalized_messages()
        names = ", ".join(map(str, refused)) if isinstance(refused, dict) else "settings"
        super().__init__(
            f"the stored {names} is no longer accepted ({_format_validation(error)}); "
            f"set {names} again."
        )


class InitialSync(StrEnum):
    """Why an install starts the initial sync of every customer."""

    FIRST = "its first activation"
    TARGET_CHANGED = "its new target"
    ASKED = "--resync"


def reminder_days(row: IntegrationRow) -> list[int]:
    """Every expiry reminder's days ahead, longest first (a row from before reminders were
    a list has its one)."""
    if row.expiry_notice_days is None:
        return []
    return list(row.expiry_reminders or [row.expiry_notice_days])


def webhook_token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _format_validation(error: marshmallow.ValidationError) -> str:
    messages = error.normalized_messages()
    if isinstance(messages, dict):
        return "; ".join(
            f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
            for key, value in messages.items()
        )
    return str(messages)


def integration_named(session: Session, name_or_id: str | int) -> IntegrationRow:
    """The integration with this name or id, or ``IntegrationNotFound`` saying so (also for
    text no name can be, before it reaches the database: PostgreSQL cannot take a NUL)."""
    if isinstance(name_or_id, str) and (len(name_or_id) > MAX_NAME or has_unstorable(name_or_id)):
        raise IntegrationNotFound(f"No integration named {name_or_id!r}.")
    if isinstance(name_or_id, int):
        row = session.get(IntegrationRow, name_or_id)
    elif name_or_id.isdigit():
        # Digits name an id, and only those a row id can be: a larger number overflowed
        # the database's BIGINT (a traceback from the command line).
        row_id = id_in(name_or_id)
        row = None if row_id is None else session.get(IntegrationRow, row_id)
    else:
        row = session.scalar(select(IntegrationRow).where(IntegrationRow.name == name_or_id))
    if row is None:
        raise IntegrationNotFound(f"No integration named {name_or_id!r}.")
    return row


def _only_with_events(platform: Platform, setting: str, value: Any, what: str = "") -> None:
    """Refuse a setting about events on a platform pointbridge sends none: it would do nothing."""
    if value and not platform.supports(Capability.EVENTS):
        raise IntegrationError(
            f"{platform.title} has no events in pointbridge, so {what or setting} does not "
            f"apply; leave {setting} unset."
        )


class Integrations:
    def __init__(self, host: PluginHost, box: SecretBox, settings: Settings) -> None:
        self.host = host
        self.box = box
        self.settings = settings

    def get(self, session: Session, name_or_id: str | int) -> IntegrationRow:
        return integration_named(session, name_or_id)

    def add(
        self, session: Session, name: str, platform_name: str, values: Mapping[str, Any]
    ) -> IntegrationRow:
        parse_integration_name(name)
        platform = self.host.platform(platform_name)
        if session.scalar(select(IntegrationRow.id).where(IntegrationRow.name == name)):
            raise IntegrationError(f"An integration named {name!r} exists already.")
        row = IntegrationRow(
            name=name,
            platform=platform.name,
            settings={},
            data={},
            list_rewards={},
            field_prefix="ellity_",
            status=IntegrationStatus.NEW,
            webhook_secret=b"",
        )
        self.rotate_webhook_secret(row)
        self._new_webhook_token(row)
        self._apply(row, platform, values)
        session.add(row)
        session.flush()
        self._refuse_self_rewards(row, allowed=set())
        return row

    def update(self, row: IntegrationRow, values: Mapping[str, Any]) -> list[str]:
        """Apply changed settings; returns the names of what changed."""
        # A reward set before pointbridge refused them stays (the webhook ignores it), so
        # that an old config file still loads; no change may add another.
        try:
            allowed = self._self_rewarded(row)
        except StoredSettingsRefused:
            # Settings saved before they were checked as they are now, which this change is
            # likely fixing: the rewards they had are kept as they were, not re-judged.
            allowed = set(row.list_rewards or {})
        self._apply(row, self.host.platform(row.platform), values)
        self._refuse_self_rewards(row, allowed)
        return sorted(values)

    def _self_rewarded(self, row: IntegrationRow) -> set[str]:
        """Lists that carry a reward although pointbridge writes to them itself."""
        written = self.host.platform(row.platform).written_lists(self.view(row))
        return set(row.list_rewards or {}) & {str(list_id) for list_id in written}

    def _refuse_self_rewards(self, row: IntegrationRow, allowed: set[str]) -> None:
        refused = sorted(self._self_rewarded(row) - allowed)
        if refused:
            lists = ", ".join(refused)
            title = self.host.platform(row.platform).title
            raise IntegrationError(
                f"list_rewards: pointbridge itself adds every customer to {title} list {lists} "
                "(it syncs contacts there), so a reward on it would credit every customer at the "
                f"first export. Reward a different list, one customers join themselves."
            )

    def _apply(self, row: IntegrationRow, platform: Platform, values: Mapping[str, Any]) -> None:
        values = dict(values)
        if "field_prefix" in values:
            row.field_prefix = parse_field_prefix(values.pop("field_prefix"))
        if "expiry_notice_days" in values:
            days = parse_notice_days(values.pop("expiry_notice_days"))
            _only_with_events(platform, "expiry_notice_days", days, "the expiry notice")
            row.expiry_notice_days = days[0] if days else None
            row.expiry_reminders = days
        if "disabled_events" in values:
            disabled = parse_disabled_events(values.pop("disabled_events"))
            _only_with_events(platform, "disabled_events", disabled)
            row.disabled_events = disabled or None
        if "reward_thresholds" in values:
            thresholds = parse_reward_thresholds(values.pop("reward_thresholds"))
            _only_with_events(platform, "reward_thresholds", thresholds)
            row.reward_thresholds = thresholds or None
        if "list_rewards" in values:
            row.list_rewards = parse_list_rewards(values.pop("list_rewards"))
        secret_names = platform.secret_settings()
        current = {**row.settings, **self.box.decrypt_json(row.secrets)}
        merged = {**current, **values}
        schema = platform.settings_schema()
        unknown = set(merged) - set(schema.fields)
        if unknown:
            allowed = sorted({*schema.fields, *HOST_SETTINGS})
            raise IntegrationError(
                f"{platform.title} has no setting {', '.join(sorted(unknown))}; "
                f"its settings are: {', '.join(allowed)}."
            )
        try:
            schema.load(merged)
        except marshmallow.ValidationError as exc:
            raise IntegrationError(
                f"Invalid {platform.title} settings: {_format_validation(exc)}"
            ) from None
        row.settings = {k: v for k, v in merged.items() if k not in secret_names}
        row.secrets = self.box.encrypt_json({k: v for k, v in merged.items() if k in secret_names})

    def _new_webhook_token(self, row: IntegrationRow) -> None:
        token = token_source.token_urlsafe(24)
        row.webhook_token_hash = webhook_token_digest(token).hex()
        row.webhook_token_encrypted = self.box.encrypt(token)

    def rotate_webhook(self, row: IntegrationRow) -> str:
        """A new webhook token: the old URL is refused once the caller commits. Returns the
        new URL."""
        self._new_webhook_token(row)
        return self.webhook_url(row)

    def rotate_webhook_secret(self, row: IntegrationRow) -> str:
        """A new webhook secret (SmartEmailing's ``X-Secret-Key``): the old one is refused once
        the caller commits. Returns the new secret."""
        secret = token_source.token_urlsafe(24)
        row.webhook_secret = self.box.encrypt(secret)
        return secret

    def webhook_url(self, row: IntegrationRow, *, reveal: bool = True) -> str:
        token = self.box.decrypt(row.webhook_token_encrypted)
        shown = token if reveal else redact(token)
        return f"{self.settings.public_url.rstrip('/')}/webhooks/{row.id}/{shown}"

    def webhook_secret(self, row: IntegrationRow) -> str:
        return self.box.decrypt(row.webhook_secret)

    def view(self, row: IntegrationRow) -> Integration:
        """The plugin's view: settings loaded by the schema, secrets decrypted."""
        platform = self.host.platform(row.platform)
        try:
            loaded = platform.settings_schema().load(
                {**row.settings, **self.box.decrypt_json(row.secrets)}
            )
        except marshmallow.ValidationError as exc:
            raise StoredSettingsRefused(exc) from None
        return Integration(
            id=row.id,
            name=row.name,
            platform=row.platform,
            settings=loaded,
            data={k: v for k, v in (row.data or {}).items() if k not in HOST_DATA},
            field_prefix=row.field_prefix,
            expiry_notice_days=row.expiry_notice_days,
            webhook_secret=self.webhook_secret(row),
            webhook_url=self.webhook_url(row),
            rate_limit=platform.rate_limit,
            rate_limits=platform.rate_limits,
            timezone=self.settings.shop_timezone,
        )

    def describe(
        self, row: IntegrationRow, *, reveal_webhook_secret: bool = False
    ) -> dict[str, Any]:
        """What ``integrations show`` prints: secrets redacted."""
        platform = self.host.platform(row.platform)
        secret_values = self.box.decrypt_json(row.secrets)
        notice = (
            "does not apply (no events)"
            if not platform.supports(Capability.EVENTS)
            else (
                f"{', '.join(map(str, reminder_days(row)))} days ahead"
                if row.expiry_notice_days
                else "off"
            )
        )
        described: dict[str, Any] = {
            "id": row.id,
            "name": row.name,
            "platform": row.platform,
            "status": row.status,
            "last_error": row.last_error,
            "field_prefix": row.field_prefix,
            "expiry_notice": notice,
            "list_rewards": row.list_rewards,
            "disabled_events": row.disabled_events or [],
            "reward_thresholds": row.reward_thresholds or [],
            "settings": {
                **row.settings,
                **{key: redact(str(value)) for key, value in secret_values.items()},
            },
        }
        if platform.supports(Capability.WEBHOOKS):
            described["webhook_url"] = self.webhook_url(row, reveal=reveal_webhook_secret)
            secret = self.webhook_secret(row)
            described["webhook_secret"] = secret if reveal_webhook_secret else redact(secret)
        return described

    def install(
        self, db: Database, name: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> InstallResult:
        """Run the plugin's install; on success the integration turns active.

        An install makes many calls in a row (list the fields, create each missing one), so a
        platform's 429 is waited out and the install run again, which the contract makes safe:
        a second install reuses what the first created.
        """
        with db.transaction() as session:
            row = self.get(session, name)
            integration = self.view(row)
        try:
            result = self._install_waiting_out_429s(integration, sleep)
        except (ChoiceRequired, DeliveryError) as exc:
            with db.transaction() as session:
                row = self.get(session, name)
                row.last_error = str(exc)
                if isinstance(exc, ConfigurationError):
                    row.status = IntegrationStatus.FAILING
            raise
        with db.transaction() as session:
            row = self.get(session, name)
            row.data = {**(row.data or {}), **dict(result.data)}
            row.status = IntegrationStatus.ACTIVE
            row.last_error = None
        throttle_cleared(row.id)
        return result

    def _install_waiting_out_429s(
        self, integration: Integration, sleep: Callable[[float], None]
    ) -> InstallResult:
        for attempt in range(INSTALL_ATTEMPTS):
            try:
                # A plugin with nothing to create may leave install out or return None.
                return (
                    self.host.call("install", integration.platform, integration=integration)
                    or InstallResult()
                )
            except RateLimited as limited:
                if attempt == INSTALL_ATTEMPTS - 1:
                    raise
                sleep(min(limited.retry_after or 2.0**attempt, MAX_INSTALL_WAIT))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def needs_install(self, changed: list[str]) -> bool:
        """Whether changed settings (credentials, the target, the field prefix) must be checked
        against the platform again before anything more is sent."""
        return not set(changed) <= HOST_ONLY_SETTINGS

    def _target(self, row: IntegrationRow) -> str:
        platform = self.host.platform(row.platform)
        settings = self.view(row).settings
        named = {key: settings.get(key) for key in sorted(platform.target_settings)}
        return hashlib.sha256(json.dumps(named, default=str).encode()).hexdigest()

    def claim_initial_sync(
        self, db: Database, name: str, *, resync: bool = False
    ) -> InitialSync | None:
        """After a successful install: whether every customer is to be sent now (the first
        activation, a new target, or asked), recording the target so that the next install
        of the same target sends nobody again."""
        with db.transaction() as session:
            row = self.get(session, name)
            if not self.host.platform(row.platform).export_after_install:
                return None
            data = row.data or {}
            target, synced = self._target(row), data.get(SYNCED_TARGET)
            # A sync recorded before the prefix was counted is taken to be under this prefix.
            new_prefix = data.get(SYNCED_PREFIX, row.field_prefix) != row.field_prefix
            if resync:
                reason = InitialSync.ASKED
            elif synced is None:
                reason = InitialSync.FIRST
            elif synced != target or new_prefix:
                reason = InitialSync.TARGET_CHANGED
            else:
                reason = None
            if reason is not None or SYNCED_PREFIX not in data:
                row.data = {**data, SYNCED_TARGET: target, SYNCED_PREFIX: row.field_prefix}
            return reason

    def disable(self, row: IntegrationRow) -> None:
        row.status = IntegrationStatus.DISABLED

    def remove(self, session: Session, row: IntegrationRow) -> None:
        """Delete the integration with its queued rows, exports and list rewards given (the
        database cascades); the points customers got stay theirs."""
        session.delete(row)

    def sync_config(self, session: Session) -> list[str]:
        """Upsert the integrations declared in the config file; returns what changed."""
        changed = []
        for name, declared in self.settings.integrations.items():
            declared = dict(declared)
            platform_name = declared.pop("plugin", None) or declared.pop("platform", None)
            values = {**declared.pop("settings", {}), **declared}
            existing = session.scalar(select(IntegrationRow).where(IntegrationRow.name == name))
            if existing is None:
                if not platform_name:
                    raise IntegrationError(f'[integrations.{name}] needs plugin = "...".')
                self.add(session, name, platform_name, values)
                changed.append(f"added {name}")
            else:
                if platform_name and platform_name != existing.platform:
                    raise IntegrationError(
                        f"[integrations.{name}] says plugin {platform_name!r}, but the "
                        f"integration uses {existing.platform!r}."
                    )
                self.update(existing, values)
                changed.append(f"updated {name}")
        return changed
