"""Customer import from CSV: check the whole file, then load it in set-based batches.

The check reads the file once, streamed, and judges every row by the schema the REST API uses
(``CustomerImport``), so a file either goes in as a whole or is refused with every bad cell
named. The load reads it again and writes each batch of rows in one transaction with a handful
of statements: an upsert of the customers that are new or changed, the opening balances as
ledger entries and lots (reference ``import``: credited once, however often the file is
imported), and one contact update per changed customer. Unchanged rows write nothing.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from marshmallow import ValidationError
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pointbridge.customer_schema import CustomerImport
from pointbridge.db import Database
from pointbridge.events import EventType
from pointbridge.loyalty import (
    IMPORT_REFERENCE,
    PROFILE_FIELDS,
    Loyalty,
    LoyaltyError,
    _referral_code,
)
from pointbridge.models import Customer, LedgerEntry, PointLot

BATCH_SIZE = 5_000
COLUMNS = tuple(CustomerImport().fields)
# An empty cell clears these; an empty cell of any other column leaves the value as it is.
CLEARABLE = ("external_id", "first_name", "last_name", "tier_id", "tier_name")
# The columns an import writes, in the order of the upsert's parameters.
WRITTEN = (*PROFILE_FIELDS, "pin")
NEW_CUSTOMER = {"registered": False, "missions": 0, "rewards": 0, "referrals": 0, "pin": None}
CUSTOMERS = Customer.__table__


class ImportRefused(LoyaltyError):
    """The file cannot be imported as it is; the message says why, and nothing changed."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class Row:
    """One data row of the file: its values as the schema loaded them, or what is wrong."""

    line: int
    values: dict[str, Any] | None
    errors: tuple[RowError, ...] = ()


@dataclass
class CheckResult:
    rows: int = 0
    bad_rows: int = 0
    fingerprint: str = ""


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


# reading ----------------------------------------------------------------------------------


def _decoded_lines(source: IO[bytes], undecodable: dict[int, str], digest: Any) -> Iterator[str]:
    """The file's lines as text; a line that is not UTF-8 is noted (and decoded with U+FFFD
    in place of the bad bytes, so its row is still read and reported as a whole)."""
    for number, raw in enumerate(source, start=1):
        digest.update(raw)
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            undecodable[number] = (
                f"Not UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line; "
                "save the file as UTF-8."
            )
            yield raw.decode("utf-8", errors="replace")


def _header(reader: Iterator[list[str]]) -> list[str]:
    header = [name.strip().lower() for name in next(reader, [])]
    if "email" not in header:
        raise ImportRefused("The CSV needs a header line with an 'email' column.")
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise ImportRefused(
            f"The header names {', '.join(repeated)} more than once: keep one column each."
        )
    return header


class _SeenOnce:
    """Whether a customer's e-mail or external id was already on an earlier line. A file that
    names a customer twice has no one right answer (which row's points? which profile?), so
    the second line is a bad row. 8-byte digests keep it near 60 bytes a customer."""

    UNIQUE = ("email", "external_id")

    def __init__(self) -> None:
        self._seen: dict[str, set[int]] = {column: set() for column in self.UNIQUE}

    def repeated(self, row: Row) -> Row:
        errors = []
        for column in self.UNIQUE:
            value = (row.values or {}).get(column)
            if value is None:
                continue
            key = int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")
            if key in self._seen[column]:
                message = f"{column} {value} is on an earlier line too: each customer once."
                errors.append(RowError(row.line, column, message))
            self._seen[column].add(key)
        return Row(row.line, None, tuple(errors)) if errors else row


def _cells_to_data(header: list[str], cells: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=True):
        if name not in COLUMNS:
            continue
        value = cell.strip()
        if value or name == "email":
            data[name] = value
        elif name in CLEARABLE:
            data[name] = None
    return data


def _flatten(line: int, messages: dict[str, Any]) -> tuple[RowError, ...]:
    return tuple(
        RowError(line, "" if column == "_schema" else column, message)
        for column, found in messages.items()
        for message in (found if isinstance(found, list) else [str(found)])
    )


