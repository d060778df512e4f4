"""Changes made over REST at a fixed rate, and read back from what a platform's fake received:
which balance of which customer arrived when, as a contact update or a credit-changed event.

``offer`` credits one point at a time through ``POST /api/customers/{id}/transactions``,
request n sent at start + n / rate (an open loop: a slow server shows as a rate not reached,
not as a slower client), and keeps each change's balance and the time its answer arrived.

Every benchmark customer starts at ``BASE`` points and each change adds one, so in the bodies
the plugins send (Ecomail's ``subscribe-bulk`` and ``tracker/events``, SmartEmailing's
``import`` and ``trigger-event``, Dotdigital's imports and PATCHes, Splio's PATCHes) the
balance is the only number of that size in a contact's item, however the platform names or
types its fields. A contact's item is a JSON object naming an address (``email``,
``emailaddress``, or Dotdigital's ``identifiers``); Splio's PATCH names it in the path.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

BASE = 1_000_000_000


def _balance(node: Any) -> int | None:
    """The largest whole number of at least ``BASE`` in ``node``, JSON text in strings
    included (Ecomail's event value is a JSON string)."""
    found: list[int] = []
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and value >= BASE:
            found.append(value)
        elif isinstance(value, str):
            if value.isdigit() and int(value) >= BASE:
                found.append(int(value))
            elif value.startswith(("{", "[")):
                with contextlib.suppress(ValueError):
                    stack.append(json.loads(value))
    return max(found, default=None)


def _items(node: Any) -> Iterator[tuple[str, Any]]:
    """(address, item) for each object in ``node`` that names one contact."""
    if isinstance(node, dict):
        identifiers = node.get("identifiers")
        email = node.get("email") or node.get("emailaddress") or node.get("individual_id")
        if email is None and isinstance(identifiers, dict):
            email = identifiers.get("email")
        if isinstance(email, str):
            yield email, node
            return
        for value in node.values():
            yield from _items(value)
    elif isinstance(node, list):
        for value in node:
            yield from _items(value)


@dataclass
class Arrivals:
    """Contact updates per address (arrival time, balance), oldest first, the first arrival
    of each (address, balance) credit-changed event, and how many requests carried changes
    of each kind."""

    contacts: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    events: dict[tuple[str, int], float] = field(default_factory=dict)
    # Events that carry no balance (Splio's interactions), per address, oldest first.
    unvalued_events: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, recorded: Iterable[tuple[float, str, str, str]]) -> Arrivals:
        arrivals = cls()
        for at, _method, path, body in sorted(recorded):
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                continue  # not JSON: no change of ours rides in it
            items = list(_items(parsed))
            if not items and "/contacts/" in path:
                items = [(unquote(path.rstrip("/").rsplit("/", 1)[1]), parsed)]
            event = "event" in path.lower()
            balances = [(email.lower(), _balance(item)) for email, item in items]
            if event:
                for email, balance in balances:
                    if balance is None:
                        arrivals.unvalued_events[email].append(at)
                    else:
                        arrivals.events.setdefault((email, balance), at)
            else:
                for email, balance in balances:
                    if balance is not None:
                        arrivals.contacts[email].append((at, balance))
            arrivals.requests["event" if event else "contact"] += any(
                event or balance is not None for _, balance in balances
            )
        return arrivals

    def contact_wait(self, email: str, balance: int, committed: float) -> float | None:
        """Seconds from ``committed`` to the first contact update carrying ``balance`` or a
        later one (the later snapshot carries the change too); None if none arrived."""
        for at, carried in self.contacts.get(email.lower(), ()):
            if carried >= balance:
                return at - committed
        return None

    def event_waits(self, changes: Sequence[tuple[str, int, float]]) -> list[float | None]:
        """Seconds from each (address, balance, commit time) change to its credit-changed
        event; None for one that never arrived. An event without a balance is matched by
        order: a customer's events arrive in the order of the changes (each waits for the
        customer's earlier rows), so the k-th is the k-th change's."""
        balances: dict[str, list[int]] = defaultdict(list)
        for email, balance, _ in changes:
            balances[email.lower()].append(balance)
        for listed in balances.values():
            listed.sort()
        waits: list[float | None] = []
        for email, balance, committed in changes:
            at = self.events.get((email.lower(), balance))
            if at is None:
                unvalued = self.unvalued_events.get(email.lower(), [])
                k = balances[email.lower()].index(balance)
                at = unvalued[k] if k < len(unvalued) else None
            waits.append(None if at is None else at - committed)
        return waits


@dataclass
class Offered:
    """What the REST load did: each change's (e-mail, balance after, answer time)."""

    rate: float
    changes: list[tuple[str, int, float]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    last: float = 0.0

    @property
    def achieved(self) -> float:
        return len(self.changes) / max(self.last - self.started, 1e-9)


def offer(
    base: str, token: str, customers: list[tuple[int, str]], rate: float, seconds: float
) -> Offered:
    """Credits of one point at ``rate``/s for ``seconds``: request n at start + n / rate, from
    up to 16 keep-alive connections (as many as the server's 2 x 8 threads), enough for the
    rate at up to 80 ms an answer."""
    load = Offered(rate, started=time.time() + 0.5)
    end = load.started + seconds
    counter = itertools.count()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def run() -> None:
        connection = http.client.HTTPConnection(base, timeout=60)
        while True:
            with lock:
                n = next(counter)
            scheduled = load.started + n / rate
            if scheduled >= end:
                return
            time.sleep(max(0.0, scheduled - time.time()))
            customer_id, email = customers[n % len(customers)]
            body = json.dumps({"points": 1, "reason": "order", "reference": f"latency-{n}"})
            path = f"/api/customers/{customer_id}/transactions"
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            done = time.time()
            with lock:
                load.statuses[response.status] = load.statuses.get(response.status, 0) + 1
                load.last = max(load.last, done)
                if response.status == 201:
                    load.changes.append((email, json.loads(answer)["balance"], done))

    threads = [threading.Thread(target=run) for _ in range(max(4, min(16, int(rate / 12.5))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return load


def percentile(waits: list[float], share: float) -> float | None:
    if not waits:
        return None
    ordered = sorted(waits)
    return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]
