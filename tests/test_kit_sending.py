"""Kit helpers for item-by-item sending: a customer's items kept in order, an outage noticed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pointbridge import PermanentError, RateLimited, TransientError, send_each, send_events
from pointbridge.contract.events import Event, EventType
from pointbridge.kit.outage import FailureStreak


def test_in_order_holds_back_the_later_items_of_a_key_whose_item_failed() -> None:
    tried: list[tuple[str, int]] = []

    def send(item: tuple[str, int]) -> None:
        tried.append(item)
        if item == ("ann", 1):
            raise TransientError("timed out")

    items = [("ann", 1), ("bob", 2), ("ann", 3), ("bob", 4)]
    failures = send_each(items, send, key=lambda item: item[1], in_order=lambda item: item[0])

    assert tried == [("ann", 1), ("bob", 2), ("bob", 4)]
    assert [(f.key, type(f.error)) for f in failures] == [(1, TransientError), (3, TransientError)]
    assert "earlier item" in str(failures[1].error)


def test_in_order_lets_a_permanently_refused_item_pass_its_turn() -> None:
    tried: list[int] = []

    def send(item: int) -> None:
        tried.append(item)
        if item == 1:
            raise PermanentError("refused")

    failures = send_each([1, 2], send, key=int, in_order=lambda item: "same customer")

    assert tried == [1, 2]
    assert [f.key for f in failures] == [1]


def test_a_failure_streak_counts_failed_requests_in_a_row_only() -> None:
    streak = FailureStreak(2)
    answers = iter(["timeout", "ok", "timeout", "refused", "timeout", "timeout", "unsent"])

    def send(item: int) -> None:
        with streak.watch():
            answer = next(answers)
            if answer == "timeout":
                raise TransientError("timed out")
        if answer == "refused":
            # The platform answered: no outage, whatever the plugin makes of the answer.
            raise PermanentError("refused")

    failures = send_each(range(7), send, key=int, looks_down=streak)

    assert [type(f.error) for f in failures] == [
        TransientError,
        TransientError,
        PermanentError,
        TransientError,
        TransientError,
        RateLimited,
    ]
    assert streak()


def test_a_failure_streak_lets_other_errors_through_untouched() -> None:
    streak = FailureStreak(1)
    with pytest.raises(RateLimited), streak.watch():
        raise RateLimited("slow down", retry_after=3)
    assert not streak()


def test_send_events_keeps_each_customers_events_in_order() -> None:
    """The outbound webhooks plugin sent a customer's later event after its earlier one had
    failed; send_events holds it back for every one-request-an-event platform."""
    now = datetime.now(UTC)
    events = [
        Event(n, EventType.CREDIT_CHANGED, customer, f"{customer}@x.cz", now, {})
        for n, customer in ((1, 7), (2, 8), (3, 7))
    ]
    sent: list[int] = []

    def send(event: Event) -> None:
        if event.id == 1:
            raise TransientError("timeout")
        sent.append(event.id)

    failed = {f.key: type(f.error) for f in send_events(events, send)}
    assert sent == [2] and failed == {1: TransientError, 3: TransientError}
