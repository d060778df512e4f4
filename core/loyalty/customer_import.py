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
import operator
import pickle
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from marshmallow import ValidationError, missing
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
from pointbridge.loyalty.rules import (
    IMPORT_REFERENCE,
    PROFILE_FIELDS,
    REFERRAL_ALPHABET,
    Conflict,
    LoyaltyError,
)
from pointbridge.loyalty.schema import CustomerImport
from pointbridge.loyalty.service import Loyalty
from pointbridge.storage.db import Database
from pointbridge.storage.models import Customer, LedgerEntry, PointLot
from pointbridge.storage.sql import among, executemany, insert_rows

BATCH_SIZE = 5_000
COLUMNS = tuple(CustomerImport().fields)
# An empty cell clears these; an empty cell of any other column leaves the value as it is.
CLEARABLE = ("external_id", "first_name", "last_name", "tier_id", "tier_name")
# The columns an import writes, in the order of the upsert's parameters.
WRITTEN = (*PROFILE_FIELDS, "pin")
NEW_CUSTOMER = {
    "registered": False,
    "marketing_consent": False,
    "missions": 0,
    "rewards": 0,
    "referrals": 0,
    "pin": None,
}
CUSTOMERS = Customer.__table__
# A random byte's low 5 bits pick one of the 32 letters: uniform, as secrets.choice is.
assert len(REFERRAL_ALPHABET) == 32
_REFERRAL_LETTERS = bytes(ord(REFERRAL_ALPHABET[b % 32]) for b in range(256))
REFERRAL_LENGTH = 10


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


