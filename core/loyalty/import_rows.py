"""Reading the customers of an import: a CSV file's rows (or a bulk request's items), each
judged by the schema the REST API uses (``CustomerImport``) and kept with what is wrong with it.

The file is read one line a record (no customer field holds a line break), so a quote left
open spoils its own line only; rows are judged a thousand at a time, a column at a time, and a
bad one among them is found by halving (``CustomerImport.load_plain_columns``).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from marshmallow import ValidationError, missing

from pointbridge.loyalty.rules import LoyaltyError
from pointbridge.loyalty.schema import CustomerImport

COLUMNS = tuple(CustomerImport().fields)
# An empty cell clears the columns the API lets a customer clear (with null); an empty cell of
# any other column leaves the value as it is.
CLEARABLE = tuple(name for name, field in CustomerImport().fields.items() if field.allow_none)


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


class _QuoteLeftOpen(Exception):
    """The csv reader asked for another line to finish a quoted field."""


class CsvLines:
    """The file's lines as text, for the csv reader, one record a line: no customer field
    holds a line break, so a quote still open at the end of a line is the file's mistake, and
    the next line is read as a record of its own (not swallowed into the field).

    A line that is not UTF-8 is noted in ``undecoded`` (and decoded with U+FFFD in place of the
    bad bytes, so its row is still read and reported as a whole). Lines are numbered from
    ``first`` (a part of a file read on its own: ``import_split``); ``reader`` gives the
    records."""

    def __init__(self, source: Iterable[bytes], digest: Any | None, first: int = 1) -> None:
        self.line = 0
        self.text = ""
        self.undecoded: str | None = None
        self._lines = enumerate(source, start=first)
        self._digest = digest
        self._pending: tuple[int, bytes] | None = None
        self._in_record = False
        # strict: text after a closing quote is an error, not a guess.
        self.reader = csv.reader(self, strict=True)

    def __iter__(self) -> CsvLines:
        return self

    def __next__(self) -> str:
        if self._pending is None:
            number, raw = next(self._lines)
            # Every byte once, as read (a line held back below was seen then).
            if self._digest is not None:
                self._digest.update(raw)
        else:
            number, raw = self._pending
        if self._in_record:
            self._pending = number, raw
            raise _QuoteLeftOpen
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
    # Columns pointbridge does not know are left alone (a shop's export has many), but one
    # that looks like a misspelt column would silently import nothing from it: "point" lost
    # every opening balance.
    for name in header:
        if name not in COLUMNS and (near := difflib.get_close_matches(name, COLUMNS, 1, 0.8)):
            raise ImportRefused(
                f"The header has a column {name!r}: did you mean {near[0]!r}? Rename it, or "
                "remove the column if it is not pointbridge's."
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
    header, lines = read_header(source, digest or hashlib.sha256())
    yield from once(judged_rows(header, lines))


def read_header(source: Iterable[bytes], digest: Any) -> tuple[list[str], CsvLines]:
    """The file's header (or ``ImportRefused``), and its lines after the header."""
    lines = CsvLines(source, digest)
    header = _header(lines.reader)
    lines.record_done()
    return header, lines


def once(rows: Iterable[Row]) -> Iterator[Row]:
    """``rows`` in their order, each one that names a customer an earlier one named made a
    bad row (``SeenOnce``)."""
    seen = SeenOnce()
    for row in rows:
        yield seen.repeated(row) if row.values else row


def judged_rows(header: list[str], lines: CsvLines) -> Iterator[Row]:
    """The data rows of ``lines`` (after the header), judged; customers named twice are not
    looked for (``once``)."""
    schema = CustomerImport()
    records: list[_Record] = []
    while True:
        try:
            cells = next(lines.reader)
        except StopIteration:
            break
        except (csv.Error, _QuoteLeftOpen) as exc:
            yield from _judge_together(schema, header, records)
            records = []
            yield _not_csv(header, lines.text, lines.line, exc)
            continue
        finally:
            lines.record_done()
        if cells:
            records.append((lines.line, cells, lines.undecoded))
            if len(records) == JUDGED_TOGETHER:
                yield from _judge_together(schema, header, records)
                records = []
    yield from _judge_together(schema, header, records)


# A line's number, its cells and why it is not UTF-8 (None when it is).
_Record = tuple[int, list[str], str | None]
# Rows judged a column at a time (``CustomerImport.load_plain_columns``): a bad one among them
# is found by halving, at the cost of judging about as many rows again.
JUDGED_TOGETHER = 1_000


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
