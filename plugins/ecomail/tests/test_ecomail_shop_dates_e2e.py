"""Ecomail's date fields take ``YYYY-MM-DD``: the day as the shop's clock shows it, so a change
just after midnight in Prague is that day's, not UTC's day before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

API_KEY = "eco-dates-key-7f3a"
# 00:30 on 2 March in Prague (CET, UTC+1) is still 1 March in UTC.
HALF_PAST_MIDNIGHT_IN_PRAGUE = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


def test_a_change_at_half_past_midnight_in_prague_is_dated_that_day(
    tmp_path: Path, database_url: str
) -> None:
    account = FakeEcomail(api_key=API_KEY)
    account.add_list("Newsletter", "1")
    with (
        FakeServer(create_app(account), **SERVER_OPTIONS) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        pb.add_integration(
            "eco", "ecomail", {"api_url": api.url, "api_key": API_KEY, "list_id": "1"}
        )
        with time_machine.travel(HALF_PAST_MIDNIGHT_IN_PRAGUE, tick=False):
            customer = pb.create_customer("jana@example.com")
            pb.transaction(customer["id"], 120, "order")
        pb.deliver()
    with account.lock:
        written = account.contacts["jana@example.com"]["custom_fields"]["ellity_last_change_date"]
    assert written == "2026-03-02"
