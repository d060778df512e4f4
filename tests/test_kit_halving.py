"""``refused_alone``: the items a bulk call refuses, found by halving the refused batches."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pointbridge import RateLimited
from pointbridge.kit.halving import refused_alone


def test_only_the_bad_items_come_back_and_every_good_one_is_taken() -> None:
    taken: list[str] = []
    calls: list[int] = []

    def send(batch: Sequence[str]) -> str | None:
        calls.append(len(batch))
        bad = [item for item in batch if "@" not in item]
        if bad:
            return f"invalid address {bad[0]}"
        taken.extend(batch)
        return None

    items = ["a@x", "b@x", "broken", "d@x", "e@x", "f@x", "oops", "h@x"]
    refused = refused_alone(items, send)

    assert refused == [("broken", "invalid address broken"), ("oops", "invalid address oops")]
    assert sorted(taken) == ["a@x", "b@x", "d@x", "e@x", "f@x", "h@x"]
    assert calls[0] == 8 and len(calls) < len(items) * 2


def test_a_batch_taken_whole_is_one_call_and_an_empty_one_none() -> None:
    calls: list[int] = []

    def send(batch: Sequence[int]) -> None:
        calls.append(len(batch))

    assert refused_alone([1, 2, 3], send) == [] and refused_alone([], send) == []
    assert calls == [3]


def test_an_error_the_send_raises_stops_the_search() -> None:
    def send(batch: Sequence[int]) -> str | None:
        if len(batch) < 4:
            raise RateLimited("slow down", retry_after=5)
        return "refused"

    with pytest.raises(RateLimited):
        refused_alone([1, 2, 3, 4], send)