class BatchRefused(Conflict):
    """A batch could not be written, and nothing of it was; ``then`` says what to do."""

    def __init__(self, message: str, *, then: str) -> None:
        super().__init__(message)
        self.then = then


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one customer of a batch: created, updated, unchanged or error."""

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


# reading ----------------------------------------------------------------------------------


class _QuoteLeftOpen(Exception):
    """The csv reader asked for another line to finish a quoted field."""


class _Lines:
    """The file's lines as text, for the csv reader, one record a line: no customer field
    holds a line break, so a quote still open at the end of a line is the file's mistake, and
    the next line is read as a record of its own (not swallowed into the field).

    A line that is not UTF-8 is noted in ``undecoded`` (and decoded with U+FFFD in place of the
    bad bytes, so its row is still read and reported as a whole)."""

    def __init__(self, source: IO[bytes], digest: Any) -> None:
        self.line = 0
        self.text = ""
        self.undecoded: str | None = None
        self._lines = enumerate(source, start=1)
        self._digest = digest
        self._pending: tuple[int, bytes] | None = None
        self._in_record = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        number, raw = self._pending or next(self._lines)
        if self._in_record:
            self._pending = number, raw
            raise _QuoteLeftOpen
        if self._pending is None:
            self._digest.update(raw)
        self._pending, self._in_record = None, True
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        self.line, self.undecoded = number, None
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.undecoded = (
                f"Not UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line; "
                "save the file as UTF-8."
            )
            self.text = raw.decode("utf-8", errors="replace")
        return self.text

    def record_done(self) -> None:
        self._in_record = False


NOT_CLOSED = "A quote opened in this field is not closed."
TEXT_AFTER_QUOTE = "Text after the closing quote: quote the whole field, and double a quote in it."


def _broken_field(line: str) -> tuple[int, str] | None:
    """The index of the field where a CSV line goes wrong, and how: a quote still open at the
    end of the line, or text after a closing quote. None when its quotes are in order."""
    field, state = 0, "start"
    for char in line.rstrip("\r\n"):
        if state == "quoted":
            state = "quote" if char == '"' else "quoted"
        elif char == ",":
            field, state = field + 1, "start"
        elif state == "quote":
            if char != '"':
                return field, TEXT_AFTER_QUOTE
            state = "quoted"
        elif state == "start":
            state = "quoted" if char == '"' else "plain"
    return (field, NOT_CLOSED) if state == "quoted" else None


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except (csv.Error, _QuoteLeftOpen):
        raise ImportRefused("The header line is not CSV: check its quotes.") from None
    if "email" not in header:
        raise ImportRefused("The CSV needs a header line with an 'email' column.")
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise ImportRefused(
            f"The header names {', '.join(repeated)} more than once: keep one column each."
        )
    return header


class SeenOnce:
    """Whether a customer's e-mail or external id was already on an earlier line (or item). A
    file that names a customer twice has no one right answer (which row's points? which
    profile?), so the second line is a bad row. 8-byte hashes keep it near 60 bytes a
    customer (two customers sharing one: about once in 10^7 files of a million rows)."""

    UNIQUE = ("email", "external_id")

    def __init__(self, noun: str = "line") -> None:
        self._noun = noun
        self._seen: dict[str, set[int]] = {column: set() for column in self.UNIQUE}

    def repeated(self, row: Row) -> Row:
        errors = []
        for column in self.UNIQUE:
            value = (row.values or {}).get(column)
            if value is None:
                continue
            key = hash(value)  # str's own 64-bit hash: computed in C, and cached on the string
            if key in self._seen[column]:
                message = f"{column} {value} is on an earlier {self._noun} too: each customer once."
                errors.append(RowError(row.line, column, message))
            self._seen[column].add(key)
        return Row(row.line, None, tuple(errors)) if errors else row


def _columns(header: list[str], rows: Sequence[list[str]]) -> dict[str, list[Any]]:
    """The cells of ``rows`` (each as long as the header) by column, as the schema takes
    them: trimmed, an empty one None where it clears the value and ``missing`` where it
    leaves the value alone (an empty e-mail stays, to be refused)."""
    columns = {}
    for name, cells in zip(header, zip(*rows, strict=True), strict=True):
        if name not in COLUMNS:
            continue
        values = [cell.strip() for cell in cells]
        if name != "email" and "" in values:
            empty = None if name in CLEARABLE else missing
            values = [value or empty for value in values]
        columns[name] = values
    return columns


def _cells_to_data(header: list[str], cells: list[str]) -> dict[str, Any]:
    columns = _columns(header, [cells])
    return {name: values[0] for name, values in columns.items() if values[0] is not missing}


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
    lines = _Lines(source, digest or hashlib.sha256())
    # strict: text after a closing quote is an error, not a guess.
    reader = csv.reader(lines, strict=True)
    header = _header(reader)
    lines.record_done()
    schema = CustomerImport()
    seen = SeenOnce()
    records: list[_Record] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except (csv.Error, _QuoteLeftOpen) as exc:
            yield from _judged(schema, header, records, seen)
            records = []
            yield _not_csv(header, lines.text, lines.line, exc)
            continue
        finally:
            lines.record_done()
        if cells:
            records.append((lines.line, cells, lines.undecoded))
            if len(records) == JUDGED_TOGETHER:
                yield from _judged(schema, header, records, seen)
                records = []
    yield from _judged(schema, header, records, seen)


# A line's number, its cells and why it is not UTF-8 (None when it is).
_Record = tuple[int, list[str], str | None]
# Rows judged a column at a time (``CustomerImport.load_plain_columns``): a bad one among them
# is found by halving, at the cost of judging about as many rows again.
JUDGED_TOGETHER = 1_000


def _judged(
    schema: CustomerImport, header: list[str], records: list[_Record], seen: SeenOnce
) -> Iterator[Row]:
    for row in _judge_together(schema, header, records):
        yield seen.repeated(row) if row.values else row


def _judge_together(schema: CustomerImport, header: list[str], records: list[_Record]) -> list[Row]:
    if not records:
        return []
    if all(undecoded is None and len(cells) == len(header) for _, cells, undecoded in records):
        columns = _columns(header, [cells for _, cells, _ in records])
        loaded = schema.load_plain_columns(columns, len(records))
        if loaded is not None:
            return [Row(r[0], values) for r, values in zip(records, loaded, strict=True)]
    if len(records) == 1:
        return [_judge(schema, header, *records[0])]
    half = len(records) // 2
    return _judge_together(schema, header, records[:half]) + _judge_together(
        schema, header, records[half:]
    )


def _not_csv(header: list[str], text: str, line: int, error: Exception) -> Row:
    broken = _broken_field(text)
    if broken is None:
        return Row(line, None, (RowError(line, "", f"Not CSV: {error}."),))
    index, message = broken
    column = header[index] if index < len(header) else f"field {index + 1}"
    return Row(line, None, (RowError(line, column, message),))


def _judge(
    schema: CustomerImport, header: list[str], line: int, cells: list[str], undecoded: str | None
) -> Row:
    """One row, with the schema's verdict and messages."""
    if undecoded is not None:
        column = next(
            (name for name, cell in zip(header, cells, strict=False) if "\ufffd" in cell), ""
        )
        return Row(line, None, (RowError(line, column, undecoded),))
    if len(cells) != len(header):
        # The first field missing, or the first one past the header's last.
        column = header[len(cells)] if len(cells) < len(header) else f"field {len(header) + 1}"
        message = f"The row has {len(cells)} fields; the header has {len(header)}."
        return Row(line, None, (RowError(line, column, message),))
    return judge(schema, line, _cells_to_data(header, cells))


