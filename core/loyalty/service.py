"""The loyalty domain: customers, the points ledger, expiry lots and PINs.

Every change writes its ledger rows and its outbox rows in the caller's transaction, so either
both happen or neither does. The rules it applies are in ``rules``, its statements in
``ledger_sql``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NoReturn

from sqlalchemy import BigInteger, cast, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pointbridge.contract.events import EventType
from pointbridge.delivery.outbox import Outbox
from pointbridge.loyalty.ledger_sql import (
    ADD_TO_BALANCE,
    CUSTOMERS,
    ENTRY_AND_BALANCE,
    ENTRY_COLUMNS,
    INSERT_ENTRIES,
    INSERT_ENTRY,
    INSERT_LOT,
    LEDGER,
    LOCK_CUSTOMERS,
    TAKE_ENTRIES_FROM_BALANCES,
    TAKE_ENTRIES_FROM_LOTS,
    Entry,
    consume_lots,
    due_points,
)
from pointbridge.loyalty.milestones import Standing, rewards_reached, update_events
from pointbridge.loyalty.rules import (
    EXPIRATION_REASON,
    PIN_PATTERN,
    PROFILE_FIELDS,
    TIER_PROGRESS_FIELDS,
    Conflict,
    CustomerNotFound,
    LoyaltyError,
    check_transaction,
    expiration_reference,
    generate_pin,
    insufficient,
    normalize_email,
    referral_code,
)
from pointbridge.settings import Settings
from pointbridge.storage.models import Customer

# What a customer create or update (or an import) writes: the profile, and the tier progress
# the shop's tier data carries.
WRITABLE = (*PROFILE_FIELDS, *TIER_PROGRESS_FIELDS)


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


def _standing(customer: Customer) -> Standing:
    return Standing((customer.tier_id, customer.tier_name), customer.referrals or 0)


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
        profile = {key: values[key] for key in WRITABLE if key in values}
        customer = Customer(
            email=email,
            referral_code=referral_code(),
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
        # Locked and read again before the old tier and referral count are compared with the
        # new: on PostgreSQL, identical PATCHes at once each saw the old values and each sent
        # tier-changed / referral-completed.
        session.refresh(customer, with_for_update=True)
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
        before = _standing(customer)
        for key in WRITABLE:
            if key in values:
                setattr(customer, key, values[key])
        _flush_unique(session, customer.email, customer.external_id)
        self.outbox.contact_changed(session, customer.id)
        update_events(
            self.outbox,
            session,
            [(customer.id, before, _standing(customer))],
            self.settings.tier_order,
        )
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
        """Set the PIN (or generate one) and tell the platforms, while the customer is
        unregistered: a PIN is how an unregistered customer claims their points, and once
        registered the platforms' PIN field stays empty, so no event mails it either."""
        pin = generate_pin() if pin is None else pin
        if not PIN_PATTERN.fullmatch(pin):
            raise LoyaltyError("A PIN is 4 to 12 letters or digits.", field="pin")
        customer.pin = pin
        session.flush()
        if not customer.registered:
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
        check_transaction(points, reason, reference, expires_on, system)
        customer_id = customer if isinstance(customer, int) else customer.id
        now = now or datetime.now(UTC)
        if points > 0 and expires_on is None and self.settings.points_validity_days:
            expires_on = now.date() + timedelta(days=self.settings.points_validity_days)
        # The ORM session's own execute adds a third of the CPU of running these Core
        # statements on its connection, and has nothing to flush or load for them.
        connection = session.connection()
        values = {
            "customer_id": customer_id,
            "points": points,
            "reason": reason,
            "reference": reference,
            "expires_on": expires_on,
            "now": now,
        }
        # The entry, the balance and a credit's lot: in one statement on PostgreSQL (each
        # round trip costs both processes CPU), else one after another.
        in_one = connection.dialect.name == "postgresql"
        if in_one:
            written = connection.execute(ENTRY_AND_BALANCE, values).first()
            entry_id = None if written is None else written.id
        else:
            entry_id = connection.execute(INSERT_ENTRY["sqlite"], values).scalar_one_or_none()
        if entry_id is None:
            earlier = self._replayed(session, customer_id, reference, points, reason)
            if isinstance(customer, Customer):
                set_committed_value(customer, "balance", earlier.balance)
            return earlier, False
        if in_one:
            balance = written.balance
            if balance is None:
                self._refuse_overdraft(session, customer_id, entry_id, points)
        else:
            balance = self._move_balance(session, customer_id, entry_id, points, now)
        if points < 0:
            consume_lots(session, customer_id, -points)
        elif not in_one:
            self._add_lot(session, customer_id, entry_id, points, expires_on)
        self.outbox.changed(
            session,
            customer_id,
            EventType.CREDIT_CHANGED,
            {"points": points, "balance": balance, "reason": reason},
        )
        if points > 0:
            rewards_reached(self.outbox, session, [(customer_id, balance - points, balance)])
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

    @staticmethod
    def _add_lot(
        session: Session, customer_id: int, entry_id: int, points: int, expires_on: date | None
    ) -> None:
        """A credit's points become a lot of their own (a debit spends the oldest lots)."""
        session.connection().execute(
            INSERT_LOT,
            {
                "customer_id": customer_id,
                "entry_id": entry_id,
                "points": points,
                "remaining": points,
                "expires_on": expires_on,
            },
        )

    @staticmethod
    def _move_balance(
        session: Session, customer_id: int, entry_id: int, points: int, now: datetime
    ) -> int:
        """The balance after ``points``, changed in one guarded UPDATE; a debit it cannot
        cover removes the transaction's own entry and is refused."""
        balance = (
            session.connection()
            .execute(ADD_TO_BALANCE, {"customer_id": customer_id, "points": points, "now": now})
            .scalar_one_or_none()
        )
        if balance is None:
            Loyalty._refuse_overdraft(session, customer_id, entry_id, points)
        return int(balance)

    @staticmethod
    def _refuse_overdraft(
        session: Session, customer_id: int, entry_id: int, points: int
    ) -> NoReturn:
        """Refuse a debit the balance cannot cover. The entry is this transaction's own, seen
        by nobody: gone, it leaves the transaction as it was for a caller that goes on after
        the refusal."""
        session.execute(delete(LEDGER).where(LEDGER.c.id == entry_id))
        current = session.scalar(select(CUSTOMERS.c.balance).where(CUSTOMERS.c.id == customer_id))
        raise insufficient(current or 0, points)

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
            # The balance the first answer gave: the ledger's sum up to that entry (the
            # balance is the ledger's sum, which `ledger verify` checks), not the balance now.
            before = LEDGER.alias("before")
            balance_then = (
                select(cast(func.coalesce(func.sum(before.c.points), 0), BigInteger))
                .where(before.c.customer_id == customer_id, before.c.id <= LEDGER.c.id)
                .scalar_subquery()
            )
            earlier = session.execute(
                select(*ENTRY_COLUMNS, balance_then).where(
                    LEDGER.c.customer_id == customer_id, LEDGER.c.reference == reference
                )
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
        balances = dict(session.execute(LOCK_CUSTOMERS, {"ids": list(customer_ids)}).all())
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
        taken = {customer_id: debits[customer_id] for customer_id in sorted(after)}
        self.outbox.events(
            session,
            EventType.POINTS_EXPIRED,
            [(c, {"points": points, "balance": after[c]}) for c, points in taken.items()],
        )
        return taken

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
            check_transaction(-points, reason, reference, None, system=True)
        if not debits:
            return {}
        written = (
            session.execute(
                INSERT_ENTRIES[session.get_bind().dialect.name],
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
                TAKE_ENTRIES_FROM_BALANCES, {"reference": reference, "ids": written}
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
        session.execute(TAKE_ENTRIES_FROM_LOTS, {"reference": reference, "ids": debited})
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
