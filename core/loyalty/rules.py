"""The loyalty rules every writer applies: the errors a refusal raises, what a valid e-mail,
PIN, reason and transaction are, and the references pointbridge keeps for its own jobs."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import date
from typing import Any

from pointbridge.contract.errors import PointbridgeError

# Most points one transaction may move: a typo of a few zeros is refused, and no sum of
# transactions a shop could make comes near the 64-bit balance column's limit.
MAX_POINTS = 1_000_000_000
# Anchored for the OpenAPI document, which shows them; always applied with fullmatch, since
# "$" alone also matches before a trailing newline.
REASON_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PIN_PATTERN = re.compile(r"^[0-9A-Za-z]{4,12}$")
# An integer written as text (a setting, a CSV cell), once stripped: ASCII digits and a sign.
# int() also reads "1_000" and other scripts' digits ("١٢٠"), which no shop means as a number.
WHOLE_NUMBER_TEXT = re.compile(r"[+-]?[0-9]+")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# References pointbridge writes itself (the nightly expiry's ``expiration:<day>``, the CSV
# import's opening balance): a shop's reference in this space would make the job's own write
# collide with it, and stop expiry for every customer of that page.
IMPORT_REFERENCE = "import"
EXPIRATION_REFERENCE_PREFIX = "expiration:"
EXPIRATION_REASON = "expiration"
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERRAL_LENGTH = 10
_REFERRAL_LETTERS = bytes(ord(REFERRAL_ALPHABET[b % 32]) for b in range(256))
assert len(REFERRAL_ALPHABET) == 32  # for _REFERRAL_LETTERS to be uniform
PROFILE_FIELDS = (
    "email",
    "external_id",
    "first_name",
    "last_name",
    "registered",
    "marketing_consent",
    "tier_id",
    "tier_name",
    "missions",
    "rewards",
    "referrals",
)
TIER_PROGRESS_FIELDS = ("tier_expires_at", "points_to_next_tier")


class LoyaltyError(PointbridgeError):
    """A request the loyalty rules refuse; ``status`` is the HTTP status that fits."""

    status = 422

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CustomerNotFound(LoyaltyError):
    status = 404


class Conflict(LoyaltyError):
    status = 409


class InsufficientPoints(Conflict):
    pass


def normalize_email(email: str) -> str:
    """The address as stored: trimmed, lower-cased and in Unicode NFC (an "á" typed as "a"
    and a combining accent is the same address); anything else is a ``LoyaltyError``.

    Control, format, private-use and surrogate characters are refused: no platform accepts
    them, NUL and lone surrogates cannot even be stored, and U+202E and friends make one
    address look like another in an admin's list.
    """
    normalized = unicodedata.normalize("NFC", email.strip().lower())
    if (
        len(normalized) > 320
        or not EMAIL_PATTERN.fullmatch(normalized)
        or any(unicodedata.category(char).startswith("C") for char in normalized)
    ):
        raise LoyaltyError(f"{email!r} is not an e-mail address.", field="email")
    if unicodedata.normalize("NFKC", normalized) != normalized:
        # Full-width letters, ligatures and the like: an address that reads as another in an
        # admin's list. Folding them (NFKC) would send mail to that other address instead.
        raise LoyaltyError(
            f"{email!r} has full-width or other compatibility characters: type it plainly.",
            field="email",
        )
    return normalized


def is_system_reference(reference: str) -> bool:
    return reference == IMPORT_REFERENCE or reference.startswith(EXPIRATION_REFERENCE_PREFIX)


def expiration_reference(day: date) -> str:
    return f"{EXPIRATION_REFERENCE_PREFIX}{day.isoformat()}"


def generate_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def referral_code() -> str:
    return referral_codes(1)[0]


def referral_codes(count: int) -> list[str]:
    """``count`` new referral codes, from one call for random bytes (an import makes a million:
    a call a letter was a tenth of its time). A byte's low 5 bits pick one of the 32 letters,
    uniformly, as ``secrets.choice`` would."""
    letters = secrets.token_bytes(REFERRAL_LENGTH * count).translate(_REFERRAL_LETTERS).decode()
    return [letters[i : i + REFERRAL_LENGTH] for i in range(0, len(letters), REFERRAL_LENGTH)]


def check_transaction(
    points: int, reason: str, reference: str | None, expires_on: date | None, system: bool
) -> None:
    if points == 0:
        raise LoyaltyError("points must not be 0.", field="points")
    if abs(points) > MAX_POINTS:
        raise LoyaltyError(
            f"points must be between -{MAX_POINTS:,} and {MAX_POINTS:,}.", field="points"
        )
    if not REASON_PATTERN.fullmatch(reason):
        raise LoyaltyError(
            "reason is a slug: lower-case letters, digits, '-' or '_' (e.g. order).",
            field="reason",
        )
    if points < 0 and expires_on is not None:
        raise LoyaltyError("expires_at applies to credits only.", field="expires_at")
    if reference is not None and not system and is_system_reference(reference):
        raise LoyaltyError(
            f"reference {reference!r} is reserved for pointbridge's own entries "
            "('import', 'expiration:…'); use another.",
            field="reference",
        )


def insufficient(balance: int, points: int) -> InsufficientPoints:
    return InsufficientPoints(
        f"The balance is {balance} points; cannot take {-points}.", balance=balance
    )