def read_rows(source: IO[bytes], digest: Any = None) -> Iterator[Row]:
    """Every data row of the CSV in ``source``, judged by ``CustomerImport``; lines start at
    1 with the header, as an editor numbers them. ``digest`` (a hashlib object) sees every
    byte read."""
    undecodable: dict[int, str] = {}
    reader = csv.reader(_decoded_lines(source, undecodable, digest or hashlib.sha256()))
    header = _header(reader)
    schema = CustomerImport()
    seen = _SeenOnce()
    consumed = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(reader.line_num, None, (RowError(reader.line_num, "", f"Not CSV: {exc}."),))
            consumed = reader.line_num
            continue
        line, consumed = consumed + 1, reader.line_num
        if cells:
            row = _judge(schema, header, cells, line, _undecoded(undecodable, line, consumed))
            yield seen.repeated(row) if row.values else row


def _undecoded(undecodable: dict[int, str], first: int, last: int) -> str | None:
    return next((undecodable.pop(n) for n in range(first, last + 1) if n in undecodable), None)


def _judge(
    schema: CustomerImport, header: list[str], cells: list[str], line: int, undecoded: str | None
) -> Row:
    if undecoded is not None:
        column = next(
            (name for name, cell in zip(header, cells, strict=False) if "\ufffd" in cell), ""
        )
        return Row(line, None, (RowError(line, column, undecoded),))
    if len(cells) != len(header):
        message = f"The row has {len(cells)} fields; the header has {len(header)}."
        return Row(line, None, (RowError(line, "", message),))
    try:
        return Row(line, schema.load(_cells_to_data(header, cells)))
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
        return Row(line, None, _flatten(line, messages))


# phase 1: the check ------------------------------------------------------------------------


def check_file(source: IO[bytes], on_error: Callable[[RowError], None]) -> CheckResult:
    """Read the whole file and call ``on_error`` for each problem; nothing is written."""
    result = CheckResult()
    digest = hashlib.sha256()
    for row in read_rows(source, digest):
        result.rows += 1
        if row.errors:
            result.bad_rows += 1
            for error in row.errors:
                on_error(error)
    result.fingerprint = digest.hexdigest()
    return result


