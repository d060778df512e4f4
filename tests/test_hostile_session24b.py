"""Hostile review of 64b2f06 (a debit takes from the lots in one windowed UPDATE, and on
PostgreSQL writes its entry and guarded balance in one statement) over real HTTP on both
databases: lots of several expiry dates and none, debits and credits at once, overdrafts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from pointbridge.loyalty.expiry import Expiry
from pointbridge.services import Services
from pointbridge.storage.models import Customer, LedgerEntry, PointLot
from pointbridge.testing.served import released_together, served
from pointbridge.web.cli import cli

THREADS = 24
REFUSED = 409  # an overdraft's answer, as tests/test_money_concurrency.py has it


@pytest.fixture
def url(app: Flask, services: Services) -> Iterator[str]:
    """The transactions URL of one new customer, served over real HTTP."""
    with services.db.transaction() as session:
        customer_id = services.loyalty.create_customer(session, {"email": "jana@example.com"}).id
    with served(app) as base:
        yield f"{base}/api/customers/{customer_id}/transactions"


def _post(http: requests.Session, url: str, auth: dict[str, str], points: int,
          **extra: Any) -> requests.Response:  # fmt: skip
    return http.post(
        url, json={"points": points, "reason": "order", **extra}, headers=auth, timeout=60
    )


def _credit(url: str, auth: dict[str, str], points: int, days: int | None) -> None:
    extra = {} if days is None else {"expires_at": str(date.today() + timedelta(days=days))}
    response = _post(requests.Session(), url, auth, points, **extra)
    assert response.status_code == 201, response.text


def _state(services: Services) -> tuple[int, list[int], list[Any]]:
    """The balance, the ledger's points and the lots in the order a debit takes them."""
    with services.db.read() as session:
        balance = session.scalar(select(Customer.balance))
        ledger = list(session.scalars(select(LedgerEntry.points)))
        lots = session.execute(
            select(PointLot.points, PointLot.remaining, PointLot.expires_on).order_by(
                PointLot.expires_on.is_(None), PointLot.expires_on, PointLot.id
            )
        ).all()
    return balance, ledger, lots


def _consistent(services: Services, app: Flask) -> list[Any]:
    balance, ledger, lots = _state(services)
    assert balance == sum(ledger) == sum(lot.remaining for lot in lots)
    assert all(0 <= lot.remaining <= lot.points for lot in lots), lots
    assert app.test_cli_runner().invoke(cli, ["ledger", "verify"]).exit_code == 0
    return lots


def _taken_earliest_first(lots: list[Any]) -> None:
    """Emptied lots, then at most one partly taken, then untouched ones."""
    shape = ["empty" if lot.remaining == 0 else "part" if lot.remaining < lot.points else "full"
             for lot in lots]  # fmt: skip
    squeezed = [s for n, s in enumerate(shape) if n == 0 or shape[n - 1] != s]
    allowed = (["empty"], ["empty", "part"], ["empty", "part", "full"], ["empty", "full"],
               ["part"], ["part", "full"], ["full"])  # fmt: skip
    assert squeezed in allowed, lots


# lots of every expiry: concurrent credits, then debits and overdrafts at once ----------------


def test_concurrent_debits_take_earliest_expiry_first_and_refused_ones_leave_no_entry(
    url: str, app: Flask, services: Services, auth: dict[str, str]
) -> None:
    expiries = [30, None, 5, 60, None, 5, 15]
    credits = [lambda http, n=n, d=d: _post(http, url, auth, 10 + n, reference=f"c{n}",
                                            **({} if d is None else {"expires_at": str(
                                                date.today() + timedelta(days=d))}))
               for n, d in enumerate(expiries)]  # fmt: skip
    assert Counter(r.status_code for r in released_together(credits)) == {201: len(expiries)}
    funded = sum(10 + n for n in range(len(expiries)))  # 91

    # 7s and 11s: more asked than there is, so some are refused; the last lot is partly taken
    debits = [7 if n % 2 else 11 for n in range(THREADS)]
    responses = released_together([lambda http, p=p: _post(http, url, auth, -p) for p in debits])

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {201, REFUSED}, statuses
    taken = sum(debits[n] for n, r in enumerate(responses) if r.status_code == 201)
    balance, ledger, _ = _state(services)
    assert len([p for p in ledger if p < 0]) == statuses[201]  # no refused entry left behind
    assert balance == funded - taken >= 0
    _taken_earliest_first(_consistent(services, app))


