"""``among(column, ids)``: ``column IN ids`` with the ids bound as one parameter.

SQLAlchemy binds ``column.in_(ids)`` as one parameter per id and renders them into the SQL on
every execution; for the few hundred ids of each delivery call that took longer than the
query. Here the ids travel as one value: a JSON array that SQLite unpacks with
``json_each``, or an array that PostgreSQL compares with ``= ANY`` (or unnests, for NOT IN).
Both databases still look each id up in the column's index.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import BigInteger, Boolean, String, bindparam
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
