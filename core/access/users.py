"""The console's admins: accounts, password checks, and the lockout that slows guessing.

Passwords are hashed with Argon2id (argon2-cffi, the reference implementation's binding):
memory-hard, so a stolen table costs a GPU farm as much per guess as it costs us, and its PHC
strings carry their own salt and cost, so raising the cost later re-hashes at the next login.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pointbridge.contract.errors import PointbridgeError
from pointbridge.loyalty.rules import LoyaltyError, normalize_email
from pointbridge.storage.db import Database
from pointbridge.storage.models import LoginThrottle, User, utcnow

MIN_PASSWORD_LENGTH = 12
# Failures before a key is locked; an IP (an office behind one address) gets more room than
# one account, which only its owner should be typing for.
ACCOUNT_FAILURES = 5
IP_FAILURES = 20
# The first lock; each further failure doubles it, up to the cap.
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(hours=1)
# A key that failed nothing for this long starts counting again from zero, and is forgotten.
FORGET_AFTER = timedelta(days=1)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a wrong address takes as long to refuse
    as a wrong password and the timing tells nobody which admins exist. Made at the first
    login, not at import: a hash costs 0.6 s, which every command would pay."""
    return _hasher.hash("not a password anyone has")


class UserError(PointbridgeError):
    pass


class LoginRefused(PointbridgeError):
    """The e-mail and password do not match, or the account or address is locked."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Admin:
    id: int
    email: str


def _email(email: str) -> str:
    try:
        return normalize_email(email)
    except LoyaltyError as exc:
        raise UserError(exc.message) from None


def create_user(db: Database, email: str, password: str) -> Admin:
    normalized = _email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    with db.transaction() as session:
        if session.scalar(select(User.id).where(User.email == normalized)) is not None:
            raise UserError(f"An admin with e-mail {normalized} exists already.")
        user = User(email=normalized, password_hash=_hasher.hash(password))
        session.add(user)
        session.flush()
        return Admin(user.id, user.email)


def get_admin(db: Database, user_id: int) -> Admin | None:
    with db.read() as session:
        user = session.get(User, user_id)
        return None if user is None else Admin(user.id, user.email)


def _keys(email: str, ip: str) -> dict[str, int]:
    return {f"account:{email}": ACCOUNT_FAILURES, f"ip:{ip}": IP_FAILURES}


def _lock_for(failures: int, limit: int) -> timedelta | None:
    if failures < limit:
        return None
    return min(FIRST_LOCK * 2 ** (failures - limit), MAX_LOCK)


def _refusal(seconds: float, prefix: str = "") -> LoginRefused:
    wait = max(1, math.ceil(seconds))
    return LoginRefused(f"{prefix}Too many failed log-ins: try again in {wait} s.", wait)


def _count_failure(session: Session, key: str, limit: int, now: datetime) -> datetime | None:
    row = session.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        try:
            # Two first failures of one key at once: the loser counts on the winner's row.
            with session.begin_nested():
                row = LoginThrottle(key=key, failures=0, updated_at=now)
                session.add(row)
        except IntegrityError:
            row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
            assert row is not None
    row.failures += 1
    row.updated_at = now
    lock = _lock_for(row.failures, limit)
    row.locked_until = None if lock is None else now + lock
    return row.locked_until


def log_in(
    db: Database, email: str, password: str, ip: str, now: Callable[[], datetime] = utcnow
) -> Admin:
    """The admin whose password this is, or ``LoginRefused`` saying what to do."""
    at = now()
    try:
        normalized = _email(email)
    except UserError:
        normalized = email.strip().lower()[:320]
    keys = _keys(normalized, ip)
    with db.read() as session:
        locks = session.scalars(
            select(LoginThrottle.locked_until).where(
                LoginThrottle.key.in_(list(keys)), LoginThrottle.locked_until > at
            )
        ).all()
        if locks:
            raise _refusal((max(locks) - at).total_seconds())
        user = session.scalar(select(User).where(User.email == normalized))
        stored = user.password_hash if user is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
        matched = user is not None
    except (VerificationError, InvalidHashError):
        matched = False
    if not matched:
        with db.transaction() as session:
            session.execute(
                delete(LoginThrottle).where(LoginThrottle.updated_at < at - FORGET_AFTER)
            )
            until = [_count_failure(session, key, limit, at) for key, limit in keys.items()]
        if locked := [moment for moment in until if moment is not None]:
            raise _refusal((max(locked) - at).total_seconds(), "Wrong e-mail or password. ")
        raise LoginRefused("Wrong e-mail or password.")
    assert user is not None
    with db.transaction() as session:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(list(keys))))
        row = session.get(User, user.id)
        assert row is not None
        row.last_login_at = at
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
    return Admin(user.id, user.email)