def test_debits_and_credits_of_every_expiry_at_once_keep_balance_ledger_and_lots_equal(
    url: str, app: Flask, services: Services, auth: dict[str, str]
) -> None:
    for points, days in ((20, 3), (20, None), (20, 9)):
        _credit(url, auth, points, days)
    calls: list[Callable[[requests.Session], requests.Response]] = []
    for n in range(THREADS * 2):
        if n % 3 == 0:
            days = (None, 2, 40, 7)[n % 4]
            extra = {} if days is None else {"expires_at": str(date.today() + timedelta(days))}
            calls.append(lambda http, n=n, e=extra: _post(http, url, auth, 4 + n % 3, **e))
        else:
            calls.append(lambda http, n=n: _post(http, url, auth, -(3 + n % 4)))

    statuses = Counter(r.status_code for r in released_together(calls))

    assert set(statuses) <= {201, REFUSED}, statuses
    _consistent(services, app)


# a debit of the whole balance ---------------------------------------------------------------


def test_two_debits_of_the_whole_balance_at_once_take_it_once_and_empty_every_lot(
    url: str, app: Flask, services: Services, auth: dict[str, str]
) -> None:
    for points, days in ((13, None), (8, 40), (21, 2), (5, None), (3, 2)):
        _credit(url, auth, points, days)

    responses = released_together([lambda http: _post(http, url, auth, -50) for _ in range(2)])

    assert sorted(r.status_code for r in responses) == [201, REFUSED]
    assert [r.json()["balance"] for r in responses if r.status_code == 201] == [0]
    lots = _consistent(services, app)
    assert [lot.remaining for lot in lots] == [0] * 5
    after = _post(requests.Session(), url, auth, -1)
    assert after.status_code == REFUSED, after.text
    assert _state(services)[1].count(-50) == 1


def test_the_nightly_expiry_amid_live_debits_empties_the_due_lots_and_keeps_the_sums(
    url: str, app: Flask, services: Services, auth: dict[str, str]
) -> None:
    """The expiry's set-based debit and the live one share the window (64b2f06) and the
    customer's lock: whichever comes first, the other takes from the lots as it left them."""
    for points, days in ((30, 2), (25, None), (20, 4), (40, 30)):
        _credit(url, auth, points, days)
    day = date.today() + timedelta(days=5)
    calls: list[Callable[[requests.Session], Any]] = [
        lambda http: _post(http, url, auth, -9) for _ in range(THREADS - 1)
    ]
    calls.append(lambda http: Expiry(services.db, services.loyalty).run_day(day))

    answers = released_together(calls)

    statuses = Counter(r.status_code for r in answers[:-1])
    assert set(statuses) <= {201, REFUSED}, statuses
    lots = _consistent(services, app)
    assert [lot.remaining for lot in lots if lot.expires_on and lot.expires_on <= day] == [0, 0]
    _taken_earliest_first(lots)


def test_a_refused_debits_reference_is_free_again_while_a_credit_races_its_retries(
    url: str, app: Flask, services: Services, auth: dict[str, str]
) -> None:
    """On PostgreSQL a refused debit's entry is written, then removed in the same transaction;
    a retry of its reference waiting on that entry's key must then write its own, once."""
    _credit(url, auth, 10, 3)
    calls: list[Callable[[requests.Session], requests.Response]] = [
        lambda http: _post(http, url, auth, -15, reference="order-9") for _ in range(THREADS - 1)
    ]
    calls.append(lambda http: _post(http, url, auth, 10))

    responses = released_together(calls)

    debits = Counter(r.status_code for r in responses[:-1])
    assert responses[-1].status_code == 201, responses[-1].text
    assert set(debits) <= {200, 201, REFUSED} and debits[201] <= 1, debits
    assert (debits[200] > 0) <= (debits[201] == 1), debits
    _, ledger, _ = _state(services)
    assert ledger.count(-15) == debits[201]
    replayed = {r.json()["id"] for r in responses[:-1] if r.status_code in (200, 201)}
    assert len(replayed) <= 1
    _taken_earliest_first(_consistent(services, app))
