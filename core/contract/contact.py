"""The loyalty data sent to email platforms: one immutable snapshot per customer.

Snapshots are built at send time from the database, so however many changes a customer had
while a platform was slow, the platform receives the latest state once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum


class MembershipState(StrEnum):
    """What a customer is to the loyalty program (Smile calls these member / candidate)."""

    MEMBER = "member"
    GUEST = "guest"


@dataclass(frozen=True, slots=True)
class Contact:
    """One customer's loyalty data, ready to be written into a platform's custom fields."""

    customer_id: int
    email: str
    external_id: str | None
    first_name: str | None
    last_name: str | None
    points: int
    pin: str | None
    registered: bool
    next_expiration_date: date | None
    next_expiration_points: int
    last_change_at: datetime | None
    last_change_points: int | None
    referral_code: str | None
    referral_link: str | None
    tier_id: str | None
    tier_name: str | None
    missions: int
    rewards: int
    referrals: int
    # Last, with a default: a contact made by keyword (tests, third-party plugins) without it
    # is one who never agreed, which is the safe reading.
    marketing_consent: bool = False
    # Every point ever credited (expiry and spending do not lower it), and the tier progress
    # the shop's tier data carries, when it does.
    lifetime_points: int = 0
    tier_expires_at: date | None = None
    points_to_next_tier: int | None = None

    @property
    def membership(self) -> MembershipState:
        return MembershipState.MEMBER if self.registered else MembershipState.GUEST


def shop_time(value: datetime, timezone: tzinfo) -> datetime:
    """A stored (UTC) moment as the shop's clock shows it: a change at 00:30 in Prague is
    that day's, not the day before's as in UTC. A naive value is taken as UTC, as stored."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(timezone)


def format_datetime(value: date | datetime | None, timezone: tzinfo = UTC) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the shop's ``timezone``, the date format SmartEmailing,
    Ecomail and Splio all accept. A date is a calendar day already: it is not shifted."""
    # isoformat, not strftime: this runs twice per contact sent, and strftime took longer
    # than building the rest of the contact's fields.
    if value is None:
        return ""
    if isinstance(value, datetime):
        return shop_time(value, timezone).isoformat(" ", "seconds")[:19]  # without the offset
    return f"{value.isoformat()} 00:00:00"


# The loyalty field catalog (DESIGN.md section 4) under neutral names. Plugins pick the ones their
# platform takes and prefix them; keeping the values here means every platform and the CSV export
# agree on what "next expiration value" is.
def loyalty_fields(contact: Contact, timezone: tzinfo = UTC) -> dict[str, str | int]:
    """Every catalog field as it is written to text-typed custom fields, dates formatted in
    the shop's ``timezone`` (a plugin passes ``integration.timezone``)."""
    return {
        "credit": str(contact.points),
        "credit_num": contact.points,
        "pin": contact.pin or "",
        "registered": "1" if contact.registered else "0",
        "next_expiration_date": format_datetime(contact.next_expiration_date),
        "next_expiration_value": str(contact.next_expiration_points),
        "next_expiration_value_num": contact.next_expiration_points,
        "last_change_date": format_datetime(contact.last_change_at, timezone),
        "last_change_value": ""
        if contact.last_change_points is None
        else str(contact.last_change_points),
        "referral_code": contact.referral_code or "",
        "referral_link": contact.referral_link or "",
        "tier_id": contact.tier_id or "",
        "tier_name": contact.tier_name or "",
        "missions": contact.missions,
        "rewards": contact.rewards,
        "referrals": contact.referrals,
        "lifetime_points": contact.lifetime_points,
        "tier_expires_at": format_datetime(contact.tier_expires_at),
        "points_to_next_tier": ""
        if contact.points_to_next_tier is None
        else str(contact.points_to_next_tier),
    }