# phase 2: the load -------------------------------------------------------------------------


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class ResumePoint:
    """The last line of the last committed batch, kept in the instance folder per file content.

    It is written after each commit: a crash between the two repeats one batch, which changes
    nothing the second time (the upsert and the ``import`` reference are idempotent).
    """

    def __init__(self, instance_path: Path, fingerprint: str) -> None:
        self.path = instance_path / "imports" / f"{fingerprint}.json"

    def read(self) -> int:
        try:
            return int(json.loads(self.path.read_text())["line"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def save(self, line: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"line": line}))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class CustomerLoader:
    """Loads checked rows in batches: one transaction and a few set-based statements each."""

    def __init__(self, db: Database, loyalty: Loyalty, *, events: bool = False) -> None:
        self.db = db
        self.loyalty = loyalty
        self.events = events
        dialect = db.engine.dialect.name
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self._lock = dialect == "postgresql"

    def load(
        self,
        source: IO[bytes],
        fingerprint: str,
        *,
        resume: bool = False,
        batch_size: int = BATCH_SIZE,
        on_batch: Callable[[ImportResult], None] | None = None,
    ) -> ImportResult:
        """Import the valid rows of ``source`` (whose ``check_file`` gave ``fingerprint``);
        invalid rows are counted as skipped. ``resume`` starts after the last batch a previous
        run of the same file committed."""
        point = ResumePoint(self.loyalty.settings.instance_path, fingerprint)
        result = ImportResult(resumed_after_line=point.read() if resume else 0)
        rows = (row for row in read_rows(source) if row.line > result.resumed_after_line)
        for batch in _batches(rows, batch_size):
            valid = [row for row in batch if row.values is not None]
            result.skipped += len(batch) - len(valid)
            if valid:
                self._load_batch(valid, result)
            point.save(batch[-1].line)
            result.batches += 1
            if on_batch:
                on_batch(result)
        point.clear()
        return result

    def _load_batch(self, rows: list[Row], result: ImportResult) -> None:
        # A later row of the same e-mail wins, as it would had the rows come one by one.
        latest = {row.values["email"]: row for row in rows if row.values}
        try:
            for _ in range(RACED_ATTEMPTS):
                counted = dataclasses.replace(result)
                try:
                    with self.db.transaction() as session:
                        self._write(session, latest, counted)
                except _CreatedMeanwhile:
                    continue  # read the batch's customers again, the new ones included
                for name, value in dataclasses.asdict(counted).items():
                    setattr(result, name, value)
                return
            first, last = rows[0].line, rows[-1].line
            raise ImportRefused(
                f"Lines {first}-{last}: other requests kept creating these customers while "
                f"they were imported. The batches before line {first} are imported; run again "
                "with --resume."
            )
        except IntegrityError:
            first, last = rows[0].line, rows[-1].line
            raise ImportRefused(
                f"Lines {first}-{last}: an external_id belongs to another customer (or is in "
                f"the file twice). The batches before line {first} are imported; fix the file "
                "and run again with --resume."
            ) from None

    def _write(self, session: Session, latest: dict[str, Row], result: ImportResult) -> None:
        connection = session.connection()
        now = datetime.now(UTC)
        existing = self._existing(connection, sorted(latest))
        writes: list[dict[str, Any]] = []
        pins: dict[str, str] = {}
        for email, row in sorted(latest.items()):
            values = row.values or {}
            before = existing.get(email)
            merged = _merged(values, before)
            if before is not None and all(merged[c] == before[c] for c in WRITTEN):
                result.unchanged += 1
                continue
            code = before["referral_code"] if before else _referral_code()
            writes.append({**merged, "referral_code": code, "now": now})
            if merged["pin"] is not None and (before is None or before["pin"] != merged["pin"]):
                pins[email] = merged["pin"]
            if before is None:
                result.created += 1
            else:
                result.updated += 1
        ids = {email: row["id"] for email, row in existing.items()}
        ids.update(self._upsert(connection, writes, existing))
        credited = self._credit(connection, latest, ids, existing, now)
        result.credited += len(credited)
        changed = {ids[w["email"]] for w in writes} | set(credited)
        self.loyalty.outbox.contacts_changed(session, sorted(changed))
        if self.events:
            self._queue_events(session, ids, pins, credited)

    def _existing(self, connection: Connection, emails: list[str]) -> dict[str, dict[str, Any]]:
        statement = select(
            CUSTOMERS.c.id,
            CUSTOMERS.c.balance,
            CUSTOMERS.c.referral_code,
            *(CUSTOMERS.c[c] for c in WRITTEN),
        ).where(CUSTOMERS.c.email.in_(emails))
        if self._lock:
            # Read what is there and write over it in one step: a REST change in between waits.
            statement = statement.with_for_update()
        return {row.email: dict(row._mapping) for row in connection.execute(statement)}

    def _upsert(
        self,
        connection: Connection,
        writes: list[dict[str, Any]],
        existing: dict[str, dict[str, Any]],
    ) -> dict[str, int]:
        """Write the batch's new and changed customers; returns their ids by e-mail.

        Customers read (and locked) before are updated; the others are inserted only if they
        still do not exist. One that another request created meanwhile (a REST call between
        the read and this write) is not written over with a new customer's defaults: the
        batch is read and merged again (``_CreatedMeanwhile``).
        """
        if not writes:
            return {}
        insert = self._insert(CUSTOMERS).values(
            {c: bindparam(c) for c in WRITTEN}
            | {
                "referral_code": bindparam("referral_code"),
                "balance": 0,
                "created_at": bindparam("now"),
                "updated_at": bindparam("now"),
            }
        )
        updates = [w for w in writes if w["email"] in existing]
        inserts = [w for w in writes if w["email"] not in existing]
        ids: dict[str, int] = {}
        if updates:
            statement = insert.on_conflict_do_update(
                index_elements=["email"],
                set_={c: insert.excluded[c] for c in (*WRITTEN, "updated_at")},
            ).returning(CUSTOMERS.c.id, CUSTOMERS.c.email)
            ids.update((row.email, row.id) for row in connection.execute(statement, updates))
        if inserts:
            statement = insert.on_conflict_do_nothing(index_elements=["email"]).returning(
                CUSTOMERS.c.id, CUSTOMERS.c.email
            )
            created = {row.email: row.id for row in connection.execute(statement, inserts)}
            if len(created) < len(inserts):
                raise _CreatedMeanwhile
            ids.update(created)
        return ids

    def _credit(
        self,
        connection: Connection,
        latest: dict[str, Row],
        ids: dict[str, int],
        existing: dict[str, dict[str, Any]],
        now: datetime,
    ) -> dict[int, tuple[int, int]]:
        """Credit each opening balance not credited before: customer id -> (points, balance)."""
        wanted = {
            ids[email]: (row.values["points"], self._expiry(row.values, now))
            for email, row in latest.items()
            if row.values and row.values.get("points")
        }
        if not wanted:
            return {}
        done = set(
            connection.scalars(
                select(LedgerEntry.customer_id).where(
                    LedgerEntry.reference == IMPORT_REFERENCE,
                    LedgerEntry.customer_id.in_(sorted(wanted)),
                )
            )
        )
        credits = [
            {
                "customer_id": customer_id,
                "points": points,
                "reason": IMPORT_REFERENCE,
                "reference": IMPORT_REFERENCE,
                "expires_on": expires_on,
                "created_at": now,
            }
            for customer_id, (points, expires_on) in sorted(wanted.items())
            if customer_id not in done
        ]
        if not credits:
            return {}
        entries = connection.execute(
            self._insert(LedgerEntry.__table__)
            .on_conflict_do_nothing(index_elements=["customer_id", "reference"])
            .returning(LedgerEntry.id, LedgerEntry.customer_id),
            credits,
        ).all()
        # A concurrent import of the same file may have credited some first: those are skipped.
        new = {entry.customer_id: entry.id for entry in entries}
        applied = [c for c in credits if c["customer_id"] in new]
        if not applied:
            return {}
        connection.execute(
            PointLot.__table__.insert(),
            [
                {
                    "customer_id": c["customer_id"],
                    "entry_id": new[c["customer_id"]],
                    "points": c["points"],
                    "remaining": c["points"],
                    "expires_on": c["expires_on"],
                }
                for c in applied
            ],
        )
        return self._add_to_balances(connection, applied, existing, ids, now)

    def _expiry(self, values: dict[str, Any], now: datetime) -> date | None:
        days = self.loyalty.settings.points_validity_days
        return values.get("expires_at") or (now.date() + timedelta(days=days) if days else None)

    @staticmethod
    def _add_to_balances(
        connection: Connection,
        applied: list[dict[str, Any]],
        existing: dict[str, dict[str, Any]],
        ids: dict[str, int],
        now: datetime,
    ) -> dict[int, tuple[int, int]]:
        connection.execute(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.id == bindparam("customer_id"))
            .values(
                balance=CUSTOMERS.c.balance + bindparam("points"),
                last_change_at=now,
                last_change_points=bindparam("points"),
                updated_at=now,
            ),
            [{"customer_id": c["customer_id"], "points": c["points"]} for c in applied],
        )
        balances = {ids[email]: row["balance"] for email, row in existing.items()}
        return {
            c["customer_id"]: (c["points"], balances.get(c["customer_id"], 0) + c["points"])
            for c in applied
        }

    def _queue_events(
        self,
        session: Session,
        ids: dict[str, int],
        pins: dict[str, str],
        credited: dict[int, tuple[int, int]],
    ) -> None:
        outbox = self.loyalty.outbox
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


def _merged(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """The customer's columns after the row: the row's values over what was there."""
    base = before if before is not None else NEW_CUSTOMER
    return {c: values[c] if c in values else base.get(c) for c in WRITTEN}
