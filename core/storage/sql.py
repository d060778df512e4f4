"""``among(column, ids)``: ``column IN ids`` with the ids bound as one parameter.

SQLAlchemy binds ``column.in_(ids)`` as one parameter per id and renders them into the SQL on
every execution; for the few hundred ids of each delivery call that took longer than the
query. Here the ids travel as one value: a JSON array that SQLite unpacks with
``json_each``, or an array that PostgreSQL compares with ``= ANY`` (or unnests, for NOT IN).
Both databases still look each id up in the column's index.

``insert_rows``: many rows into a table at the driver's speed (executemany of plain tuples, or
COPY on PostgreSQL), for the writes that go by the thousand (an import, a batch of outbox rows);
``insert_per_id``: a row for each of many ids, the rest of each row the same;
``processed_rows``: a driver's rows with each column through its type's processor;
``reserve_ids``: the ids such rows will have, before they are written; ``fetch_rows``: the
reads that go by the thousand, as plain tuples.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Connection, Select, String, Table, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


class _IdArray(TypeDecorator[Collection[int]]):
    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Collection[int] | None, dialect: Dialect) -> Any:
        ids = list(value or ())
        return ids if dialect.name == "postgresql" else json.dumps(ids)


class Among(ColumnElement[bool]):
    """``column`` is one of ``ids`` (negate with ``~``)."""

    inherit_cache = True
    type = Boolean()
    # A condition in its own right: without this, SQLite gets "<element> = 1", which no
    # index serves.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
        ("negated", InternalTraversal.dp_boolean),
    ]

    def __init__(
        self,
        column: ColumnElement[Any],
        ids: BindParameter[Collection[int]],
        *,
        negated: bool = False,
    ) -> None:
        self.column = column
        self.ids = ids
        self.negated = negated

    def _negate(self) -> Among:
        # Not "NOT (...)": each dialect spells the negation the way its planner does best.
        return Among(self.column, self.ids, negated=not self.negated)


# The largest id a BIGINT primary key holds.
MAX_ID = 2**63 - 1


def id_in(text: str) -> int | None:
    """The row id ``text`` writes (ASCII digits), or None for text no row id can be: checked
    before it reaches the database, where a larger number overflows."""
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID))):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def among(column: ColumnElement[Any], ids: Collection[int] | str) -> Among:
    """``column`` is one of ``ids``: the ids themselves, or the name of the parameter that
    will carry them (for a statement built once and executed with different ids)."""
    if isinstance(ids, str):
        return Among(column, bindparam(ids, type_=_IdArray()))
    return Among(column, bindparam(None, ids, type_=_IdArray(), unique=True))


@compiles(Among, "sqlite")
def _among_sqlite(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    operator = "NOT IN" if element.negated else "IN"
    return (
        f"{column} {operator} (SELECT value FROM json_each({compiler.process(element.ids, **kw)}))"
    )


@compiles(Among, "postgresql")
def _among_postgresql(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    ids = compiler.process(element.ids, **kw)
    if element.negated:
        # A subquery PostgreSQL hashes once; "<> ALL(array)" compares each row with every
        # element once the plan is generic (a prepared statement's, after five runs).
        return f"{column} NOT IN (SELECT unnest({ids}))"
    return f"{column} = ANY({ids})"


def insert_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    constants: Mapping[str, Any] | None = None,
    unless_exists: str | None = None,
) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``, each with the
    ``constants`` (column -> one value for every row); with ``unless_exists`` (a unique
    column), a row whose value is there already is left out. Returns the rows inserted.

    PostgreSQL takes them by COPY (into a temporary table first when some may be left out):
    a statement a row, even pipelined, was most of an import's time there."""
    if not rows:
        return 0
    fixed = dict(constants or {})
    names = ", ".join((*columns, *fixed))
    if connection.dialect.name != "postgresql":
        conflict = f" ON CONFLICT ({unless_exists}) DO NOTHING" if unless_exists else ""
        markers = ", ".join(["{}"] * (len(columns) + len(fixed)))
        return executemany(
            connection,
            f"INSERT INTO {table.name} ({names}) VALUES ({markers}){conflict}",
            [table.c[c] for c in columns],
            rows,
            constants=[(table.c[c], value) for c, value in fixed.items()],
        )
    target = f"import_{table.name}" if unless_exists else table.name
    if unless_exists:
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {target} ON COMMIT DROP AS "
            f"SELECT {names} FROM {table.name} WITH NO DATA"
        )
    rows = _bound(connection, [table.c[c] for c in columns], rows)
    tail = _bound_constants(connection, [(table.c[c], v) for c, v in fixed.items()])
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row + tail)
    if not unless_exists:
        return len(rows)
    return connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {target} "
        f"ON CONFLICT ({unless_exists}) DO NOTHING"
    ).rowcount


