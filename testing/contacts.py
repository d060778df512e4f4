"""A complete ``Contact`` for unit tests of plugins: every field set, any of them overridden."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pointbridge.contract.contact import Contact


def sample_contact(customer_id: int = 1, email: str | None = None, **fields: Any) -> Contact:
    """Jan Novák with 120 points, 40 of them expiring at the end of 2026; ``fields`` override
    any of Contact's fields. The e-mail defaults to ``c<customer_id>@example.cz``."""
    values: dict[str, Any] = {
        "external_id": None,
        "first_name": "Jan",
        "last_name": "Novák",
        "points": 120,
        "pin": "4321",
        "registered": False,
        "next_expiration_date": date(2026, 12, 31),
        "next_expiration_points": 40,
        "last_change_at": datetime(2026, 5, 1, 10, 30),
        "last_change_points": 20,
        "referral_code": "JAN120",
        "referral_link": "https://shop.example/r/JAN120",
        "tier_id": None,
        "tier_name": None,
        "missions": 0,
        "rewards": 0,
        "referrals": 0,
        **fields,
    }
    return Contact(
        customer_id=customer_id,
        email=email if email is not None else f"c{customer_id}@example.cz",
        **values,
    )
