"""At least once, recognisably: an event SmartEmailing received twice carries one event_id."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from pointbridge_smartemailing.mapping import wanted_fields

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge
from pointbridge.testing.lost import LosesAnswers


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


def connect(pb: Pointbridge, fake: FakeSmartEmailing, api: FakeServer) -> None:
    """An active integration; its fields exist already, so install only reads them."""
    for spec in wanted_fields("ellity_"):
        fake.add_customfield(spec.name, spec.type)
    settings = {"api_url": api.url, "username": fake.username, "api_key": fake.api_key}
    pb.add_integration("se", "smartemailing", settings)


def test_a_batch_whose_answer_was_lost_is_sent_again_with_the_same_event_ids(
    tmp_path: Path, database_url: str
) -> None:
    fake = FakeSmartEmailing()
    # SmartEmailing runs the first trigger-event call; pointbridge never hears back.
    lossy = LosesAnswers(create_app(fake), "POST", "/trigger-event")
    with (
        FakeServer(lossy, **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        connect(pb, fake, api)
        for email, points in (("jana@example.com", 120), ("petr@example.com", 80)):
            pb.transaction(pb.create_customer(email)["id"], points, "order")
        pb.deliver()
        assert pb.pending() == pb.dead() == 0

    calls = [r.json() for r in api.requests_to("POST", "/trigger-event")]
    assert len(calls) == 2  # the lost call, then the whole batch again
    first, again = ([(e["payload"]["points"], e["payload"]["event_id"]) for e in c] for c in calls)
    assert first == again
    assert [points for points, _ in first] == [120, 80]
    # What a shop's automation can compare: two events, each received twice under one id.
    with fake.lock:
        received = Counter(e["payload"]["event_id"] for e in fake.events)
    assert sorted(received.values()) == [2, 2]


def test_an_event_after_a_purge_never_reuses_an_earlier_events_id(
    tmp_path: Path, database_url: str
) -> None:
    fake = FakeSmartEmailing()
    with (
        FakeServer(create_app(fake), **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        connect(pb, fake, api)
        customer = pb.create_customer("jana@example.com")["id"]
        pb.transaction(customer, 120, "order")
        pb.deliver()
        tomorrow = (date.today() + timedelta(days=1)).isoformat()
        pb.cli("outbox", "purge", "--delivered-before", tomorrow)
        # The same rows again (a contact update, then a credit's update and event): on
        # SQLite they take the purged rows' ids again.
        pb.update_customer(customer, first_name="Jana")
        pb.transaction(customer, 30, "review")
        pb.deliver()

    with fake.lock:
        ids = [e["payload"]["event_id"] for e in fake.events]
    assert len(ids) == len(set(ids)) == 2
