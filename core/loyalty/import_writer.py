"""Writing one batch of checked customers in one transaction, with a handful of set-based
statements: the changed profiles updated, the new customers inserted with ids reserved for them
(``reserve_ids``), the opening balances as ledger entries and lots (reference ``import``:
credited once, however often a file is imported), and one contact update per changed customer.
Unchanged rows write nothing. The CSV import and ``POST /api/customers/bulk`` both write
through here.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pointbridge.contract.events import EventType
from pointbridge.loyalty.import_rows import Row, RowError
from pointbridge.loyalty.milestones import (
    Standing,
    keep_referral_highs,
    rewards_reached,
    update_events,
)
from pointbridge.loyalty.rules import IMPORT_REFERENCE, Conflict, referral_codes
from pointbridge.loyalty.service import WRITABLE, Loyalty
from pointbridge.storage.db import Database
from pointbridge.storage.models import Customer, LedgerEntry, PointLot
from pointbridge.storage.sql import among, executemany, fetch_rows, insert_rows, reserve_ids

# The columns an import writes, in the order of the upsert's parameters.
WRITTEN = (*WRITABLE, "pin")
NEW_CUSTOMER = {
    "registered": False,
    "marketing_consent": False,
    "missions": 0,
    "rewards": 0,
    "referrals": 0,
    "pin": None,
}
CUSTOMERS = Customer.__table__


class BatchRefused(Conflict):
    """A batch could not be written, and nothing of it was; ``then`` says what to do."""

    def __init__(self, message: str, *, then: str) -> None:
        super().__init__(message)
        self.then = then


class Outcome(NamedTuple):
    """What became of one customer of a batch: created, updated, unchanged or error (a
    tuple: a batch makes thousands)."""

    status: str
    customer_id: int | None
    error: RowError | None = None


class _CreatedMeanwhile(Exception):
    """A customer the batch was to create exists now: another request created it."""


# A batch re-read this often still meeting new customers is being raced on purpose.
RACED_ATTEMPTS = 3


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    credited: int = 0
    skipped: int = 0
    resumed_after_line: int = 0
    batches: int = 0


class CustomerWriter:
    """Writes batches of checked rows: one transaction and a few set-based statements each."""

    def __init__(self, db: Database, loyalty: Loyalty, *, events: bool = False) -> None:
        self.db = db
        self.loyalty = loyalty
        self.events = events
        self._lock = db.engine.dialect.name == "postgresql"

    def write(self, rows: list[Row], result: ImportResult) -> dict[str, Outcome]:
        """Write checked rows (each customer once) in one transaction: what became of each,
        by e-mail. A row whose external id is another customer's is left out, as skipped."""
        # A later row of the same e-mail wins, as it would had the rows come one by one.
        latest = {row.values["email"]: row for row in rows if row.values}
        try:
            for _ in range(RACED_ATTEMPTS):
                counted = dataclasses.replace(result)
                try:
                    with self.db.transaction() as session:
                        outcomes = self._write(session, latest, counted)
                except _CreatedMeanwhile:
                    continue  # read the batch's customers again, the new ones included
                for name, value in dataclasses.asdict(counted).items():
                    setattr(result, name, value)
                return outcomes
            raise BatchRefused(
                "other requests kept creating these customers while they were imported",
                then="run again",
            )
        except IntegrityError:
            # Only a race gets here: the external ids were checked in the same transaction.
            raise BatchRefused(
                "an external_id belongs to another customer (or is in the file twice)",
                then="fix the file and run again",
            ) from None

    def _write(
        self, session: Session, latest: dict[str, Row], result: ImportResult
    ) -> dict[str, Outcome]:
        connection = session.connection()
        now = datetime.now(UTC)
        clashes = external_id_clashes(connection, list(latest.values()))
        outcomes = {email: Outcome("error", None, error) for email, error in clashes.items()}
        result.skipped += len(clashes)
        latest = {email: row for email, row in latest.items() if email not in clashes}
        existing = self._existing(connection, sorted(latest))
        updates: list[dict[str, Any]] = []
        inserts: list[dict[str, Any]] = []
        pins: dict[str, str] = {}
        statuses: dict[str, str] = {}
        codes = iter(referral_codes(len(latest) - len(existing)))
        for email, row in sorted(latest.items()):
            values = row.values or {}
            before = existing.get(email)
            # A new dict of the row's values over what was there (before's id among them).
            merged = _merged(values, before)
            pin = merged["pin"]
            # A registered customer's PIN is kept but mailed nowhere (Loyalty.set_pin).
            changed_pin = pin is not None and (before is None or before["pin"] != pin)
            if changed_pin and not merged["registered"]:
                pins[email] = pin
            if before is None:
                statuses[email] = "created"
                # The opening balance goes in with the row (and in the ledger by _credit).
                merged["referral_code"] = next(codes)
                merged["points"] = values.get("points") or 0
                inserts.append(merged)
            elif _written(merged) != _written(before):
                statuses[email] = "updated"
                updates.append(merged)
            else:
                statuses[email] = "unchanged"
        self._update(connection, updates, now)
        ids = {email: row["id"] for email, row in existing.items()}
        ids.update(self._insert_new(connection, inserts, now))
        credited = self._credit(connection, latest, ids, existing, now)
        result.credited += len(credited)
        changed = {ids[w["email"]] for w in (*updates, *inserts)} | set(credited)
        self.loyalty.outbox.contacts_changed(session, sorted(changed))
        standings = [(u["id"], _standing(existing[u["email"]]), _standing(u)) for u in updates]
        if self.events:
            self._queue_events(session, ids, pins, credited, standings)
        else:
            # Quiet, but a count it lowers is still one the customer had: raised back later,
            # it completes no referral.
            keep_referral_highs(session, standings)
        counted: Counter[str] = Counter()
        for email, status in statuses.items():
            if status == "unchanged" and ids[email] in credited:
                status = "updated"  # the opening balance is a change of its own
            counted[status] += 1
            outcomes[email] = Outcome(status, ids[email])
        for status, count in counted.items():
            setattr(result, status, getattr(result, status) + count)
        return outcomes

    def _existing(self, connection: Connection, emails: list[str]) -> dict[str, dict[str, Any]]:
        statement = select(
            CUSTOMERS.c.id,
            CUSTOMERS.c.balance,
            CUSTOMERS.c.referral_code,
            *(CUSTOMERS.c[c] for c in WRITTEN),
        ).where(_among_emails(connection, emails))
        if self._lock:
            # Read what is there and write over it in one step: a REST change in between waits.
            statement = statement.with_for_update()
        names = [column.key for column in statement.selected_columns]
        email = names.index("email")
        rows = fetch_rows(connection, statement)
        return {row[email]: dict(zip(names, row, strict=True)) for row in rows}

    @staticmethod
    def _update(connection: Connection, updates: list[dict[str, Any]], now: datetime) -> None:
        """Write the changed profiles of customers read (and locked) before."""
        columns = (*WRITTEN, "updated_at")
        executemany(
            connection,
            f"UPDATE customer SET {', '.join(f'{c} = {{}}' for c in columns)} WHERE id = {{}}",
            [CUSTOMERS.c[c] for c in (*columns, "id")],
            [(*_written(u), now, u["id"]) for u in updates],
        )

    @staticmethod
    def _insert_new(
        connection: Connection, inserts: list[dict[str, Any]], now: datetime
    ) -> dict[str, int]:
        """Insert the batch's new customers, with their opening balances; their ids by e-mail.

        One that another request created meanwhile (a REST call between the read and this
        write, on PostgreSQL) is not written over with a new customer's defaults: the batch is
        read and merged again (``_CreatedMeanwhile``).
        """
        if not inserts:
            return {}
        ids = reserve_ids(connection, CUSTOMERS, len(inserts))
        columns = (
            "id",
            *WRITTEN,
            "referral_code",
            "balance",
            "last_change_at",
            "last_change_points",
        )
        inserted = insert_rows(
            connection,
            CUSTOMERS,
            columns,
            [
                (
                    customer_id,
                    *_written(w),
                    w["referral_code"],
                    w["points"],
                    now if w["points"] else None,
                    w["points"] or None,
                )
                for customer_id, w in zip(ids, inserts, strict=True)
            ],
            constants={"created_at": now, "updated_at": now},
            unless_exists="email",
        )
        if inserted != len(inserts):
            raise _CreatedMeanwhile
        return {w["email"]: customer_id for customer_id, w in zip(ids, inserts, strict=True)}

    def _credit(
        self,
        connection: Connection,
        latest: dict[str, Row],
        ids: dict[str, int],
        existing: dict[str, dict[str, Any]],
        now: datetime,
    ) -> dict[int, tuple[int, int]]:
        """Credit each opening balance not credited before: customer id -> (points, balance).
        A new customer's balance is in its row already; an existing one's is added to."""
        days = self.loyalty.settings.points_validity_days
        default_expiry = now.date() + timedelta(days=days) if days else None
        wanted = {
            ids[email]: (row.values["points"], row.values.get("expires_at") or default_expiry)
            for email, row in latest.items()
            if row.values and row.values.get("points")
        }
        # Only a customer who was there before the batch can have been credited already.
        known = [ids[email] for email in existing if ids[email] in wanted]
        done = _credited_before(connection, known)
        # The customers are this transaction's (new) or locked by it (read FOR UPDATE on
        # PostgreSQL; SQLite has one writer): nobody credits them between that read and this.
        credits = {c: wanted[c] for c in sorted(wanted) if c not in done}
        if not credits:
            return {}
        _write_entries(connection, credits, now)
        before = {ids[email]: row["balance"] for email, row in existing.items()}
        raised = [(points, c) for c, (points, _) in credits.items() if c in before]
        executemany(
            connection,
            "UPDATE customer SET balance = balance + {}, last_change_at = {}, "
            "last_change_points = {}, updated_at = {} WHERE id = {}",
            [CUSTOMERS.c[c] for c in ("balance", "last_change_at", "last_change_points",
                                      "updated_at", "id")],
            [(points, now, points, now, c) for points, c in raised],
        )  # fmt: skip
        return {c: (points, before.get(c, 0) + points) for c, (points, _) in credits.items()}

    def _queue_events(
        self,
        session: Session,
        ids: dict[str, int],
        pins: dict[str, str],
        credited: dict[int, tuple[int, int]],
        standings: list[tuple[int, Standing, Standing]],
    ) -> None:
        """The events the REST API queues for the same changes, in its order: a PATCH's
        (``standings`` of the customers updated, before and after), then the opening
        balance's as a credit's. A customer created is a POST: no tier or referral event."""
        outbox = self.loyalty.outbox
        update_events(outbox, session, standings, self.loyalty.settings.tier_order)
        outbox.events(
            session,
            EventType.PIN_CHANGED,
            [(ids[email], {"pin": pin}) for email, pin in pins.items()],
        )
        outbox.events(
            session,
            EventType.CREDIT_CHANGED,
            [
                (customer_id, {"points": points, "balance": balance, "reason": IMPORT_REFERENCE})
                for customer_id, (points, balance) in credited.items()
            ],
        )
        rewards_reached(
            outbox,
            session,
            [(c, balance - points, balance) for c, (points, balance) in credited.items()],
        )


