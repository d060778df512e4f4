"""The loyalty domain: customers, the points ledger, expiry lots and PINs.

Every change writes its ledger rows and its outbox rows in the caller's transaction, so either
both happen or neither does.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pointbridge.contract.errors import PointbridgeError
from pointbridge.contract.events import EventType
from pointbridge.delivery.outbox import Outbox
from pointbridge.settings import Settings
from pointbridge.storage.models import Customer, LedgerEntry, PointLot

# Most points one transaction may move: a typo of a few zeros is refused, and no sum of
# transactions a shop could make comes near the 64-bit balance column's limit.
MAX_POINTS = 1_000_000_000
# Anchored for the OpenAPI document, which shows them; always applied with fullmatch, since
# "$" alone also matches before a trailing newline.
REASON_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PIN_PATTERN = re.compile(r"^[0-9A-Za-z]{4,12}$")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# References pointbridge writes itself (the nightly expiry's ``expiration:<day>``, the CSV
# import's opening balance): a shop's reference in this space would make the job's own write
# collide with it, and stop expiry for every customer of that page.
IMPORT_REFERENCE = "import"
EXPIRATION_REFERENCE_PREFIX = "expiration:"
EXPIRATION_REASON = "expiration"
# The points path writes through the tables, not the ORM: a handful of statements per
# transaction, and no objects to load, track and flush.
CUSTOMERS = Customer.__table__
LEDGER = LedgerEntry.__table__
LOTS = PointLot.__table__
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PROFILE_FIELDS = (
    "email",
    "external_id",
    "first_name",
    "last_name",
    "registered",
    "marketing_consent",
    "tier_id",
    "tier_name",
    "missions",
    "rewards",
    "referrals",
)


class LoyaltyError(PointbridgeError):
    """A request the loyalty rules refuse; ``status`` is the HTTP status that fits."""

    status = 422

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CustomerNotFound(LoyaltyError):
    status = 404


class Conflict(LoyaltyError):
    status = 409


class InsufficientPoints(Conflict):
    pass


def normalize_email(email: str) -> str:
    """The address as stored: trimmed and lower-cased; anything else is a ``LoyaltyError``.

    Control, format, private-use and surrogate characters are refused: no platform accepts
    them, NUL and lone surrogates cannot even be stored, and U+202E and friends make one
    address look like another in an admin's list.
    """
    normalized = email.strip().lower()
    if (
        len(normalized) > 320
        or not EMAIL_PATTERN.fullmatch(normalized)
        or any(unicodedata.category(char).startswith("C") for char in normalized)
    ):
        raise LoyaltyError(f"{email!r} is not an e-mail address.", field="email")
    return normalized


def is_system_reference(reference: str) -> bool:
    return reference == IMPORT_REFERENCE or reference.startswith(EXPIRATION_REFERENCE_PREFIX)


def expiration_reference(day: date) -> str:
    return f"{EXPIRATION_REFERENCE_PREFIX}{day.isoformat()}"


def due_points(session: Session, customer_ids: Sequence[int], day: date) -> dict[int, int]:
    """Points left in the lots of ``customer_ids`` due on or before ``day``, per customer
    that has any."""
    rows = session.execute(_DUE_POINTS, {"ids": list(customer_ids), "day": day})
    return {customer_id: int(points) for customer_id, points in rows if points}


def _flush_unique(session: Session, email: str, external_id: str | None) -> None:
    """Flush a new or changed customer; a concurrent request that took the same e-mail or
    external id between our check and our write is a 409 naming it, not a database error."""
    try:
        session.flush()
    except IntegrityError as exc:
        column = _unique_column(exc)
        if column == "external_id":
            raise Conflict(
                f"Another customer has external id {external_id}.", external_id=external_id
            ) from None
        if column == "email":
            raise Conflict(f"A customer with e-mail {email} exists already.", email=email) from None
        raise


def _unique_column(error: IntegrityError) -> str | None:
    """The customer column whose unique constraint ``error`` broke. PostgreSQL names the
    constraint (``customer_email_key``); SQLite says ``UNIQUE constraint failed:
    customer.email``. The message itself is no guide: it quotes the values."""
    constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    for column in ("external_id", "email"):
        if constraint == f"customer_{column}_key" or (
            constraint is None and str(error.orig).endswith(f"customer.{column}")
        ):
            return column
    return None


def generate_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(10))


class Loyalty:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    # customers ---------------------------------------------------------------------------

    def find(self, session: Session, email: str) -> Customer:
        normalized = normalize_email(email)
        customer = session.scalar(select(Customer).where(Customer.email == normalized))
        if customer is None:
            raise CustomerNotFound(f"No customer with e-mail {normalized}.", email=normalized)
        return customer

    def get(self, session: Session, customer_id: int) -> Customer:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise CustomerNotFound(f"No customer with id {customer_id}.", id=customer_id)
        return customer

    def create_customer(self, session: Session, values: Mapping[str, Any]) -> Customer:
        values = dict(values)
        email = normalize_email(values.pop("email"))
        if session.scalar(select(Customer.id).where(Customer.email == email)):
            raise Conflict(f"A customer with e-mail {email} exists already.", email=email)
        self._check_external_id(session, values.get("external_id"), None)
        pin = values.pop("pin", None)
        defaults = {"registered": False, "missions": 0, "rewards": 0, "referrals": 0}
        profile = {key: values[key] for key in PROFILE_FIELDS if key in values}
        customer = Customer(
            email=email,
            referral_code=_referral_code(),
            balance=0,
            **{**defaults, **profile},
        )
        session.add(customer)
        _flush_unique(session, email, values.get("external_id"))
        self.outbox.contact_changed(session, customer.id)
        if pin is not None:
            self.set_pin(session, customer, pin)
        return customer

    def update_customer(
        self, session: Session, customer: Customer, values: Mapping[str, Any]
    ) -> Customer:
        values = dict(values)
        if "email" in values:
            email = normalize_email(values["email"])
            clash = session.scalar(select(Customer.id).where(Customer.email == email))
            if clash and clash != customer.id:
                raise Conflict(f"Another customer has e-mail {email}.", email=email)
            values["email"] = email
        if "external_id" in values:
            self._check_external_id(session, values["external_id"], customer.id)
        pin = values.pop("pin", None)
        for key in PROFILE_FIELDS:
            if key in values:
                setattr(customer, key, values[key])
        _flush_unique(session, customer.email, customer.external_id)
        self.outbox.contact_changed(session, customer.id)
        if pin is not None:
            self.set_pin(session, customer, pin)
        return customer

    def _check_external_id(
        self, session: Session, external_id: str | None, own: int | None
    ) -> None:
        if external_id is None:
            return
        clash = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        if clash and clash != own:
            raise Conflict(
                f"Another customer has external id {external_id}.", external_id=external_id
            )

    def set_pin(self, session: Session, customer: Customer, pin: str | None = None) -> str:
        """Set the PIN (or generate one) and tell the platforms."""
        pin = generate_pin() if pin is None else pin
        if not PIN_PATTERN.fullmatch(pin):
            raise LoyaltyError("A PIN is 4 to 12 letters or digits.", field="pin")
        customer.pin = pin
        session.flush()
        self.outbox.contact_changed(session, customer.id)
        self.outbox.event(session, customer.id, EventType.PIN_CHANGED, {"pin": pin})
        return pin

    # points ------------------------------------------------------------------------------

    def post_transaction(
        self,
        session: Session,
        customer: Customer | int,
        points: int,
        reason: str,
        *,
        reference: str | None = None,
        expires_on: date | None = None,
        now: datetime | None = None,
        system: bool = False,
    ) -> tuple[Entry, bool]:
        """Credit (points > 0) or debit (points < 0) a customer.

        Returns the entry and whether it is new: a ``reference`` seen before for this customer
        returns the earlier entry, so a retried request never credits twice. Only pointbridge's
        own jobs (``system``) may use its references (``is_system_reference``). A refusal
        writes nothing.

        The ledger row comes first, with ``ON CONFLICT DO NOTHING`` on the reference: a second
        request with the same reference waits there until the first commits (PostgreSQL;
        SQLite's writers are serialized anyway) and then writes nothing, so the balance is
        only changed by the request whose entry was written. The balance changes in one
        guarded UPDATE, which also locks the customer until commit: the lots are read under
        that lock. No customer row is read, and no ORM object is loaded; given one
        (``customer``, else its id), its balance and last change are kept equal to what was
        written.
        """
        _check_transaction(points, reason, reference, expires_on, system)
        customer_id = customer if isinstance(customer, int) else customer.id
        now = now or datetime.now(UTC)
        if points > 0 and expires_on is None and self.settings.points_validity_days:
            expires_on = now.date() + timedelta(days=self.settings.points_validity_days)
        entry_id = session.execute(
            _INSERT_ENTRY[session.get_bind().dialect.name],
            {
                "customer_id": customer_id,
                "points": points,
                "reason": reason,
                "reference": reference,
                "expires_on": expires_on,
                "now": now,
            },
        ).scalar_one_or_none()
        if entry_id is None:
            earlier = self._replayed(session, customer_id, reference, points, reason)
            if isinstance(customer, Customer):
                set_committed_value(customer, "balance", earlier.balance)
            return earlier, False
        balance = session.execute(
            _ADD_TO_BALANCE, {"customer_id": customer_id, "points": points, "now": now}
        ).scalar_one_or_none()
        if balance is None:
            # The entry is this transaction's own, seen by nobody: gone, it leaves the
            # transaction as it was for a caller that goes on after the refusal.
            session.execute(delete(LEDGER).where(LEDGER.c.id == entry_id))
            current = session.scalar(
                select(CUSTOMERS.c.balance).where(CUSTOMERS.c.id == customer_id)
            )
            raise _insufficient(current or 0, points)
        if points > 0:
            session.execute(
                _INSERT_LOT,
                {
                    "customer_id": customer_id,
                    "entry_id": entry_id,
                    "points": points,
                    "remaining": points,
                    "expires_on": expires_on,
                },
            )
        else:
            _consume_lots(session, customer_id, -points)
        self.outbox.changed(
            session,
            customer_id,
            EventType.CREDIT_CHANGED,
            {"points": points, "balance": balance, "reason": reason},
        )
        if isinstance(customer, Customer):
            for key, value in (
                ("balance", balance),
                ("last_change_at", now),
                ("last_change_points", points),
                ("updated_at", now),
            ):
                set_committed_value(customer, key, value)
        entry = Entry(entry_id, customer_id, points, reason, reference, expires_on, now, balance)
        return entry, True

    def _replayed(
        self,
        session: Session,
        customer_id: int,
        reference: str | None,
        points: int,
        reason: str,
    ) -> Entry:
        """The earlier entry with ``reference``, which is why none was written; without one,
        the customer does not exist (the entry is written from the customer row)."""
        earlier = None
        if reference is not None:
            earlier = session.execute(
                select(*_ENTRY_COLUMNS, CUSTOMERS.c.balance)
                .join_from(LEDGER, CUSTOMERS)
                .where(LEDGER.c.customer_id == customer_id, LEDGER.c.reference == reference)
            ).first()
        if earlier is None:
            raise CustomerNotFound(f"No customer with id {customer_id}.", id=customer_id)
        entry = Entry(*earlier)
        if entry.points != points or entry.reason != reason:
            raise Conflict(
                f"Reference {reference!r} was already used for {entry.points} points "
                f"({entry.reason}); use a new reference for a new transaction.",
                reference=reference,
            )
        return entry

    def expire_lots(
        self, session: Session, customer_ids: Sequence[int], day: date
    ) -> dict[int, int]:
        """Expire what ``customer_ids`` have left in lots due on or before ``day``: one
        ``expiration:<day>`` debit each, dated midnight UTC of ``day``. Returns the points
        taken per customer, in id order.

        The customers are locked before their lots are read: a live debit takes from the same
        lots under the same lock, held until it commits, so the sums are the lots as they are
        now; another run of the same day waits here, then finds nothing due. A debit never
        takes more than the balance (which would break its CHECK and stop the whole page).
        """
        balances = dict(session.execute(_LOCK_CUSTOMERS, {"ids": list(customer_ids)}).all())
        due = due_points(session, list(balances), day)
        debits = {
            customer_id: min(points, balances[customer_id])
            for customer_id, points in sorted(due.items())
            if balances[customer_id]
        }
        at = datetime.combine(day, time(0), tzinfo=UTC)
        after = self.post_debits(
            session, debits, EXPIRATION_REASON, reference=expiration_reference(day), now=at
        )
        return {customer_id: debits[customer_id] for customer_id in sorted(after)}

    def post_debits(
        self,
        session: Session,
        debits: Mapping[int, int],
        reason: str,
        *,
        reference: str,
        now: datetime,
    ) -> dict[int, int]:
        """Take ``debits[customer_id]`` points from each customer under one ``reference`` (a
        job's own: system references are allowed), as ``post_transaction`` would one by one,
        in a few statements for the whole set: the ledger rows, the guarded balances, the lots
        (earliest expiry first), the outbox rows. Returns the balance after of each customer
        debited.

        A customer with an entry under ``reference`` already is skipped (a job run twice
        debits once), and so is one whose balance does not cover the debit: its entry is
        removed again, as ``post_transaction`` refuses. A debit that depends on the lots must
        read them under the customers' row locks (``expire_lots``).
        """
        for points in debits.values():
            _check_transaction(-points, reason, reference, None, system=True)
        if not debits:
            return {}
        written = (
            session.execute(
                _INSERT_ENTRIES[session.get_bind().dialect.name],
                [
                    {
                        "customer_id": customer_id,
                        "points": -points,
                        "reason": reason,
                        "reference": reference,
                        "expires_on": None,
                        "created_at": now,
                    }
                    for customer_id, points in debits.items()
                ],
            )
            .scalars()
            .all()
        )
        if not written:
            return {}
        balances = dict(
            session.execute(
                _TAKE_ENTRIES_FROM_BALANCES, {"reference": reference, "ids": written}
            ).all()
        )
        if refused := [customer_id for customer_id in written if customer_id not in balances]:
            session.execute(
                delete(LEDGER).where(
                    LEDGER.c.reference == reference, LEDGER.c.customer_id.in_(refused)
                )
            )
        if not balances:
            return {}
        debited = sorted(balances)
        session.execute(_TAKE_ENTRIES_FROM_LOTS, {"reference": reference, "ids": debited})
        self.outbox.contacts_changed(session, debited)
        self.outbox.events(
            session,
            EventType.CREDIT_CHANGED,
            [
                (
                    customer_id,
                    {
                        "points": -debits[customer_id],
                        "balance": balances[customer_id],
                        "reason": reason,
                    },
                )
                for customer_id in debited
            ],
        )
        return balances


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger entry as written (or found again, for a replayed reference) and the
    customer's balance after it."""

    id: int
    customer_id: int
    points: int
    reason: str
    reference: str | None
    expires_on: date | None
    created_at: datetime
    balance: int


_ENTRY_COLUMNS = (
    LEDGER.c.id,
    LEDGER.c.customer_id,
    LEDGER.c.points,
    LEDGER.c.reason,
    LEDGER.c.reference,
    LEDGER.c.expires_on,
    LEDGER.c.created_at,
)


def _check_transaction(
    points: int, reason: str, reference: str | None, expires_on: date | None, system: bool
) -> None:
    if points == 0:
        raise LoyaltyError("points must not be 0.", field="points")
    if abs(points) > MAX_POINTS:
        raise LoyaltyError(
            f"points must be between -{MAX_POINTS:,} and {MAX_POINTS:,}.", field="points"
        )
    if not REASON_PATTERN.fullmatch(reason):
        raise LoyaltyError(
            "reason is a slug: lower-case letters, digits, '-' or '_' (e.g. order).",
            field="reason",
        )
    if points < 0 and expires_on is not None:
        raise LoyaltyError("expires_at applies to credits only.", field="expires_at")
    if reference is not None and not system and is_system_reference(reference):
        raise LoyaltyError(
            f"reference {reference!r} is reserved for pointbridge's own entries "
            "('import', 'expiration:…'); use another.",
            field="reference",
        )


# The statements of the points path, built once: building one costs more CPU than the
# database takes to run it.
_ENTRY_FROM_CUSTOMER = select(
    CUSTOMERS.c.id,
    bindparam("points", type_=LEDGER.c.points.type),
    bindparam("reason", type_=LEDGER.c.reason.type),
    bindparam("reference", type_=LEDGER.c.reference.type),
    bindparam("expires_on", type_=LEDGER.c.expires_on.type),
    bindparam("now", type_=LEDGER.c.created_at.type),
).where(CUSTOMERS.c.id == bindparam("customer_id"))
# ``INSERT … SELECT`` from the customer row: no row is written for a customer that does not
# exist, nor for a reference the customer has used, and the id of a written one comes back.
_INSERT_ENTRY = {
    name: dialect_insert(LEDGER)
    .from_select([column.key for column in _ENTRY_COLUMNS[1:]], _ENTRY_FROM_CUSTOMER)
    .on_conflict_do_nothing(index_elements=["customer_id", "reference"])
    .returning(LEDGER.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_ADD_TO_BALANCE = (
    update(CUSTOMERS)
    .where(
        CUSTOMERS.c.id == bindparam("customer_id"),
        CUSTOMERS.c.balance + bindparam("points") >= 0,
    )
    .values(
        balance=CUSTOMERS.c.balance + bindparam("points"),
        last_change_at=bindparam("now"),
        last_change_points=bindparam("points"),
        updated_at=bindparam("now"),
    )
    .returning(CUSTOMERS.c.balance)
)
_INSERT_LOT = insert(LOTS)
_OPEN_LOTS = (
    select(LOTS.c.id, LOTS.c.remaining)
    .where(LOTS.c.customer_id == bindparam("customer_id"), LOTS.c.remaining > 0)
    .order_by(LOTS.c.expires_on.is_(None), LOTS.c.expires_on, LOTS.c.id)
)
_TAKE_FROM_LOT = (
    update(LOTS).where(LOTS.c.id == bindparam("lot_id")).values(remaining=bindparam("remaining"))
)

# The set-based debits (``post_debits``, ``expire_lots``): one statement per step for a page of
# customers, each entry written under the job's reference and read back by reference.
_LOCK_CUSTOMERS = (
    select(CUSTOMERS.c.id, CUSTOMERS.c.balance)
    .where(CUSTOMERS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(CUSTOMERS.c.id)
    .with_for_update()
)
_DUE_POINTS = (
    select(LOTS.c.customer_id, func.sum(LOTS.c.remaining))
    .where(
        LOTS.c.customer_id.in_(bindparam("ids", expanding=True)),
        LOTS.c.remaining > 0,
        LOTS.c.expires_on <= bindparam("day", type_=LOTS.c.expires_on.type),
    )
    .group_by(LOTS.c.customer_id)
)
_INSERT_ENTRIES = {
    name: dialect_insert(LEDGER)
    .on_conflict_do_nothing(index_elements=["customer_id", "reference"])
    .returning(LEDGER.c.customer_id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_TAKE_ENTRIES_FROM_BALANCES = (
    update(CUSTOMERS)
    .where(
        # The ids on the entries' side, and only there: PostgreSQL then reads the entries by
        # their (customer, reference) index and each customer by its key. Without them it
        # scanned the whole ledger for the reference; with them on the customers' side as
        # well, it checked every customer against the whole list again.
        LEDGER.c.customer_id.in_(bindparam("ids", expanding=True)),
        LEDGER.c.reference == bindparam("reference"),
        LEDGER.c.customer_id == CUSTOMERS.c.id,
        CUSTOMERS.c.balance + LEDGER.c.points >= 0,
    )
    .values(
        balance=CUSTOMERS.c.balance + LEDGER.c.points,
        last_change_at=LEDGER.c.created_at,
        last_change_points=LEDGER.c.points,
    )
    .returning(CUSTOMERS.c.id, CUSTOMERS.c.balance)
)
_open = LOTS.alias("open_lot")
# Per open lot, the points its customer's debit still wants when this lot's turn comes: the
# debit less every earlier lot, in ``_OPEN_LOTS``'s order (earliest expiry first, none last).
_wanted = (
    select(
        _open.c.id,
        (
            -LEDGER.c.points
            - func.sum(_open.c.remaining).over(
                partition_by=_open.c.customer_id,
                order_by=(_open.c.expires_on.is_(None), _open.c.expires_on, _open.c.id),
            )
            + _open.c.remaining
        ).label("wanted"),
    )
    .join_from(
        _open,
        LEDGER,
        and_(
            LEDGER.c.customer_id == _open.c.customer_id,
            LEDGER.c.reference == bindparam("reference"),
        ),
    )
    # The ids on the entries' side only, as in ``_TAKE_ENTRIES_FROM_BALANCES``.
    .where(LEDGER.c.customer_id.in_(bindparam("ids", expanding=True)), _open.c.remaining > 0)
    .subquery("wanted")
)
_TAKE_ENTRIES_FROM_LOTS = (
    update(LOTS)
    .where(LOTS.c.id == _wanted.c.id, _wanted.c.wanted > 0)
    .values(
        remaining=case(
            (_wanted.c.wanted >= LOTS.c.remaining, 0), else_=LOTS.c.remaining - _wanted.c.wanted
        )
    )
)


def _insufficient(balance: int, points: int) -> InsufficientPoints:
    return InsufficientPoints(
        f"The balance is {balance} points; cannot take {-points}.", balance=balance
    )


def _consume_lots(session: Session, customer_id: int, points: int) -> None:
    """Take ``points`` from the lots that expire first; lots without expiry go last."""
    lots = session.execute(_OPEN_LOTS, {"customer_id": customer_id})
    taken: list[dict[str, int]] = []
    for lot_id, remaining in lots:
        if points == 0:
            break
        take = min(remaining, points)
        taken.append({"lot_id": lot_id, "remaining": remaining - take})
        points -= take
    session.execute(_TAKE_FROM_LOT, taken)