def insert_per_id(
    connection: Connection,
    table: Table,
    column: str,
    ids: Sequence[int],
    *,
    constants: Mapping[str, Any],
) -> int:
    """Insert one row into ``table`` for each of ``ids`` (its ``column``), each with the
    ``constants`` (column -> one value for every row). Returns the rows inserted.

    On SQLite the ids go in as one JSON array that ``json_each`` unpacks, the constants
    bound once (``json_each`` scans the array in its order, so the rows are numbered in it): a
    tuple a row of the same eight values cost SQLite more to bind than to insert (an import
    queues a contact update a customer). PostgreSQL takes the rows by COPY (``insert_rows``)."""
    if not ids:
        return 0
    if connection.dialect.name == "postgresql":
        return insert_rows(connection, table, (column,), [(i,) for i in ids], constants=constants)
    fixed = _bound_constants(connection, [(table.c[c], v) for c, v in constants.items()])
    markers = "".join(", ?" for _ in fixed)
    return connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join((column, *constants))}) "
        f"SELECT value{markers} FROM json_each(?)",
        (*fixed, json.dumps(list(ids))),
    ).rowcount


def executemany(
    connection: Connection,
    sql: str,
    columns: list[Column[Any]],
    rows: list[tuple[Any, ...]],
    *,
    constants: Sequence[tuple[Column[Any], Any]] = (),
) -> int:
    """``sql`` (its parameters written ``{}``, one per column of ``columns`` and then one per
    column of ``constants``) for each of ``rows``, by the driver's executemany: SQLAlchemy's
    own spent more on each row's parameters than the database on the row (and on PostgreSQL
    rewrote each page of rows into one long statement for psycopg to parse). Each value still
    goes through its column type's bind processor, so a date is stored as SQLAlchemy stores
    it. Returns the rows the statements changed."""
    if not rows:
        return 0
    rows = _bound(connection, columns, rows)
    tail = _bound_constants(connection, constants)
    if tail:
        rows = [row + tail for row in rows]
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = sql.format(*[marker] * (len(columns) + len(tail)))
    return connection.exec_driver_sql(sql, rows).rowcount


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` ids for new rows of ``table`` (its primary key ``id``), for the caller to
    insert them with: rows that refer to them (an opening balance's ledger entry and lot) can
    be written at once, and nothing is read back. PostgreSQL draws them from the table's
    sequence; on SQLite they follow the largest id, which nobody else can take before the
    caller commits, since a write transaction holds the database's one write lock from its
    BEGIN IMMEDIATE (``storage.db``)."""
    if connection.dialect.name == "postgresql":
        drawn = connection.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            "FROM generate_series(1, %(count)s)",
            {"count": count},
        )
        return list(drawn.scalars())
    last = connection.exec_driver_sql(f"SELECT max(id) FROM {table.name}").scalar() or 0
    return list(range(last + 1, last + 1 + count))


def _bound_constants(
    connection: Connection, constants: Sequence[tuple[Column[Any], Any]]
) -> tuple[Any, ...]:
    dialect = connection.dialect
    return tuple(
        process(value) if (process := _processor(column, dialect)) else value
        for column, value in constants
    )


def _bound(
    connection: Connection, columns: list[Column[Any]], rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """``rows`` with each value as its column's bind processor makes it."""
    dialect = connection.dialect
    return processed_rows(rows, [_processor(column, dialect) for column in columns])


def fetch_rows(connection: Connection, statement: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` as plain tuples, each value as SQLAlchemy would give it (a
    date from SQLite's text, a bool from its 0 or 1): read by the driver, and each column's
    result processor mapped over the column. SQLAlchemy's own rows cost more than SQLite's
    reading them (an import reads back a customer a row)."""
    result = connection.execute(statement)
    try:
        cursor = result.cursor
        rows = cursor.fetchall()
        described = cursor.description
    finally:
        result.close()
    dialect = connection.dialect
    return processed_rows(
        rows,
        [
            column.type.dialect_impl(dialect).result_processor(dialect, description[1])
            for column, description in zip(statement.selected_columns, described, strict=True)
        ],
    )


def processed_rows(
    rows: list[tuple[Any, ...]], processors: list[Callable[[Any], Any] | None]
) -> list[tuple[Any, ...]]:
    """``rows`` with each value through its column's processor (None: as it is)."""
    wanted = [
        # Memoized: most processed values repeat (a few expiry dates among thousands of rows).
        (index, functools.lru_cache(maxsize=4096)(process))
        for index, process in enumerate(processors)
        if process is not None
    ]
    if not wanted or not rows:
        return rows
    # A column at a time, by map() over the memoized processor: no Python call a row.
    by_column: list[Any] = list(zip(*rows, strict=True))
    for index, process in wanted:
        by_column[index] = map(process, by_column[index])
    return list(zip(*by_column, strict=True))


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    return column.type.dialect_impl(dialect).bind_processor(dialect)
