"""push_contact: what lands in Dotdigital, single contacts and batch imports."""

from __future__ import annotations

import pytest
from pointbridge_dotmailer import MAX_BATCH, install, push_contact
from pointbridge_dotmailer.fake import FakeContact

from pointbridge import PermanentError
from pointbridge.testing.pacing import RecordingPacers

BOOK = 7


def test_single_contact_is_patched_with_its_loyalty_fields(
    installed, dd_state, dd_server, make_contact
) -> None:
    consenting = make_contact(1, email="jana@example.com", marketing_consent=True)
    failures = push_contact(installed, [consenting])
    assert failures == []
    contact = dd_state.contacts["jana@example.com"]
    assert contact.data_fields == {
        "ELLITY_POINTS": 120,
        "ELLITY_REFERRAL_URL": "https://shop.example.com/r/JANA1",
        "ELLITY_STATE": "member",
        "ELLITY_TIER_NAME": "Gold",
        "ELLITY_TIER_ID": "gold",
        "ELLITY_LIFETIME_PTS": 500,
        "ELLITY_TIER_EXPIRES": "2027-01-31",  # ISO 8601, the day the shop set
        "ELLITY_TO_NEXT_TIER": 380,
        "FIRSTNAME": "Jana",
        "LASTNAME": "Nováková",
    }
    assert contact.lists == {BOOK}
    (patch,) = dd_server.requests_to("PATCH", "/contacts/v3/email/jana@example.com")
    assert patch.query == {"merge-option": "overwrite"}
    assert "channelProperties" not in patch.json()
    assert not dd_server.requests_to("PUT", "/contacts/v3/import")


def test_a_new_contact_without_consent_is_created_unsubscribed_and_never_mailed(
    installed, dd_state, dd_server, make_contact
) -> None:
    push_contact(installed, [make_contact(1, email="jana@example.com")])
    assert dd_state.contacts["jana@example.com"].status == "unsubscribed"
    (patch,) = dd_server.requests_to("PATCH", "/contacts/v3/email/jana@example.com")
    assert patch.json()["channelProperties"] == {
        "email": {"status": "unsubscribed", "optInType": "unknown"}
    }
    assert dd_state.optin_emails == []


def test_whether_a_contact_exists_is_asked_once_not_at_every_update(
    installed, dd_state, dd_server, make_contact
) -> None:
    customers = [make_contact(n, email=f"c{n}@example.com") for n in range(1, 4)]
    for _ in range(3):  # three rounds of updates, as a shop's orders bring them
        assert push_contact(installed, customers) == []
        assert push_contact(installed, customers[:1]) == []
    lookups = [
        r for r in dd_server.requests if r.method == "GET" and "/contacts/v3/email/" in r.path
    ]
    assert len(lookups) == 3  # one per customer, at their first write
    assert {dd_state.contacts[c.email].status for c in customers} == {"unsubscribed"}


def test_existing_contact_joins_the_book_and_keeps_its_subscription(
    installed, dd_state, make_contact
) -> None:
    dd_state.contacts["old@example.com"] = FakeContact(
        1, "old@example.com", {"ELLITY_TIER_NAME": "Silver"}, {8}, status="unsubscribed"
    )
    push_contact(installed, [make_contact(5, email="old@example.com", tier_name=None)])
    contact = dd_state.contacts["old@example.com"]
    assert contact.lists == {8, BOOK}
    assert contact.status == "unsubscribed"
    assert contact.data_fields["ELLITY_TIER_NAME"] is None  # no tier any more: cleared (null)
    assert dd_state.resubscribed == [] and dd_state.optin_emails == []


def test_guest_without_tier_or_referral(installed, dd_state, make_contact) -> None:
    guest = make_contact(
        3, registered=False, tier_id=None, tier_name=None, referral_link=None, points=0
    )
    push_contact(installed, [guest])
    fields = dd_state.contacts["customer3@example.com"].data_fields
    assert fields["ELLITY_STATE"] == "guest"
    assert fields["ELLITY_POINTS"] == 0
    assert fields["ELLITY_TIER_ID"] is None and fields["ELLITY_REFERRAL_URL"] is None


