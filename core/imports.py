"""Streaming import of customers from CSV: constant memory, one commit per chunk."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TextIO

from sqlalchemy import select

from pointbridge.db import Database
from pointbridge.loyalty import IMPORT_REFERENCE, Loyalty, LoyaltyError, normalize_email
from pointbridge.models import Customer

TRUE_WORDS = {"1", "true", "yes", "y", "t"}
INT_COLUMNS = ("missions", "rewards", "referrals")
TEXT_COLUMNS = ("external_id", "first_name", "last_name", "tier_id", "tier_name")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def _profile(row: dict[str, str], line: int) -> dict[str, Any]:
    values: dict[str, Any] = {k: row[k].strip() or None for k in TEXT_COLUMNS if k in row}
    if "registered" in row and row["registered"].strip():
        values["registered"] = row["registered"].strip().lower() in TRUE_WORDS
    for column in INT_COLUMNS:
        if row.get(column, "").strip():
            try:
                values[column] = int(row[column])
            except ValueError:
                raise LoyaltyError(f"line {line}: {column} must be a whole number") from None
    if row.get("pin", "").strip():
        values["pin"] = row["pin"].strip()
    return values


def _chunks(
    rows: Iterable[dict[str, str]], size: int
) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for line, row in enumerate(rows, start=2):
        chunk.append((line, row))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_customers(
    db: Database, loyalty: Loyalty, source: TextIO, chunk_size: int = 500
) -> ImportReport:
    """Create or update customers from CSV with an ``email`` column.

    Optional columns: external_id, first_name, last_name, registered, pin, tier_id, tier_name,
    missions, rewards, referrals, points (the opening balance, credited once with reason
    ``import``: importing the same file again credits nothing), expires_at (YYYY-MM-DD).
    A bad line is reported and skipped; the others are imported.
    """
    reader = csv.DictReader(source)
    if not reader.fieldnames or "email" not in reader.fieldnames:
        raise LoyaltyError("The CSV needs a header line with an 'email' column.")
    report = ImportReport()
    for chunk in _chunks(reader, chunk_size):
        with db.transaction() as session:
            for line, row in chunk:
                try:
                    with session.begin_nested():
                        created = _import_row(session, loyalty, row, line)
                except LoyaltyError as exc:
                    report.errors.append(
                        f"line {line}: {exc}" if "line" not in str(exc) else str(exc)
                    )
                    continue
                if created:
                    report.created += 1
                else:
                    report.updated += 1
    return report


def _import_row(session: Any, loyalty: Loyalty, row: dict[str, str], line: int) -> bool:
    email = normalize_email(row.get("email") or "")
    values = _profile(row, line)
    customer = session.scalar(select(Customer).where(Customer.email == email))
    created = customer is None
    if customer is None:
        customer = loyalty.create_customer(session, {"email": email, **values})
    elif values:
        loyalty.update_customer(session, customer, values)
    points = (row.get("points") or "").strip()
    if points and points != "0":
        try:
            amount = int(points)
            expires = date.fromisoformat(row["expires_at"]) if row.get("expires_at") else None
        except ValueError:
            raise LoyaltyError(f"line {line}: points or expires_at is not valid") from None
        loyalty.post_transaction(
            session,
            customer,
            amount,
            IMPORT_REFERENCE,
            reference=IMPORT_REFERENCE,
            system=True,
            expires_on=expires,
        )
    return created
