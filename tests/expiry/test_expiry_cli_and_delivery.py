"""What an admin sees (``pointbridge expiry run``) and what the platform receives."""

from __future__ import annotations

from datetime import date, timedelta

from pointbridge.web.cli import cli

DAY = date(2025, 3, 10)  # the day the conftest clock is frozen on
D = timedelta(days=1)


def test_dry_run_prints_counts_and_a_sample_and_changes_nothing(shop, app, database_url):
    shop.jsonl("shop", notice_days=7)
    for n in range(12):
        shop.customer(f"c{n:02}@example.com", [(10, DAY), (1, DAY + 30 * D)])
    shop.customer("ana@example.com", [(100, DAY - 2 * D), (60, DAY + 7 * D)])
    before = shop.row_counts()
    runner = app.test_cli_runner()

    result = runner.invoke(cli, ["expiry", "run", "--dry-run"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # Today in Prague by default; every due customer is counted, not just the sample.
    assert lines[0] == "2025-03-10: would expire 220 points of 13 customers; would notify: shop: 1"
    assert lines[1] == "  expire 10 points of c00@example.com"
    expire_lines = [line for line in lines if line.startswith("  expire ")]
    assert len(expire_lines) == 10, "a sample, not a million lines"
    assert lines[-1] == "  notify shop: ana@example.com, 60 points expire on 2025-03-17"
    assert shop.row_counts() == before

    # Without --dry-run the same command does it, and says so.
    result = runner.invoke(cli, ["expiry", "run", "--date", "2025-03-10"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "2025-03-10: expired 220 points of 13 customers; notices: shop: 1"
    )
    after = shop.row_counts()
    assert after["ledger_entry"] == before["ledger_entry"] + 13
    assert after["job_run"] == before["job_run"] + 1
    assert after["sum(remaining)"] == before["sum(remaining)"] - 220

    bad = runner.invoke(cli, ["expiry", "run", "--date", "10.3.2025"])
    assert bad.exit_code != 0
    assert "10.3.2025" in bad.output


def test_the_expired_customers_snapshot_reaches_the_platform(shop, database_url):
    shop.jsonl("shop")
    ana = shop.customer("ana@example.com", [(100, DAY), (60, DAY + 20 * D), (40, DAY + 20 * D)])
    bob = shop.customer("bob@example.com", [(30, DAY)])
    shop.deliver()
    sent_before = len(shop.jsonl_lines("shop"))

    shop.run(DAY)
    shop.deliver()

    sent = shop.jsonl_lines("shop")[sent_before:]
    contacts = {line["customer_id"]: line for line in sent if line["kind"] == "contact"}
    assert contacts.keys() == {ana, bob}
    assert contacts[ana]["points"] == 100
    assert contacts[ana]["next_expiration_date"] == "2025-03-30"
    assert contacts[ana]["next_expiration_points"] == 100
    assert contacts[ana]["last_change_points"] == -100
    assert contacts[ana]["last_change_at"].startswith("2025-03-10")
    assert (contacts[bob]["points"], contacts[bob]["next_expiration_date"]) == (0, None)
    assert contacts[bob]["next_expiration_points"] == 0
    events = sorted(
        (line["email"], line["type"], line["data"]) for line in sent if line["kind"] == "event"
    )
    assert events == [
        (
            "ana@example.com",
            "credit-changed",
            {"points": -100, "balance": 100, "reason": "expiration"},
        ),
        ("ana@example.com", "points-expired", {"points": 100, "balance": 100}),
        (
            "bob@example.com",
            "credit-changed",
            {"points": -30, "balance": 0, "reason": "expiration"},
        ),
        ("bob@example.com", "points-expired", {"points": 30, "balance": 0}),
    ]