def test_tier_progress_the_shop_no_longer_sends_is_cleared_with_null(
    installed, dd_state, make_contact
) -> None:
    push_contact(installed, [make_contact(3)])
    push_contact(installed, [make_contact(3, tier_expires_at=None, points_to_next_tier=None)])
    fields = dd_state.contacts["customer3@example.com"].data_fields
    assert (fields["ELLITY_TIER_EXPIRES"], fields["ELLITY_TO_NEXT_TIER"]) == (None, None)
    assert fields["ELLITY_LIFETIME_PTS"] == 500


def test_an_integration_installed_before_the_tier_progress_fields_keeps_writing(
    make_integration, dd_state, make_contact
) -> None:
    # Installed by a version that knew five fields: the account has only those, and a write
    # naming a field it lacks would refuse every contact until the admin installs again.
    old_fields = {"points", "referral_url", "state", "tier_name", "tier_id"}
    data = dict(install(make_integration()).data)
    for name in ("ELLITY_LIFETIME_PTS", "ELLITY_TIER_EXPIRES", "ELLITY_TO_NEXT_TIER"):
        del dd_state.data_fields[name]
    data["fields"] = {key: name for key, name in data["fields"].items() if key in old_fields}
    assert push_contact(make_integration(data=data), [make_contact(3)]) == []
    fields = dd_state.contacts["customer3@example.com"].data_fields
    assert fields["ELLITY_POINTS"] == 120 and "ELLITY_LIFETIME_PTS" not in fields

    # Installing again creates the three and the next write fills them.
    data = dict(install(make_integration()).data)
    assert push_contact(make_integration(data=data), [make_contact(3)]) == []
    fields = dd_state.contacts["customer3@example.com"].data_fields
    assert (fields["ELLITY_LIFETIME_PTS"], fields["ELLITY_TO_NEXT_TIER"]) == (500, 380)


def test_batch_goes_through_one_import_and_waits_for_it(
    installed, dd_state, dd_server, make_contact
) -> None:
    contacts = [make_contact(i, points=i * 10) for i in range(1, 4)]
    assert push_contact(installed, contacts) == []
    (put,) = dd_server.requests_to("PUT", "/contacts/v3/import")
    body = put.json()
    assert body["mergeOption"] == "overwrite"
    assert {row["matchIdentifier"] for row in body["contacts"]} == {"email"}
    assert all(row["lists"] == [BOOK] for row in body["contacts"])
    polls = [r for r in dd_server.requests if r.path.startswith("/contacts/v3/import/")]
    assert len(polls) == 2  # NotFinished, then Finished
    for i in range(1, 4):
        contact = dd_state.contacts[f"customer{i}@example.com"]
        assert contact.data_fields["ELLITY_POINTS"] == i * 10
        assert contact.lists == {BOOK}
    assert dd_state.optin_emails == []


def test_a_full_batch_fits_one_import(installed, dd_state, dd_server, make_contact) -> None:
    assert push_contact(installed, [make_contact(i) for i in range(MAX_BATCH)]) == []
    assert len(dd_server.requests_to("PUT", "/contacts/v3/import")) == 1
    assert len(dd_state.book_members(BOOK)) == MAX_BATCH


def test_more_than_the_import_maximum_is_refused_whole(installed, dd_state, make_contact) -> None:
    # The host never sends more than max_batch; were it to, Dotdigital refuses the request.
    with pytest.raises(PermanentError, match="tooManyContacts"):
        push_contact(installed, [make_contact(i) for i in range(MAX_BATCH + 1)])
    assert dd_state.contacts == {}


def test_failed_contacts_of_a_batch_are_reported_one_by_one(
    installed, dd_state, make_contact
) -> None:
    contacts = [
        make_contact(1),
        make_contact(2, email="not-an-email@"),
        make_contact(4, email="shared@example.com"),
        make_contact(5, email="Shared@example.com"),
    ]
    failures = {f.key: f.error for f in push_contact(installed, contacts)}
    assert set(failures) == {2, 5}
    assert all(isinstance(error, PermanentError) for error in failures.values())
    assert "invalidEmail" in str(failures[2])
    assert "duplicateIdentifier" in str(failures[5])
    assert set(dd_state.contacts) == {"customer1@example.com", "shared@example.com"}


