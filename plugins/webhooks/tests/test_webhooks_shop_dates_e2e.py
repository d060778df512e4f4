"""A contact update's ``last_change_at`` is ISO 8601 with the shop's offset: the same instant
as in UTC, dated as the shop's clock shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import time_machine
from pointbridge_webhooks.receiver import SECRET, Receiver, create_app

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

HALF_PAST_MIDNIGHT_IN_PRAGUE = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def test_the_contact_update_carries_the_shops_time(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver()
    with (
        FakeServer(create_app(receiver)) as endpoint,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        pb.add_integration("hooks", "webhooks", {"url": endpoint.url + "/hook", "secret": SECRET})
        with time_machine.travel(HALF_PAST_MIDNIGHT_IN_PRAGUE, tick=False):
            customer = pb.create_customer("jana@example.com")
            pb.transaction(customer["id"], 120, "order")
        pb.deliver()
    assert receiver.of_type("contact.updated")[-1]["data"]["last_change_at"] == (
        "2026-03-02T00:30:00+01:00"
    )
