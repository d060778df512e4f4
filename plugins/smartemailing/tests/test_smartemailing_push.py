from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from pointbridge_smartemailing import install, push_contact
from pointbridge_smartemailing.fake import FakeSmartEmailing

from pointbridge import Contact, Integration, PermanentError
from pointbridge.testing import FakeServer


@pytest.fixture
def installed(make_integration: Callable[..., Integration]) -> Callable[..., Integration]:
    def make(**settings: object) -> Integration:
        return make_integration(data=install(make_integration(**settings)).data, **settings)

    return make


def test_contact_fields_arrive_as_smartemailing_stores_them(
    installed: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
    server: FakeServer,
) -> None:
    jan = make_contact(
        lifetime_points=300, tier_expires_at=date(2027, 1, 31), points_to_next_tier=80
    )
    assert push_contact(installed(), [jan]) == []
    assert fake.field_values("jan@example.cz") == {
        "ellity_credit": "120",
        "ellity_credit_num": "120",
        "ellity_pin": "4821",
        "ellity_registered": "0",
        "ellity_next_expiration_date": "2026-12-31 00:00:00",
        "ellity_next_expiration_value": "50",
        "ellity_last_change_date": "2026-05-04 13:30:05",
        "ellity_last_change_value": "20",
        "ellity_referral_code": "JAN120",
        "ellity_referral_link": "https://shop.example/r/JAN120",
        "ellity_lifetime_points": "300",
        "ellity_tier_expires_at": "2027-01-31 00:00:00",
        "ellity_points_to_next_tier": "80",
    }
    contact = fake.contacts["jan@example.cz"]
    assert (contact.name, contact.surname) == ("Jan", "Novák")
    assert contact.contactlists == {}
    sent = server.requests_to("POST", "/import")[-1].json()
    assert sent["settings"] == {
        "update": True,
        "preserve_unsubscribed": True,
        "skip_invalid_emails": True,
    }


def test_missing_dates_clear_the_date_fields(
    installed: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
) -> None:
    contact = make_contact(next_expiration_date=None, last_change_at=None, pin=None)
    assert push_contact(installed(), [contact]) == []
    values = fake.field_values("jan@example.cz")
    assert values["ellity_next_expiration_date"] is None
    assert values["ellity_last_change_date"] is None
    assert values["ellity_pin"] == ""


def test_unknown_names_do_not_wipe_the_shops_names(
    installed: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
) -> None:
    integration = installed()
    push_contact(integration, [make_contact()])
    push_contact(integration, [make_contact(first_name=None, last_name=None, points=5)])
    contact = fake.contacts["jan@example.cz"]
    assert (contact.name, contact.surname) == ("Jan", "Novák")
    assert fake.field_values("jan@example.cz")["ellity_credit"] == "5"


def test_list_is_joined_as_confirmed_with_consent_but_unsubscribed_stay_unsubscribed(
    installed: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
) -> None:
    fake.add_contact("left@example.cz", {7: "unsubscribed"})
    failures = push_contact(
        installed(contact_list_id=7),
        [
            make_contact(1, "jan@example.cz", marketing_consent=True),
            make_contact(2, "left@example.cz", marketing_consent=True),
            make_contact(3, "quiet@example.cz"),
        ],
    )
    assert failures == []
    assert fake.contacts["jan@example.cz"].contactlists == {7: "confirmed"}
    assert fake.contacts["left@example.cz"].contactlists == {7: "unsubscribed"}
    assert fake.field_values("left@example.cz")["ellity_credit"] == "120"
    # Without consent: the fields, and no list.
    assert fake.contacts["quiet@example.cz"].contactlists == {}
    assert fake.field_values("quiet@example.cz")["ellity_credit"] == "120"


def test_an_address_smartemailing_skips_fails_alone(
    installed: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
) -> None:
    # Valid to pointbridge, refused by SmartEmailing: the import skips it and goes on.
    contacts = [make_contact(1, "Jan.Novak@Example.cz"), make_contact(2, "double@dot..cz")]
    failures = push_contact(installed(), contacts)
    assert [f.key for f in failures] == [2]
    assert isinstance(failures[0].error, PermanentError)
    assert "SmartEmailing skipped 'double@dot..cz'" in str(failures[0].error)
    assert set(fake.contacts) == {"jan.novak@example.cz"}


def test_works_without_stored_install_data(
    make_integration: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
) -> None:
    install(make_integration())
    before = len(fake.customfields)
    assert push_contact(make_integration(data={}), [make_contact()]) == []
    assert len(fake.customfields) == before
    assert fake.field_values("jan@example.cz")["ellity_credit"] == "120"


def test_field_deleted_in_smartemailing_is_recreated(
    installed: Callable[..., Integration],
    make_contact: Callable[..., Contact],
    fake: FakeSmartEmailing,
    server: FakeServer,
) -> None:
    integration = installed()
    push_contact(integration, [make_contact()])
    server.requests.clear()
    old_id = fake.field_id("ellity_pin")
    del fake.customfields[old_id]
    assert push_contact(integration, [make_contact(pin="9999")]) == []
    assert fake.field_id("ellity_pin") != old_id
    assert fake.field_values("jan@example.cz")["ellity_pin"] == "9999"
    assert [r.status for r in server.requests_to("POST", "/import")] == [422, 201]