def test_single_contact_refused_is_an_item_failure(installed, dd_state, make_contact) -> None:
    (failure,) = push_contact(installed, [make_contact(9, email="gone@example")])
    assert failure.key == 9
    assert isinstance(failure.error, PermanentError)
    assert "gone@example" in str(failure.error) and "contacts:invalidId" in str(failure.error)


@pytest.mark.parametrize("count", [1, 3])
def test_a_suppressed_contact_gets_its_points_and_stays_suppressed(
    installed, dd_state, make_contact, count
) -> None:
    # Dotdigital's v3 updates a suppressed contact's data and leaves its channel status alone.
    dd_state.contacts["gone@example.com"] = FakeContact(1, "gone@example.com", status="suppressed")
    contacts = [make_contact(i, email=f"c{i}@example.com") for i in range(1, count)]
    assert push_contact(installed, [make_contact(9, email="gone@example.com"), *contacts]) == []
    contact = dd_state.contacts["gone@example.com"]
    assert contact.status == "suppressed"
    assert contact.data_fields["ELLITY_POINTS"] == 120 and contact.lists == {BOOK}


@pytest.mark.parametrize("count", [1, 3])
def test_missing_data_fields_tell_the_admin_to_install_again(
    make_integration, dd_state, make_contact, count
) -> None:
    # Never installed (or the fields were deleted in Dotdigital).
    with pytest.raises(PermanentError, match="install the integration again"):
        push_contact(make_integration(), [make_contact(i) for i in range(count)])
    assert dd_state.contacts == {}


def test_name_fields_are_skipped_when_the_account_lacks_them(
    make_integration, dd_state, make_contact
) -> None:
    del dd_state.data_fields["FIRSTNAME"]
    result = install(make_integration())
    assert result.data["name_fields"] == ["LASTNAME"]
    integration = make_integration(data=dict(result.data))
    assert push_contact(integration, [make_contact(1), make_contact(2)]) == []
    assert "FIRSTNAME" not in dd_state.contacts["customer1@example.com"].data_fields


def test_contact_writes_take_the_integrations_shared_budget_and_polls_do_not(
    installed, dd_server, make_contact, pacers: RecordingPacers
) -> None:
    pacer = pacers.pacer_for(installed.id, installed.rate_limit)
    pacer_waits = pacer.waits
    # Install's calls (account info, data fields, address books) are in Dotdigital's higher
    # tiers: none of them waited for the import budget.
    assert pacer_waits == []
    with pacer.call():  # what the host does around a hook call
        push_contact(installed, [make_contact(i) for i in range(1, 4)])
    # The import used the host's slot; its two status polls took none.
    assert pacer_waits == []
    assert len([r for r in dd_server.requests if r.path.startswith("/contacts/v3/import/")]) == 2
    with pacer.call():
        push_contact(installed, [make_contact(5)])
    assert len(pacer_waits) == 1  # the host waited for its slot; the PATCH went in it
    push_contact(installed, [make_contact(6)])  # a write outside a host call waits on its own
    assert len(pacer_waits) == 2
    assert all(wait > 0 for wait in pacer_waits)


@pytest.mark.parametrize(
    ("tier_id", "sent"),
    [
        ("426715794", 426715794),
        ("999999999999999", 999999999999999),
        # A double holds 15 digits exactly; more could come back as another tier's id.
        ("1234567890123456", None),
        ("-3", None),
        ("1.5", None),
        ("٣", None),  # a digit, but not one Dotdigital's Numeric field reads
        (None, None),
    ],
)
def test_the_smile_preset_sends_a_tier_id_only_as_a_whole_number(
    make_integration, dd_state, make_contact, tier_id: str | None, sent: int | None
) -> None:
    integration = make_integration(field_preset="smile", prefix="a_prefix_too_long_for_20")
    install(integration)
    contacts = [make_contact(1, tier_id=tier_id), make_contact(2, registered=False)]
    assert push_contact(integration, contacts) == []  # an import, checked by the fake
    first = dd_state.contacts["customer1@example.com"].data_fields
    assert (first["SMILE_VIP_TIER_ID"], first["SMILE_VIP_TIER_NAME"]) == (sent, "Gold")
    assert (first["SMILE_STATE"], first["SMILE_POINTS_BALANCE"]) == ("member", 120)
    assert dd_state.contacts["customer2@example.com"].data_fields["SMILE_STATE"] == "candidate"
