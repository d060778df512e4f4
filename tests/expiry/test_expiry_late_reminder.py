"""A reminder that goes out late says the days really left: with reminders 14,3, points
credited 10 days before they expire get the first reminder at once, saying 10 (it said 14),
and each reminder still goes once per expiry date."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Flask

from pointbridge.web.cli import cli

DAY = date(2025, 3, 10)  # the day the conftest clock is frozen on
D = timedelta(days=1)


def test_a_late_reminder_says_the_days_left_and_each_reminder_goes_once(
    shop, app: Flask, database_url: str
) -> None:
    shop.jsonl("shop", notice_days="14,3")
    shop.customer("late@example.com", [(100, DAY + 10 * D)])  # 10 days ahead: late for 14
    shop.customer("on-time@example.com", [(50, DAY + 14 * D)])
    shop.deliver()

    for day in (DAY, DAY + 7 * D, DAY + 8 * D, DAY + 11 * D, DAY + 12 * D):
        ran = app.test_cli_runner().invoke(cli, ["expiry", "run", "--date", day.isoformat()])
        assert ran.exit_code == 0, ran.output
    shop.deliver()

    sent = [line for line in shop.jsonl_lines("shop") if line.get("type") == "credit-expires"]
    assert sorted(
        (e["email"], e["data"]["expires_on"], e["data"]["days_before"]) for e in sent
    ) == [
        ("late@example.com", "2025-03-20", 3),
        ("late@example.com", "2025-03-20", 10),
        ("on-time@example.com", "2025-03-24", 3),
        ("on-time@example.com", "2025-03-24", 14),
    ]
