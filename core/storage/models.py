"""Database tables (SQLAlchemy 2.0 typed models)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

# SQLite's INTEGER PRIMARY KEY is its rowid only when spelled INTEGER, not BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Customer(Base):
    __tablename__ = "customer"
    # The last line of defence for the overdraft rule: whatever path writes a balance, the
    # database refuses a negative one.
    __table_args__ = (CheckConstraint("balance >= 0", name="ck_customer_balance_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the customer agreed to marketing e-mail. Consent is given, never presumed (GDPR),
    # so it is false until the shop says otherwise: platforms then keep the contact's loyalty
    # fields without subscribing it to anything. A server default, as the migration adds it,
    # so a row written with an older revision's columns stores false too.
    marketing_consent: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    pin: Mapped[str | None] = mapped_column(String(32))
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    tier_id: Mapped[str | None] = mapped_column(String(100))
    tier_name: Mapped[str | None] = mapped_column(String(200))
    # What the shop's tier data says, when it says it: when the tier lapses, and how many
    # points the next one still wants.
    tier_expires_at: Mapped[date | None] = mapped_column(Date)
    points_to_next_tier: Mapped[int | None] = mapped_column(BigInteger)
    missions: Mapped[int] = mapped_column(Integer, default=0)
    rewards: Mapped[int] = mapped_column(Integer, default=0)
    referrals: Mapped[int] = mapped_column(Integer, default=0)
    # The highest referral count the customer has had: referral-completed goes out only for a
    # count above it, so a count lowered (a refund) and raised again announces nothing twice.
    # A server default, as the migration adds it, so rows written without it store 0.
    referrals_high: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Kept equal to the sum of the ledger in the same transaction as every entry, so snapshots
    # and exports of a million customers never sum a million ledgers.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    last_change_at: Mapped[datetime | None]
    last_change_points: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LedgerEntry(Base):
    """Append-only: a row is never updated or deleted."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        # The shop's reference makes a retried POST idempotent: the same reference twice is
        # one entry, never a double credit.
        UniqueConstraint("customer_id", "reference", name="uq_ledger_customer_reference"),
        Index("ix_ledger_customer_id", "customer_id", "id"),
        # Answers a snapshot's lifetime points (the sum of the credits) without reading the
        # rows: through the index above, a customer's every entry was read for it.
        Index(
            "ix_ledger_credits",
            "customer_id",
            "points",
            postgresql_where=text("points > 0"),
            sqlite_where=text("points > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    points: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(200))
    expires_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PointLot(Base):
    """Points from one credit that are still spendable, and when they expire."""

    __tablename__ = "point_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="ck_lot_remaining_in_range"),
        Index("ix_lot_customer_open", "customer_id", "expires_on", "id"),
        # A customer's lots with points left, for the next expiry and a debit: through the
        # index above, every lot the customer had was read, spent ones too.
        Index(
            "ix_lot_open_by_customer",
            "customer_id",
            "expires_on",
            "id",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        Index(
            "ix_lot_expiring",
            "expires_on",
            "customer_id",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id", ondelete="CASCADE"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_on: Mapped[date | None] = mapped_column(Date)


class IntegrationStatus(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    FAILING = "failing"
    DISABLED = "disabled"


class IntegrationRow(Base):
    __tablename__ = "integration"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    platform: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Fernet token of the JSON of the secret settings; never stored or logged in clear.
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    field_prefix: Mapped[str] = mapped_column(String(32), default="ellity_")
    # The first (longest) expiry reminder; ``expiry_reminders`` holds every one, longest first.
    expiry_notice_days: Mapped[int | None] = mapped_column(Integer)
    expiry_reminders: Mapped[list[int] | None] = mapped_column(JSON)
    # Event types this integration is not sent, and the balances whose upward crossing sends
    # it reward-available.
    disabled_events: Mapped[list[str] | None] = mapped_column(JSON)
    reward_thresholds: Mapped[list[int] | None] = mapped_column(JSON)
    list_rewards: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=IntegrationStatus.NEW)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The webhook URL's token is a credential (Ecomail's only one): checked against its
    # SHA-256, and kept Fernet-encrypted only so an admin can be shown the URL again.
    webhook_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    webhook_secret: Mapped[bytes] = mapped_column(LargeBinary)
    # One worker at a time sends for an integration, so one rate budget holds however many
    # workers run; a crashed worker's lease lapses and another takes over.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    # Set when the platform answered 429: nobody sends for this integration before then.
    resume_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ListMembership(Base):
    """A customer's last known state in one platform list, and the points it earned them.

    Webhook credits are transitions of this row, which is what makes a duplicate delivery of the
    same webhook change nothing.
    """

    __tablename__ = "list_membership"
    __table_args__ = (UniqueConstraint("integration_id", "customer_id", "list_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    list_id: Mapped[str] = mapped_column(String(100))
    subscribed: Mapped[bool] = mapped_column(Boolean)
    credited_points: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxKind(StrEnum):
    CONTACT = "contact"
    EVENT = "event"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # Partial indexes over the rows still to send (or dead): they stay as small as the
        # backlog however much delivered history the table keeps, and marking a row delivered
        # drops it from them instead of moving it. With ``status`` as an index column, SQLite
        # also chose that index over the primary key for "these ids, if still pending" and
        # read every pending row to mark one batch delivered.
        Index(
            "ix_outbox_due",
            "integration_id",
            "next_attempt_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Contact updates are claimed before events (``pointbridge.delivery.claims``): this
        # index finds the due ones without walking past every due event.
        Index(
            "ix_outbox_due_contact",
            "integration_id",
            "next_attempt_at",
            "id",
            sqlite_where=text("status = 'pending' AND kind = 'contact'"),
            postgresql_where=text("status = 'pending' AND kind = 'contact'"),
        ),
        Index(
            "ix_outbox_customer",
            "integration_id",
            "customer_id",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_outbox_dead",
            "integration_id",
            "id",
            sqlite_where=text("status = 'dead'"),
            postgresql_where=text("status = 'dead'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # e.g. credit-expires:<integration>:<customer>:<date>; unique, so a job run twice enqueues once.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


def outbox_status_is(status: OutboxStatus, rows: Any = OutboxMessage) -> ColumnElement[bool]:
    """``outbox.status = '<status>'`` with the value written into the SQL, which is what lets
    a database match the partial indexes above: a plan made for a bound parameter (a
    PostgreSQL generic plan) cannot assume the parameter is 'pending'. ``rows`` may be an
    alias of the outbox."""
    return rows.status == literal_column(f"'{status.value}'")


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token: a leaked database does not leak working tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class JobRun(Base):
    """A finished run of a daily job for one day: what lets a restart catch up missed days."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ExportJob(Base):
    """A full export of every customer to one integration, resumable from ``cursor``."""

    __tablename__ = "export_job"
    __table_args__ = (Index("ix_export_job_integration", "integration_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.QUEUED)
    # The last customer id sent: customers are exported in id order, so this is where a
    # restarted export continues.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    deferred: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]


class ExportFailure(Base):
    """A customer the platform refused during an export, reported at the end."""

    __tablename__ = "export_failure"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("export_job.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320))
    error: Mapped[str] = mapped_column(Text)


class ReferralVisit(Base):
    """One visit of a customer's referral link (``/r/<code>``): rows only ever added, so a
    visit never waits on the customer's row lock."""

    __tablename__ = "referral_visit"
    __table_args__ = (Index("ix_referral_visit_customer", "customer_id", "visited_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    visited_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """An admin who logs in to the console (``pointbridge users create``)."""

    __tablename__ = "admin_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # An Argon2id hash in PHC form (salt and cost inside); never the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed logins counted per key (``account:<email>`` and ``ip:<address>``), in the
    database so every server process refuses the same guesses."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
