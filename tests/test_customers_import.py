"""`pointbridge customers import`: the whole file checked first, loaded in batches, quietly."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import missing
from sqlalchemy import func, select

from pointbridge.loyalty.audit import AuditReport, audit_balances
from pointbridge.loyalty.import_rows import COLUMNS
from pointbridge.loyalty.import_writer import CustomerWriter
from pointbridge.loyalty.rules import REFERRAL_ALPHABET, REFERRAL_LENGTH
from pointbridge.loyalty.schema import CustomerImport
from pointbridge.services import Services
from pointbridge.storage.models import Customer, LedgerEntry, OutboxMessage
from pointbridge.storage.secrets import KEY_FILE, SecretBox, load_key
from pointbridge.testing.fuzz import fuzz_settings
from pointbridge.web.cli import cli

FUTURE = (date.today() + timedelta(days=365)).isoformat()
PIN = "S3cretPin"
CSV = f"""email,first_name,registered,tier_name,missions,pin,points,expires_at
Jana@Example.com,Jana,yes,Gold,2,{PIN},120,{FUTURE}
petr@example.com,Petr,0,,,,0,
"""


def _import(app: Flask, path: Path, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, ["customers", "import", str(path), *args])


def _write(tmp_path: Path, text: str | bytes) -> Path:
    source = tmp_path / "customers.csv"
    source.write_bytes(text if isinstance(text, bytes) else text.encode())
    return source


def _count(services: Services, model: type) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def _add_integration(services: Services, tmp_path: Path) -> None:
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl")})


def _outbox(services: Services) -> list[tuple[str, str | None]]:
    with services.db.read() as session:
        rows = session.execute(select(OutboxMessage.kind, OutboxMessage.event_type))
        return sorted((kind, event) for kind, event in rows)


def test_import_creates_then_leaves_an_unchanged_file_alone(app, services, tmp_path) -> None:
    source = _write(tmp_path, CSV)
    first = _import(app, source)
    assert first.exit_code == 0, first.output
    assert "created 2, updated 0, unchanged 0, opening balances credited 1" in first.output

    second = _import(app, source)
    assert second.exit_code == 0, second.output
    assert "created 0, updated 0, unchanged 2, opening balances credited 0" in second.output

    with services.db.read() as session:
        jana = session.scalar(select(Customer).where(Customer.email == "jana@example.com"))
        assert (jana.first_name, jana.registered, jana.tier_name, jana.missions, jana.pin) == (
            "Jana",
            True,
            "Gold",
            2,
            PIN,
        )
        assert jana.balance == 120  # credited once, not once per import
        assert session.scalar(select(func.count(LedgerEntry.id))) == 1
    report = AuditReport()
    assert list(audit_balances(services.db, report)) == [] and report.customers == 2
    assert PIN not in first.output + second.output


def test_imported_customers_get_referral_codes_of_the_form_the_api_gives(
    app, client, auth, services, tmp_path
) -> None:
    lines = "".join(f"c{n}@example.com,{n}\n" for n in range(200))
    assert _import(app, _write(tmp_path, "email,points\n" + lines)).exit_code == 0
    created = client.post("/api/customers", json={"email": "api@example.com"}, headers=auth)
    with services.db.read() as session:
        codes = session.scalars(select(Customer.referral_code)).all()
    code = re.compile(f"[{REFERRAL_ALPHABET}]{{{REFERRAL_LENGTH}}}")
    assert created.json["referral_code"] in codes and len(codes) == 201
    assert all(code.fullmatch(c) for c in codes) and len(set(codes)) == 201
    # Every letter of the alphabet turns up: the codes are drawn from all of it.
    assert set("".join(codes)) == set(REFERRAL_ALPHABET)


# --- one set of rules: the REST API and the import refuse the same values alike ---------

REFUSED = [
    ("missions", -5),
    ("missions", 99999999999),
    ("rewards", 1_000_000_001),
    ("first_name", "nul\x00byte"),
    ("first_name", "x" * 201),
    ("tier_id", "t" * 101),
    ("pin", "12"),
    ("registered", "maybe"),
    ("email", "not-an-email"),
    ("points_to_next_tier", -1),
    ("points_to_next_tier", 1_000_000_001),
    ("tier_expires_at", "2027-02-30"),
]


@pytest.mark.parametrize("column,value", REFUSED)
def test_rest_and_import_refuse_a_value_with_the_same_message(
    app, client, auth, services, tmp_path, column, value
) -> None:
    body = {"email": "a@example.com", column: value}
    response = client.post("/api/customers", json=body, headers=auth)
    assert response.status_code == 422
    (api_message,) = response.json["errors"][column]

    header, row = ("email", value) if column == "email" else (f"email,{column}", f"a@x.cz,{value}")
    result = _import(app, _write(tmp_path, f"{header}\n{row}\n"))
    assert result.exit_code == 1
    with (tmp_path / "customers.csv.errors.csv").open(encoding="utf-8") as report:
        assert list(csv.reader(report))[1:] == [["2", column, api_message]]
    assert _count(services, Customer) == 0


def test_an_expiry_in_the_past_is_refused_like_the_api_refuses_it(
    app, client, auth, services, tmp_path
) -> None:
    customer = client.post("/api/customers", json={"email": "a@example.com"}, headers=auth).json
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    response = client.post(
        f"/api/customers/{customer['id']}/transactions",
        json={"points": 5, "reason": "order", "expires_at": yesterday},
        headers=auth,
    )
    (api_message,) = response.json["errors"]["expires_at"]
    result = _import(
        app, _write(tmp_path, f"email,points,expires_at\nb@example.com,5,{yesterday}\n")
    )
    assert result.exit_code == 1
    assert f"line 2, expires_at: {api_message}" in result.output


# --- bad files: a clear report, nothing changed, never a traceback or a PIN ---------------


def _bad_utf8_at_line_1202() -> bytes:
    rows = [f"c{n}@example.com,{PIN},Name".encode() for n in range(1, 1201)]
    rows.insert(1200, b"bad@example.com," + PIN.encode() + b",Jan\xe9k")
    return b"email,pin,first_name\n" + b"\n".join(rows) + b"\n"


BAD_FILES = {
    "short row": (
        "email,first_name,points\na@x.cz\n",
        "line 2, first_name: The row has 1 fields",
    ),
    "huge field": (
        f"email,pin,first_name\na@x.cz,{PIN},{'x' * 131_073}\n",
        "line 2: Not CSV: field larger than field limit",
    ),
    "not utf-8": (_bad_utf8_at_line_1202(), "line 1202, first_name: Not UTF-8: byte 0xe9"),
    "quote not closed": (
        'email,first_name,points\na@x.cz,"Jana,5\nb@x.cz,Petr,1\n',
        "line 2, first_name: A quote opened in this field is not closed.",
    ),
    "text after a quote": (
        'email,first_name,points\na@x.cz,"Jana"x,5\n',
        "line 2, first_name: Text after the closing quote",
    ),
    "long row": ("email,points\na@x.cz,5,6\n", "line 2, field 3: The row has 3 fields"),
    "huge missions": (
        f"email,pin,missions\na@x.cz,{PIN},99999999999\n",
        "line 2, missions: Must be greater than or equal to 0",
    ),
    "nul byte": (
        f"email,pin,last_name\na@x.cz,{PIN},a\x00b\n",
        "line 2, last_name: Must not contain NUL characters",
    ),
    "negative missions": (f"email,pin,missions\na@x.cz,{PIN},-5\n", "line 2, missions: Must be"),
    "past expiry": (
        f"email,pin,points,expires_at\na@x.cz,{PIN},10,2020-01-01\n",
        "line 2, expires_at: Must be a future date.",
    ),
    # Which row's points, which profile? No one right answer: the second line is refused.
    "one e-mail twice": (
        "email,points\nz@x.cz,100\ny@x.cz,1\nZ@x.cz,50\n",
        "line 4, email: email z@x.cz is on an earlier line too",
    ),
    "one external id twice": (
        "email,external_id\na@x.cz,E1\nb@x.cz,E1\n",
        "line 3, external_id: external_id E1 is on an earlier line too",
    ),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_reported_and_changes_nothing(app, services, tmp_path, name) -> None:
    text, expected = BAD_FILES[name]
    result = _import(app, _write(tmp_path, text))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert expected in result.output
    assert "Nothing imported" in result.output and "Traceback" not in result.output
    report = (tmp_path / "customers.csv.errors.csv").read_text(encoding="utf-8")
    assert PIN not in result.output + report
    assert _count(services, Customer) == 0 and _count(services, LedgerEntry) == 0


def test_a_dry_run_checks_the_file_and_writes_nothing(app, services, tmp_path) -> None:
    result = _import(app, _write(tmp_path, CSV), "--dry-run")
    assert result.exit_code == 0 and "checked 2 rows: 0 bad" in result.output
    assert _count(services, Customer) == 0


def test_skip_invalid_imports_exactly_the_valid_rows_and_exits_1(app, services, tmp_path) -> None:
    text = "email,missions\nok1@x.cz,1\nbad@x.cz,-5\nok2@x.cz,2\nshort\n"
    result = _import(app, _write(tmp_path, text), "--skip-invalid")
    assert result.exit_code == 1
    assert "created 2" in result.output and "skipped 2" in result.output
    with services.db.read() as session:
        emails = set(session.scalars(select(Customer.email)))
    assert emails == {"ok1@x.cz", "ok2@x.cz"}


def test_bad_rows_among_thousands_of_good_ones_are_each_found_in_line_order(
    app, services, tmp_path
) -> None:
    # Good rows are judged a thousand at a time; each bad one must still be named alone.
    lines = [b"email,first_name,tier_name,missions,points"]
    lines += [f"c{n}@x.cz,Name{n},{'Gold' if n % 3 else ''},{n % 7},{n % 2 * 10}".encode()
              for n in range(2_400)]  # fmt: skip
    bad = {
        2: b"c0@x.cz,Jana,,-5,1",  # a count out of range, in the first row
        1_001: b"not-an-email,Jana,,1,1",
        1_502: b"c1500@x.cz,Jan\xe9,,1,1",  # not UTF-8
        1_700: b'c1698@x.cz,"Eva,,1,1',  # a quote left open
        2_401: b"c1@x.cz,Again,,1,1",  # the customer of line 3 again
    }
    for line, text in bad.items():
        lines[line - 1] = text
    source = _write(tmp_path, b"\n".join(lines) + b"\n")

    result = _import(app, source, "--skip-invalid")
    assert result.exit_code == 1, result.output
    assert "checked 2400 rows: 5 bad" in result.output
    with (tmp_path / "customers.csv.errors.csv").open(encoding="utf-8") as report:
        reported = [(int(row["line"]), row["column"]) for row in csv.DictReader(report)]
    assert reported == [
        (2, "missions"), (1_001, "email"), (1_502, "first_name"), (1_700, "first_name"),
        (2_401, "email"),
    ]  # fmt: skip
    assert "created 2395" in result.output
    with services.db.read() as session:
        tiers = dict(session.execute(select(Customer.email, Customer.tier_name)).all())
        assert session.scalar(select(func.sum(Customer.balance))) == 10 * sum(
            n % 2 for n in range(2_400) if n + 2 not in bad
        )
    assert (tiers["c1@x.cz"], tiers["c3@x.cz"]) == ("Gold", None)


def test_a_quote_left_open_spoils_its_line_only(app, services, tmp_path) -> None:
    # Not the lines after it: each of them is read, checked and imported on its own.
    text = 'email,first_name\na@x.cz,"Jana\nb@x.cz,Petr\nc@x.cz,"Eva\n'
    result = _import(app, _write(tmp_path, text), "--skip-invalid")
    assert result.exit_code == 1 and "checked 3 rows: 2 bad" in result.output
    assert "line 4, first_name: A quote opened" in result.output
    with services.db.read() as session:
        assert list(session.scalars(select(Customer.first_name))) == ["Petr"]


def test_a_file_without_an_email_column_is_refused(app, tmp_path: Path) -> None:
    result = _import(app, _write(tmp_path, "mail,name\na@b.cz,A\n"))
    assert result.exit_code == 1 and "'email' column" in result.output


# --- quiet by default ---------------------------------------------------------------------


def test_reimporting_the_same_file_queues_nothing(app, services, tmp_path) -> None:
    _add_integration(services, tmp_path)
    source = _write(tmp_path, CSV)
    assert _import(app, source).exit_code == 0
    # One contact update per customer; no event for the opening balance or the PIN.
    assert _outbox(services) == [("contact", None), ("contact", None)]

    assert _import(app, source).exit_code == 0
    assert len(_outbox(services)) == 2


def test_a_changed_row_queues_one_contact_update(app, services, tmp_path) -> None:
    _add_integration(services, tmp_path)
    _import(app, _write(tmp_path, CSV))
    changed = CSV.replace("Jana,yes,Gold", "Jana,yes,Platinum").replace(PIN, "NewPin99")
    assert _import(app, _write(tmp_path, changed)).exit_code == 0
    assert _outbox(services) == [("contact", None)] * 3


def test_events_opts_in_to_pin_and_opening_balance_events(app, services, tmp_path) -> None:
    """Jana is registered: her PIN is kept but mailed nowhere, as REST does. Eva is not, and
    her PIN goes out as pin-changed."""
    _add_integration(services, tmp_path)
    unregistered = CSV + "eva@example.com,Eva,no,,,Eva12345,,\n"
    assert _import(app, _write(tmp_path, unregistered), "--events").exit_code == 0
    assert _outbox(services) == [
        ("contact", None),
        ("contact", None),
        ("contact", None),
        ("event", "credit-changed"),
        ("event", "pin-changed"),
    ]
    assert _events(services, "eva@example.com") == [("pin-changed", {"pin": "Eva12345"})]


def _events(services: Services, email: str) -> list[tuple[str, dict[str, Any]]]:
    """The events queued for the customer with ``email``, oldest first."""
    with services.db.read() as session:
        rows = session.execute(
            select(OutboxMessage.event_type, OutboxMessage.payload)
            .join(Customer, Customer.id == OutboxMessage.customer_id)
            .where(Customer.email == email, OutboxMessage.event_type.is_not(None))
            .order_by(OutboxMessage.id)
        )
        return [(event, payload) for event, payload in rows]


def test_events_sends_what_rest_sends_for_the_same_change_once(
    app, client, auth, services, tmp_path
) -> None:
    """A tier moved, a referral completed and a balance past a reward threshold: the import
    with --events queues what REST queues for it (tier-changed, referral-completed and
    reward-available were missing), and the same file again queues nothing."""
    with services.db.transaction() as session:
        services.integrations.add(
            session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl"), "reward_thresholds": "100"}
        )
    start = "email,tier_id,tier_name,referrals\n{}\n"
    before = "\n".join(f"{name}@x.cz,1,Bronze,2" for name in ("rest", "file"))
    assert _import(app, _write(tmp_path, start.format(before))).exit_code == 0
    assert _events(services, "rest@x.cz") == _events(services, "file@x.cz") == []

    rest = client.get("/api/customers?email=rest@x.cz", headers=auth).json["items"][0]
    change = {"tier_id": "2", "tier_name": "Silver", "referrals": 3}
    patched = client.patch(f"/api/customers/{rest['id']}", json=change, headers=auth)
    credit = {"points": 120, "reason": "import"}
    posted = client.post(f"/api/customers/{rest['id']}/transactions", json=credit, headers=auth)
    assert (patched.status_code, posted.status_code) == (200, 201)
    source = _write(
        tmp_path, "email,tier_id,tier_name,referrals,points\nfile@x.cz,2,Silver,3,120\n"
    )
    assert _import(app, source, "--events").exit_code == 0

    expected = [
        ("tier-changed", {"old_tier_id": "1", "old_tier_name": "Bronze", "new_tier_id": "2",
                          "new_tier_name": "Silver", "direction": "up"}),
        ("referral-completed", {"referrals": 3, "added": 1}),
        ("credit-changed", {"points": 120, "balance": 120, "reason": "import"}),
        ("reward-available", {"threshold": 100, "balance": 120}),
    ]  # fmt: skip
    assert _events(services, "file@x.cz") == _events(services, "rest@x.cz") == expected

    queued = len(_outbox(services))
    assert _import(app, source, "--events").exit_code == 0
    assert len(_outbox(services)) == queued


def test_a_referral_count_a_quiet_import_lowered_is_not_announced_when_raised_back(
    app, services, tmp_path
) -> None:
    """An import without --events still keeps the highest referral count a customer had: 3,
    lowered to 1 quietly, raised to 3 with --events completes no referral; to 4, one."""
    _add_integration(services, tmp_path)
    for referrals, flags in ((3, ()), (1, ()), (3, ("--events",)), (4, ("--events",))):
        source = _write(tmp_path, f"email,referrals\neva@x.cz,{referrals}\n")
        assert _import(app, source, *flags).exit_code == 0
    assert _events(services, "eva@x.cz") == [("referral-completed", {"referrals": 4, "added": 1})]


def test_tier_progress_is_imported_as_the_api_takes_it(
    app, client, auth, services, tmp_path
) -> None:
    """tier_expires_at and points_to_next_tier, which the API's PATCH takes: a change queues one
    contact update, the same file again nothing, an empty cell clears them as null does."""
    _add_integration(services, tmp_path)
    source = _write(tmp_path, f"email,tier_expires_at,points_to_next_tier\na@x.cz,{FUTURE},250\n")
    assert _import(app, source).exit_code == 0
    shown = client.get("/api/customers?email=a@x.cz", headers=auth).json["items"][0]
    assert (shown["tier_expires_at"], shown["points_to_next_tier"]) == (FUTURE, 250)
    assert len(_outbox(services)) == 1

    assert "unchanged 1" in _import(app, source).output
    assert len(_outbox(services)) == 1

    _write(tmp_path, f"email,tier_expires_at,points_to_next_tier\na@x.cz,{FUTURE},40\n")
    assert "updated 1" in _import(app, source).output
    assert len(_outbox(services)) == 2

    _write(tmp_path, "email,tier_expires_at,points_to_next_tier\na@x.cz,,\n")
    assert "updated 1" in _import(app, source).output
    shown = client.get(f"/api/customers/{shown['id']}", headers=auth).json
    assert (shown["tier_expires_at"], shown["points_to_next_tier"]) == (None, None)
    assert _outbox(services) == [("contact", None)] * 3


# --- resumable -----------------------------------------------------------------------------


def test_an_interrupted_import_resumes_after_the_last_committed_batch(
    app, services, tmp_path, monkeypatch
) -> None:
    lines = [f"c{n}@example.com,{n}" for n in range(1, 11)]
    source = _write(tmp_path, "email,points\n" + "\n".join(lines) + "\n")
    write = CustomerWriter._write
    calls = []

    def crash_on_third_batch(self, session, latest, result) -> None:
        calls.append(len(latest))
        if len(calls) == 3:
            raise RuntimeError("power cut")
        write(self, session, latest, result)

    monkeypatch.setattr(CustomerWriter, "_write", crash_on_third_batch)
    crashed = _import(app, source, "--batch-size", "3")
    assert isinstance(crashed.exception, RuntimeError)
    assert _count(services, Customer) == 6
    monkeypatch.setattr(CustomerWriter, "_write", write)

    resumed = _import(app, source, "--batch-size", "3", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "created 4," in resumed.output and "resumed after line 7" in resumed.output
    with services.db.read() as session:
        balances = dict(session.execute(select(Customer.email, Customer.balance)).all())
    assert balances == {f"c{n}@example.com": n for n in range(1, 11)}
    assert _count(services, LedgerEntry) == 10


def test_without_a_configured_key_one_is_generated_once_and_reused(tmp_path: Path, caplog) -> None:
    key = load_key(None, tmp_path)
    assert (tmp_path / KEY_FILE).exists() and "POINTBRIDGE_SECRET_KEY is not set" in caplog.text
    token = SecretBox(key).encrypt("api-key")
    assert SecretBox(load_key(None, tmp_path)).decrypt(token) == "api-key"


def test_an_external_id_of_another_customer_is_a_bad_row_found_by_the_check(
    app, client, auth, services, tmp_path
) -> None:
    created = client.post(
        "/api/customers", json={"email": "a@x.cz", "external_id": "x-1"}, headers=auth
    )
    clash = client.post(
        "/api/customers", json={"email": "b@x.cz", "external_id": "x-1"}, headers=auth
    )
    assert (created.status_code, clash.status_code) == (201, 409)
    text = "email,external_id,points\nb@x.cz,x-1,10\nc@x.cz,x-3,5\n"
    result = _import(app, _write(tmp_path, text))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"line 2, external_id: {clash.json['message']}" in result.output
    assert "checked 2 rows: 1 bad" in result.output and "Nothing imported" in result.output
    assert _count(services, Customer) == 1 and _count(services, LedgerEntry) == 0

    own = _import(app, _write(tmp_path, "email,external_id\na@x.cz,x-1\n"), "--dry-run")
    assert own.exit_code == 0 and "checked 1 rows: 0 bad" in own.output


def test_a_customer_the_api_creates_during_the_import_is_merged_not_overwritten(
    app, services, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not services.db.is_postgres:
        pytest.skip("SQLite runs one writer at a time: an API create cannot land mid-batch")
    source = _write(tmp_path, "email,first_name\njana@example.com,Jana\n")
    read_existing = CustomerWriter._existing

    def api_creates_meanwhile(self: CustomerWriter, connection, emails):
        found = read_existing(self, connection, emails)
        if not found and _count(services, Customer) == 0:
            # A shop system creates her, registered with a PIN, between the read and the write.
            with services.db.transaction() as session:
                services.loyalty.create_customer(
                    session, {"email": "jana@example.com", "registered": True, "pin": "4321"}
                )
        return found

    monkeypatch.setattr(CustomerWriter, "_existing", api_creates_meanwhile)
    result = _import(app, source)

    assert result.exit_code == 0, result.output
    with services.db.read() as session:
        jana = session.scalar(select(Customer))
    # The file's first name is applied; what the API set and the file does not name stays.
    assert (jana.first_name, jana.registered, jana.pin) == ("Jana", True, "4321")


def test_a_header_naming_a_column_twice_is_refused(app, services, tmp_path) -> None:
    result = _import(app, _write(tmp_path, "email,email,points\na@x.cz,b@x.cz,5\n"))
    assert result.exit_code == 1 and "names email more than once" in result.output
    assert _count(services, Customer) == 0


def test_a_misspelt_column_is_refused_and_others_are_left_alone(app, services, tmp_path) -> None:
    """A typo'd ``point`` column imported every customer with no points, reporting no error;
    a column that is not pointbridge's at all (a shop's phone numbers) is still left alone."""
    result = _import(app, _write(tmp_path, "email,point\ntypo@x.cz,500\n"))
    assert result.exit_code == 1 and "did you mean 'points'" in result.output
    assert _count(services, Customer) == 0

    result = _import(app, _write(tmp_path, "email,points,phone\nfine@x.cz,500,+420123\n"))
    assert result.exit_code == 0, result.output
    with services.db.read() as session:
        assert session.scalar(select(Customer.balance)) == 500


# --- the fast path agrees with the schema --------------------------------------------------

TRICKY_CELLS = [
    "", " ", "0", "7", "007", "-5", "+5", "1_000", "٣", "1000000000", "1000000001",
    "99999999999999999999", "yes", "YES", "no", "maybe", "True", "1", "on",
    "a@x.cz", " A@X.CZ ", "a@x", "a b@x.cz", "a@x.cz\u202e", "jan\u00e9@x.cz", "a@@x.cz",
    "S3cretPin", "12", "1234\n", "x" * 201, "x" * 200, "t" * 101, "nul\x00", "\ufeffJana",
    FUTURE, "2020-01-01", "2027-02-30", "20270101", "2027-1-01",
]  # fmt: skip


def _by_column(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names = {name for row in rows for name in row}
    return {name: [row.get(name, missing) for row in rows] for name in names}


@fuzz_settings(ci_examples=300)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"email": st.sampled_from(TRICKY_CELLS)},
            optional={
                column: st.one_of(st.sampled_from(TRICKY_CELLS), st.none(), st.text(max_size=12))
                for column in COLUMNS
                if column != "email"
            },
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_fast_path_takes_only_what_the_schema_takes_and_loads_it_alike(rows) -> None:
    schema = CustomerImport()
    fast = schema.load_plain_columns(_by_column(rows), len(rows))
    if fast is not None:
        assert fast == [schema.load(row) for row in rows]


def test_the_fast_path_takes_plain_rows() -> None:
    rows = [
        {"email": " Jana@Example.com", "first_name": "Jana", "registered": "yes",
         "missions": "2", "pin": PIN, "points": "120", "expires_at": FUTURE, "tier_id": None},
        {"email": "petr@example.com", "tier_id": "gold", "points": "0"},
    ]  # fmt: skip
    schema = CustomerImport()
    assert schema.load_plain_columns(_by_column(rows), 2) == [schema.load(row) for row in rows]
