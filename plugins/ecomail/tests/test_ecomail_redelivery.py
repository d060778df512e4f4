"""At least once, recognisably: an event Ecomail received twice carries one event_id."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge
from pointbridge.testing.lost import LosesAnswers

API_KEY = "eco-redelivery-key-91ab"


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


def test_an_event_whose_answer_was_lost_is_sent_again_with_the_same_event_id(
    tmp_path: Path, database_url: str
) -> None:
    account = FakeEcomail(api_key=API_KEY)
    list_id = account.add_list("Newsletter")
    # Ecomail records the first tracker event; pointbridge never hears back.
    lossy = LosesAnswers(create_app(account), "POST", "/tracker/events")
    with (
        FakeServer(lossy, **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        settings = {"api_url": api.url, "api_key": API_KEY, "list_id": list_id}
        pb.add_integration("eco", "ecomail", settings)
        for email, points in (("jana@example.com", 120), ("petr@example.com", 80)):
            pb.transaction(pb.create_customer(email)["id"], points, "order")
        pb.deliver()
        assert pb.pending() == pb.dead() == 0

    sent = [r.json()["event"]["value"] for r in api.requests_to("POST", "/tracker/events")]
    # Jana's event (answer lost), Petr's, then Jana's again: the same id both times.
    assert [(v["points"], v["event_id"]) for v in sent] == [
        (120, sent[0]["event_id"]),
        (80, sent[1]["event_id"]),
        (120, sent[0]["event_id"]),
    ]
    with account.lock:
        received = Counter(json.loads(e["value"])["event_id"] for e in account.events)
    assert received == {sent[0]["event_id"]: 2, sent[1]["event_id"]: 1}