def _credited_before(connection: Connection, customer_ids: list[int]) -> set[int]:
    """Those of the customers whose opening balance an earlier import credited."""
    if not customer_ids:
        return set()
    found = connection.scalars(
        select(LedgerEntry.customer_id).where(
            LedgerEntry.reference == IMPORT_REFERENCE,
            among(LedgerEntry.customer_id, sorted(customer_ids)),
        )
    )
    return set(found)


def _write_entries(
    connection: Connection, credits: dict[int, tuple[int, date | None]], now: datetime
) -> None:
    """The opening balances (customer id -> points, expiry) as ledger entries and their lots."""
    entries = LedgerEntry.__table__
    entry_ids = reserve_ids(connection, entries, len(credits))
    insert_rows(
        connection,
        entries,
        ("id", "customer_id", "points", "expires_on"),
        [
            (entry_id, c, points, expires_on)
            for entry_id, (c, (points, expires_on)) in zip(entry_ids, credits.items(), strict=True)
        ],
        constants={"reason": IMPORT_REFERENCE, "reference": IMPORT_REFERENCE, "created_at": now},
    )
    # Each entry's lot, from the entries just written: one statement, no ids read back.
    connection.execute(
        insert(PointLot.__table__).from_select(
            ["customer_id", "entry_id", "points", "remaining", "expires_on"],
            select(
                entries.c.customer_id,
                entries.c.id,
                entries.c.points,
                entries.c.points,
                entries.c.expires_on,
            ).where(among(entries.c.id, entry_ids)),
        )
    )


