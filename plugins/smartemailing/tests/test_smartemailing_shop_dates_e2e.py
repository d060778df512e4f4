"""SmartEmailing's date fields read as the shop's clock: a change just after midnight in
Prague is that day's, written as ``YYYY-MM-DD HH:MM:SS`` without an offset."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from pointbridge_smartemailing.mapping import wanted_fields

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

# 00:30 on 2 March in Prague (CET, UTC+1) is still 1 March in UTC.
HALF_PAST_MIDNIGHT_IN_PRAGUE = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


@pytest.mark.parametrize(
    ("settings", "written"),
    [
        ({}, "2026-03-02 00:30:00"),  # the expiry job's zone, Europe/Prague by default
        ({"timezone": "UTC"}, "2026-03-01 23:30:00"),
    ],
)
def test_the_last_change_date_is_the_shops_day(
    tmp_path: Path, database_url: str, settings: dict[str, str], written: str
) -> None:
    fake = FakeSmartEmailing(contactlists={1: "Newsletter"})
    for spec in wanted_fields("ellity_"):
        fake.add_customfield(spec.name, spec.type)
    with (
        FakeServer(create_app(fake), **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url, **settings) as pb,
    ):
        pb.add_integration(
            "se",
            "smartemailing",
            {"api_url": api.url, "username": fake.username, "api_key": fake.api_key},
        )
        with time_machine.travel(HALF_PAST_MIDNIGHT_IN_PRAGUE, tick=False):
            customer = pb.create_customer("jana@example.com")
            pb.transaction(customer["id"], 120, "order")
        pb.deliver()
    assert fake.field_values("jana@example.com")["ellity_last_change_date"] == written
