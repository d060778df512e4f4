"""What the fuzz tests share: how long they run, and how they tell that nothing changed.

By default a fuzz test runs a fixed, derandomized set of examples, so ``make test`` stays a few
seconds per endpoint and CI sees the same inputs every run. ``POINTBRIDGE_FUZZ_EXAMPLES=N``
turns each into a random search of ``N`` examples (select the tests with ``-m fuzz``).
"""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pointbridge.storage.db import Database
from pointbridge.storage.models import Base, Customer, PointLot

FUZZ_EXAMPLES_ENV = "POINTBRIDGE_FUZZ_EXAMPLES"
T = TypeVar("T")


def fuzz_settings(ci_examples: int) -> settings:
    """``ci_examples`` fixed examples, or the longer random run the environment asks for."""
    # deadline=None: the CI box is slow and noisy; a slow example is not a failure.
    common = {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,
    }
    requested = os.environ.get(FUZZ_EXAMPLES_ENV, "").strip()
    if requested:
        return settings(max_examples=int(requested), derandomize=False, **common)
    return settings(max_examples=ci_examples, derandomize=True, **common)


def assert_harmless(db: Database, before: tuple[object, ...], status: int, body: str) -> None:
    """No 5xx; a refusal is the JSON error body and leaves the database as ``before``."""
    assert status < 500, body
    if status >= 400:
        assert {"code", "message", "errors"} <= set(json.loads(body)), body
        assert fingerprint(db) == before, f"refused with {body} yet wrote"


def fingerprint(db: Database) -> tuple[object, ...]:
    """Row counts of every table, the money in balances and lots, the latest profile change.

    Cheap enough to take around every request; any write a rejected request lets through
    shows up in at least one of them.
    """
    counts = [
        select(func.count()).select_from(table).scalar_subquery()
        for table in Base.metadata.sorted_tables
    ]
    money = [
        select(func.coalesce(func.sum(Customer.balance), 0)).scalar_subquery(),
        select(func.coalesce(func.sum(PointLot.remaining), 0)).scalar_subquery(),
        select(func.max(Customer.updated_at)).scalar_subquery(),
    ]
    with db.read() as session:
        return tuple(session.execute(select(*counts, *money)).one())


# Characters that broke storage or fooled a check once: NUL, lone surrogates, bidi override,
# zero-width and BOM, control characters, the non-character U+FFFF, and some honest non-ASCII.
HOSTILE_CHARACTERS = [
    "\x00", "\ud83d", "\udc00", "\u202e", "\u200b", "\ufeff", "\n", "\x7f", "\uffff", "é", "😀"
]  # fmt: skip


class RawJson(str):
    """JSON text put in a body as it is: numbers Python will not print, nesting it cannot build."""


def dumps(value: Any, *, ensure_ascii: bool = True) -> str:
    """``json.dumps`` that writes ``RawJson`` verbatim."""
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(key), ensure_ascii=ensure_ascii)}: "
            f"{dumps(item, ensure_ascii=ensure_ascii)}"
            for key, item in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(item, ensure_ascii=ensure_ascii) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


def encoded(value: Any, *, ensure_ascii: bool) -> bytes:
    """A body's bytes; without ASCII escapes a lone surrogate becomes invalid UTF-8, as sent."""
    return dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def mostly(usual: st.SearchStrategy[T], other: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``usual`` three times in four: enough real input gets past the first check to reach
    the code behind it, where the other quarter's hostile values then go."""
    return st.integers(0, 3).flatmap(lambda pick: other if pick == 0 else usual)


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(st.characters(exclude_categories=()), max_size=30),
        st.sampled_from(HOSTILE_CHARACTERS),
        st.integers(1_000, 100_000).map(lambda size: "x" * size),
    )


def tainted(text: str) -> st.SearchStrategy[str]:
    """``text`` with one hostile character put somewhere in it."""
    return st.builds(
        lambda char, at: text[:at] + char + text[at:],
        st.sampled_from(HOSTILE_CHARACTERS),
        st.integers(0, len(text)),
    )


def huge_numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(),
        st.integers(min_value=2**63 - 1, max_value=10**30),
        st.integers(-(10**30), -(2**63)),
        st.integers(4_000, 6_000).map(lambda digits: RawJson("9" * digits)),
        st.sampled_from([RawJson("1e99999"), RawJson("-1e99999"), 1e308, float("nan"), 0.5]),
    )


def deep_nesting() -> st.SearchStrategy[RawJson]:
    return st.integers(20, 3_000).map(lambda depth: RawJson("[" * depth + "]" * depth))


def hostile_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON values of every type with hostile leaves; objects mostly use ``keys``."""
    leaves = st.one_of(st.none(), st.booleans(), huge_numbers(), hostile_text(), deep_nesting())
    object_keys = st.one_of(st.sampled_from(keys), hostile_text())
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(object_keys, children, max_size=3)
        ),
        max_leaves=8,
    )
