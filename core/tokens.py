"""Bearer tokens for the REST API, stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from pointbridge.db import Database
from pointbridge.models import ApiToken, utcnow

PREFIX = "pb_"
# How stale ``last_used_at`` may get: recording every use would make every read a write.
LAST_USED_PRECISION = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """Create a token; the plain value is returned once and never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_digest(token), hint=token[:7]))
    session.flush()
    return token


def authenticate(db: Database, token: str) -> bool:
    """Whether ``token`` is a live API token, checked in a read session.

    A write on every request would take SQLite's write lock on every GET and queue PostgreSQL's
    requests on the token row, so the use is recorded only when the stored one is older than
    ``LAST_USED_PRECISION``.
    """
    with db.read() as session:
        found = session.execute(
            select(ApiToken.id, ApiToken.last_used_at).where(ApiToken.token_hash == _digest(token))
        ).first()
    if found is None:
        return False
    now = utcnow()
    if found.last_used_at is None or found.last_used_at < now - LAST_USED_PRECISION:
        _record_use(db, found.id, now)
    return True


def _record_use(db: Database, token_id: int, now: datetime) -> None:
    stale = now - LAST_USED_PRECISION
    with db.transaction() as session:
        # Concurrent requests that all saw a stale value: the first one's write wins.
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale),
            )
            .values(last_used_at=now)
        )


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke_token(session: Session, token_id: int) -> ApiToken | None:
    """Delete the token (the next request with it is refused); None when there is no such id."""
    found = session.get(ApiToken, token_id)
    if found is not None:
        session.delete(found)
    return found
