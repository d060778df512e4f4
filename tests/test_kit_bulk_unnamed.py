"""``failures_unnamed``: the contacts a bulk answer leaves out fail, each with its own error;
both helpers know an address in any Unicode form."""

from __future__ import annotations

from pointbridge import PermanentError
from pointbridge.kit.bulk import failures_by_email, failures_unnamed
from pointbridge.testing.contacts import sample_contact


def test_contacts_the_answer_leaves_out_fail_alone() -> None:
    contacts = [
        sample_contact(1, "Ann@Example.com"),
        sample_contact(2, "bad@x..com"),
        sample_contact(3, "bob@example.com"),
    ]
    failures = failures_unnamed(
        contacts,
        ["ann@example.com", " BOB@example.com"],
        lambda contact: PermanentError(f"skipped {contact.email}"),
    )
    assert [(f.key, str(f.error)) for f in failures] == [(2, "skipped bad@x..com")]


def test_an_answer_naming_everyone_fails_nobody() -> None:
    contacts = [sample_contact(1, "ann@example.com")]
    assert failures_unnamed(contacts, ["ann@example.com"], lambda c: PermanentError("")) == []


def test_an_address_echoed_decomposed_is_the_contact_sent_composed() -> None:
    """pointbridge stores "á" composed (NFC); a platform may echo it as "a" and an accent."""
    contacts = [sample_contact(1, "jan\u00e1k@example.cz")]
    echoed = ["JANA\u0301K@example.cz"]
    assert failures_unnamed(contacts, echoed, lambda c: PermanentError("")) == []
    refused = failures_by_email(contacts, [(echoed[0], PermanentError("invalid"))])
    assert [f.key for f in refused] == [1]