def judge(schema: CustomerImport, line: int, data: Any) -> Row:
    """One customer (a row's cells by column, or a JSON value) as ``schema`` loads it, or what
    is wrong with it."""
    if not isinstance(data, dict):
        return Row(line, None, (RowError(line, "", "Must be a JSON object: one customer."),))
    try:
        return Row(line, schema.load(data))
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
        return Row(line, None, _flatten(line, messages))


# phase 1: the check ------------------------------------------------------------------------


class CheckedRows:
    """The check's verdict on every row, kept in a temporary file for the load: the CSV is
    read and judged once (judging was half an import's time). Written and read by this
    process only, and gone when closed."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> CheckedRows:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def add(self, batch: list[Row]) -> None:
        # Tuples: pickling a slotted dataclass costs a dataclasses.fields() call per row.
        rows = [(row.line, row.values, row.errors) for row in batch]
        pickle.dump(rows, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[Row]:
        self._file.seek(0)
        while True:
            try:
                rows = pickle.load(self._file)
            except EOFError:
                return
            yield from (Row(*row) for row in rows)


def check_file(
    source: IO[bytes],
    on_error: Callable[[RowError], None],
    db: Database | None = None,
    *,
    on_rows: Callable[[int], None] | None = None,
    keep: CheckedRows | None = None,
) -> CheckResult:
    """Read the whole file and call ``on_error`` for each problem, in line order; nothing is
    written. With ``db``, an external id that belongs to another customer there is a problem
    too. ``on_rows`` hears the rows read so far, a batch at a time; ``keep`` gets every row,
    for the load."""
    result = CheckResult()
    digest = hashlib.sha256()
    for batch in _batches(read_rows(source, digest), BATCH_SIZE):
        if keep is not None:
            keep.add(batch)
        clashes = _clashes_by_line(db, batch) if db is not None else {}
        for row in batch:
            errors = row.errors or ((clashes[row.line],) if row.line in clashes else ())
            result.bad_rows += bool(errors)
            for error in errors:
                on_error(error)
        result.rows += len(batch)
        if on_rows:
            on_rows(result.rows)
    result.fingerprint = digest.hexdigest()
    return result


def _clashes_by_line(db: Database, rows: list[Row]) -> dict[int, RowError]:
    with db.read() as session:
        clashes = external_id_clashes(session.connection(), rows)
    return {error.line: error for error in clashes.values()}


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
        self._lock = db.engine.dialect.name == "postgresql"

    def load(
        self,
        every: Iterable[Row],
        fingerprint: str,
        *,
        resume: bool = False,
        batch_size: int = BATCH_SIZE,
        on_batch: Callable[[ImportResult, int], None] | None = None,
    ) -> ImportResult:
        """Import the valid rows of a file (``read_rows`` of it, or the ``CheckedRows`` its
        ``check_file`` kept; the check gave ``fingerprint``); invalid rows count as skipped.
        ``resume`` starts after the last batch a previous run of the same file committed.
        ``on_batch`` hears the totals and the rows read after each batch."""
        point = ResumePoint(self.loyalty.settings.instance_path, fingerprint)
        result = ImportResult(resumed_after_line=point.read() if resume else 0)
        rows = (row for row in every if row.line > result.resumed_after_line)
        read = 0
        for batch in _batches(rows, batch_size):
            valid = [row for row in batch if row.values is not None]
            result.skipped += len(batch) - len(valid)
            if valid:
                try:
                    self.write(valid, result)
                except BatchRefused as exc:
                    first = batch[0].line
                    raise ImportRefused(
                        f"Lines {first}-{batch[-1].line}: {exc.message}. The batches before "
                        f"line {first} are imported; {exc.then} with --resume."
                    ) from None
            point.save(batch[-1].line)
            result.batches += 1
            read += len(batch)
            if on_batch:
                on_batch(result, read)
        point.clear()
        return result

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
        codes = _referral_codes(len(latest) - len(existing))
        for email, row in sorted(latest.items()):
            values = row.values or {}
            before = existing.get(email)
            merged = _merged(values, before)
            if merged["pin"] is not None and (before is None or before["pin"] != merged["pin"]):
                pins[email] = merged["pin"]
            if before is None:
                statuses[email] = "created"
                # The opening balance goes in with the row (and in the ledger by _credit).
                points = values.get("points") or 0
                inserts.append({**merged, "referral_code": next(codes), "points": points})
            elif _written(merged) != _written(before):
                statuses[email] = "updated"
                updates.append({**merged, "id": before["id"]})
            else:
                statuses[email] = "unchanged"
        self._update(connection, updates, now)
        ids = {email: row["id"] for email, row in existing.items()}
        ids.update(self._insert_new(connection, inserts, now))
        credited = self._credit(connection, latest, ids, existing, now)
        result.credited += len(credited)
        changed = {ids[w["email"]] for w in (*updates, *inserts)} | set(credited)
        self.loyalty.outbox.contacts_changed(session, sorted(changed))
        if self.events:
            self._queue_events(session, ids, pins, credited)
        for email, status in statuses.items():
            if status == "unchanged" and ids[email] in credited:
                status = "updated"  # the opening balance is a change of its own
            setattr(result, status, getattr(result, status) + 1)
            outcomes[email] = Outcome(status, ids[email])
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
        found = connection.execute(statement)
        names = list(found.keys())
        return {row.email: dict(zip(names, row, strict=True)) for row in found.all()}

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
        write) is not written over with a new customer's defaults: the batch is read and
        merged again (``_CreatedMeanwhile``). Such a customer is told by its referral code,
        which is not the one made here.
        """
        if not inserts:
            return {}
        columns = (*WRITTEN, "referral_code", "balance", "last_change_at", "last_change_points")
        insert_rows(
            connection,
            CUSTOMERS,
            columns,
            [
                (
                    *_written(w),
                    w["referral_code"],
                    w["points"],
                    now if w["points"] else None,
                    w["points"] or None,
                )
                for w in inserts
            ],
            constants={"created_at": now, "updated_at": now},
            unless_exists="email",
        )
        codes = {w["email"]: w["referral_code"] for w in inserts}
        found = connection.execute(
            select(CUSTOMERS.c.email, CUSTOMERS.c.id, CUSTOMERS.c.referral_code).where(
                _among_emails(connection, sorted(codes))
            )
        )
        ids = {}
        for email, customer_id, code in found:
            if code != codes[email]:
                raise _CreatedMeanwhile
            ids[email] = customer_id
        return ids

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
                    among(LedgerEntry.customer_id, sorted(wanted)),
                )
            )
        )
        # The customers are this transaction's (new) or locked by it (read FOR UPDATE on
        # PostgreSQL; SQLite has one writer): nobody credits them between that read and this.
        credits = {c: wanted[c] for c in sorted(wanted) if c not in done}
        if not credits:
            return {}
        entries = LedgerEntry.__table__
        insert_rows(
            connection,
            entries,
            ("customer_id", "points", "expires_on"),
            [(c, points, expires_on) for c, (points, expires_on) in credits.items()],
            constants={
                "reason": IMPORT_REFERENCE,
                "reference": IMPORT_REFERENCE,
                "created_at": now,
            },
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
                ).where(
                    entries.c.reference == IMPORT_REFERENCE,
                    among(entries.c.customer_id, list(credits)),
                ),
            )
        )
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

    def _expiry(self, values: dict[str, Any], now: datetime) -> date | None:
        days = self.loyalty.settings.points_validity_days
        return values.get("expires_at") or (now.date() + timedelta(days=days) if days else None)

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


def _referral_codes(count: int) -> Iterator[str]:
    """``count`` new referral codes like ``loyalty._referral_code``'s, from one call for random
    bytes instead of ten per code (a tenth of a first import's time went there)."""
    letters = secrets.token_bytes(REFERRAL_LENGTH * count).translate(_REFERRAL_LETTERS).decode()
    return (letters[i : i + REFERRAL_LENGTH] for i in range(0, len(letters), REFERRAL_LENGTH))


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


_NEW_ROW = {c: NEW_CUSTOMER.get(c) for c in WRITTEN}
# The written columns of a row as one tuple: compared, or bound, in one call in C.
_written = operator.itemgetter(*WRITTEN)
