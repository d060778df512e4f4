"""``POST /api/customers/bulk``: up to 10,000 customers in one request, as the import takes them.

The body is read as it arrives, one customer at a time (NDJSON lines, or the items of a JSON
array), so memory does not grow with it beyond the checked values; each customer is judged by
the CSV import's schema, and the valid ones are written in one transaction by the import's
writer: an unchanged customer writes nothing, and events only with ``?events=true``.
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from flask import abort, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from pointbridge import untrusted_json
from pointbridge.loyalty.import_rows import Row, RowError, SeenOnce, judge
from pointbridge.loyalty.import_writer import BatchRefused, CustomerWriter, ImportResult, Outcome
from pointbridge.loyalty.schema import CustomerItem
from pointbridge.web.api.auth import require_token
from pointbridge.web.services import services

MAX_ITEMS = 10_000
# A customer at every field's limit is under 2 KB: far larger is no customer.
MAX_ITEM_SIZE = 65_536
CHUNK = 65_536
NDJSON = "application/x-ndjson"

blp = Blueprint("bulk", __name__, description="Many customers in one request.")


@blp.before_request
def _require_token() -> None:
    require_token()
    # Read as it arrives: the app's whole-body limit is for bodies read at once.
    request.max_content_length = MAX_ITEMS * MAX_ITEM_SIZE


class BulkQuery(Schema):
    events = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Also send the events the single-customer API would for the same "
            "changes (tier, referral, PIN, opening balance, reward), as the CSV import's --events."
        },
    )


class ItemResult(Schema):
    index = fields.Integer(metadata={"description": "The customer's position, from 0."})
    status = fields.String(metadata={"description": "created, updated, unchanged or error"})
    id = fields.Integer(allow_none=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "With status error: the messages by field."},
    )


class BulkResult(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    errors = fields.Integer()
    items = fields.List(fields.Nested(ItemResult))


_BODY = {
    "required": True,
    "description": (
        f"Up to {MAX_ITEMS:,} customers: a JSON array, or NDJSON (one customer a line, "
        f"Content-Type {NDJSON}). Each is what the CSV import takes in a row: a customer, "
        "with an optional opening balance (points, expires_at) credited once."
    ),
    "content": {
        "application/json": {"schema": {"type": "array", "items": CustomerItem}},
        NDJSON: {"schema": CustomerItem},
    },
}


@blp.route("/customers/bulk", methods=["POST"])
@blp.arguments(BulkQuery, location="query")
@blp.doc(requestBody=_BODY)
@blp.response(200, BulkResult)
@blp.alt_response(400, description="The body is not JSON (or NDJSON); the message names the line.")
@blp.alt_response(409, description="Other requests changed these customers meanwhile: retry.")
@blp.alt_response(413, description=f"More than {MAX_ITEMS:,} customers, or one over 64 KB.")
@blp.alt_response(415, description="Neither application/json nor application/x-ndjson.")
def post_bulk(query: dict[str, Any]) -> dict[str, Any]:
    """Create or update many customers; the same body sent again changes nothing.

    Every customer gets a result, in the order sent: created, updated, unchanged, or error
    with the messages the single-customer API would give. A customer named twice in one body
    is an error the second time."""
    mimetype = request.mimetype
    if mimetype == NDJSON:
        items = _ndjson_items(request.stream)
    elif mimetype == "application/json":
        items = _array_items(request.stream)
    else:
        abort(415, description=f"Send application/json (an array) or {NDJSON}.")
    rows = _judged(items)
    svc = services()
    writer = CustomerWriter(svc.db, svc.loyalty, events=query["events"])
    valid = [row for row in rows if row.values is not None]
    try:
        outcomes = writer.write(valid, ImportResult()) if valid else {}
    except BatchRefused as exc:
        abort(409, description=f"Nothing written: {exc.message}. Send the request again.")
    results = [_result(row, outcomes) for row in rows]
    counted = Counter(result["status"] for result in results)
    return {
        **{status: counted[status] for status in ("created", "updated", "unchanged")},
        "errors": counted["error"],
        "items": results,
    }


def _result(row: Row, outcomes: dict[str, Outcome]) -> dict[str, Any]:
    outcome = outcomes[row.values["email"]] if row.values else None
    if outcome is None or outcome.error is not None:
        errors = row.errors or ((outcome.error,) if outcome and outcome.error else ())
        return _error(row.line, errors)
    return {"index": row.line, "status": outcome.status, "id": outcome.customer_id}


def _error(index: int, errors: tuple[RowError, ...]) -> dict[str, Any]:
    messages: dict[str, list[str]] = {}
    for error in errors:
        messages.setdefault(error.column or "_schema", []).append(error.message)
    return {"index": index, "status": "error", "id": None, "errors": messages}


def _judged(items: Iterator[Any]) -> list[Row]:
    """Each item as the schema loads it (its index as its line), or what is wrong with it."""
    schema = CustomerItem()
    seen = SeenOnce("item")
    rows = []
    for index, item in enumerate(items):
        if index == MAX_ITEMS:
            abort(413, description=f"At most {MAX_ITEMS:,} customers in one request.")
        rows.append(seen.repeated(judge(schema, index, item)))
    return rows


# reading the body, one customer at a time ------------------------------------------------


def _ndjson_items(stream: IO[bytes]) -> Iterator[Any]:
    for number, raw in enumerate(iter(lambda: stream.readline(MAX_ITEM_SIZE + 1), b""), 1):
        if len(raw) > MAX_ITEM_SIZE and not raw.endswith(b"\n"):
            _too_large(number)
        try:
            # A byte-order mark (Windows tools write one) may start the body, as JSON allows.
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            abort(400, description=f"Line {number}: not UTF-8 ({exc.reason}).")
        if text.strip():
            yield _loads(text, number)


def _loads(text: str, line: int) -> Any:
    try:
        return untrusted_json.loads(text)
    except untrusted_json.UnreadableJson as exc:
        abort(400, description=f"Line {line}: {exc}")
    except json.JSONDecodeError as exc:
        abort(400, description=f"Line {line}: not JSON: {exc.msg} at column {exc.colno}.")


def _too_large(line: int) -> None:
    abort(413, description=f"Line {line}: one customer is over {MAX_ITEM_SIZE // 1024} KiB.")


class _ArrayReader:
    """The items of a JSON array, parsed as the text arrives: at most one item (and one
    chunk) is held at a time."""

    WHITESPACE = " \t\r\n"

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        # utf-8-sig: a byte-order mark starting the body is dropped, as JSON allows.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._json = json.JSONDecoder()
        self._text = ""
        self._at = 0
        self._line = 1  # of self._text[0]
        self._ended = False

    def items(self) -> Iterator[Any]:
        if self._next_char() != "[":
            self._fail("the body is not a JSON array")
        self._at += 1
        if self._next_char() == "]":
            self._at += 1
            return self._end()
        while True:
            self._next_char()
            yield self._item()
            separator = self._next_char()
            self._at += 1
            if separator == "]":
                return self._end()
            if separator == "":
                self._fail("the body ends before the array's ']'")
            if separator != ",":
                self._fail("expected ',' or ']' after an item")

    def _end(self) -> None:
        if self._next_char() != "":
            self._fail("text after the array")

    def _item(self) -> Any:
        while True:
            start = self._at  # _more moves the text: the item starts at _at again
            try:
                _, end = self._json.raw_decode(self._text, start)
            except json.JSONDecodeError as exc:
                if self._ended or not self._cut_short(exc):
                    self._fail(f"not JSON: {exc.msg}", exc.pos)
                self._more(start)
                continue
            except (RecursionError, ValueError):
                end = len(self._text)  # too deep, or a number too long: _loads says which
            else:
                if end == len(self._text) and not self._ended:
                    self._more(start)  # a number may go on in the next chunk
                    continue
            if end - start > MAX_ITEM_SIZE:
                _too_large(self._line_at(start))
            # Parsed again by the one reader of untrusted JSON, for its depth and number rules.
            value = _loads(self._text[start:end], self._line_at(start))
            self._at = end
            return value

    def _cut_short(self, error: json.JSONDecodeError) -> bool:
        """Whether the text may just stop mid-item (the rest to come), not be broken."""
        return error.pos >= len(self._text) - len("false") or error.msg.startswith("Unterminated")

    def _more(self, start: int) -> None:
        if len(self._text) - start >= MAX_ITEM_SIZE:
            _too_large(self._line_at(start))
        self._read()

    def _next_char(self) -> str:
        """The next character that is not whitespace, "" at the end of the body."""
        while True:
            while self._at < len(self._text) and self._text[self._at] in self.WHITESPACE:
                self._at += 1
            if self._at < len(self._text):
                return self._text[self._at]
            if self._ended:
                return ""
            self._read()

    def _read(self) -> None:
        chunk = self._stream.read(CHUNK)
        self._ended = not chunk
        try:
            text = self._decoder.decode(chunk, final=self._ended)
        except UnicodeDecodeError as exc:
            self._fail(f"not UTF-8 ({exc.reason})", len(self._text))
        # Drop what was read already, keeping the line count.
        self._line += self._text.count("\n", 0, self._at)
        self._text = self._text[self._at :] + text
        self._at = 0

    def _line_at(self, position: int) -> int:
        return self._line + self._text.count("\n", 0, position)

    def _fail(self, message: str, position: int | None = None) -> None:
        line = self._line_at(self._at if position is None else position)
        abort(400, description=f"Line {line}: {message}.")


def _array_items(stream: IO[bytes]) -> Iterator[Any]:
    return _ArrayReader(stream).items()