def _among_emails(connection: Connection, emails: list[str]) -> ColumnElement[bool]:
    """``customer.email IN emails`` with the e-mails as one bound value (SQLAlchemy's IN
    binds one parameter each, and renders them into the statement every time)."""
    if connection.dialect.name == "postgresql":
        return CUSTOMERS.c.email == any_(bindparam(None, emails, type_=ARRAY(String)))
    values = select(literal_column("value")).select_from(func.json_each(json.dumps(emails)))
    return CUSTOMERS.c.email.in_(values)


def external_id_clashes(connection: Connection, rows: Sequence[Row]) -> dict[str, RowError]:
    """The rows whose external id belongs to a customer with another e-mail, by e-mail: the
    REST API's 409, found before anything is written."""
    wanted = {
        row.values["external_id"]: row
        for row in rows
        if row.values and row.values.get("external_id") is not None
    }
    if not wanted:
        return {}
    owners = connection.execute(
        select(CUSTOMERS.c.external_id, CUSTOMERS.c.email).where(
            CUSTOMERS.c.external_id.in_(sorted(wanted))
        )
    )
    clashes = {}
    for external_id, owner in owners:
        row = wanted[external_id]
        email = (row.values or {})["email"]
        if email != owner:
            message = f"Another customer has external id {external_id}."
            clashes[email] = RowError(row.line, "external_id", message)
    return clashes


def _merged(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """The customer's columns after the row: the row's values over what was there (and
    the row's opening balance, which no written column takes)."""
    return {**(before if before is not None else _NEW_ROW), **values}


def _standing(columns: dict[str, Any]) -> Standing:
    return Standing((columns["tier_id"], columns["tier_name"]), columns["referrals"])


_NEW_ROW = {c: NEW_CUSTOMER.get(c) for c in WRITTEN}
# The written columns of a row as one tuple: compared, or bound, in one call in C.
_written = operator.itemgetter(*WRITTEN)
