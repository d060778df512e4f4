"""Bearer tokens for the REST API, stored hashed."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from pointbridge.storage.db import Database
from pointbridge.storage.models import ApiToken, utcnow

PREFIX = "pb_"
# How stale ``last_used_at`` may get: recording every use would make every read a write.
LAST_USED_PRECISION = timedelta(minutes=1)
# How long a process trusts a token it has found without looking again: what a revocation
# made by another process (``pointbridge tokens revoke``) may take to reach this one.
CACHE_TTL = timedelta(seconds=5)


@dataclass(slots=True)
class _Known:
    token_id: int
    checked_at: datetime
    last_used_at: datetime | None


# (database URL, token digest) -> a live token this process found there. Only tokens found
# are kept, so its size is the number of live tokens in use, whatever callers send.
_known: dict[tuple[str, str], _Known] = {}
_known_lock = threading.Lock()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """Create a token; the plain value is returned once and never stored."""
    return issue_token(session, name)[1]


def issue_token(session: Session, name: str) -> tuple[ApiToken, str]:
    """Create a token: its row, and the plain value, which is never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_digest(token), hint=token[:7])
    session.add(row)
    session.flush()
    return row, token


def authenticate(db: Database, token: str) -> bool:
    """Whether ``token`` is a live API token.

    A token found is trusted for ``CACHE_TTL`` without reading the database again: a token
    revoked in this process is refused at once, one revoked by another process (the
    ``tokens revoke`` command while the server runs, another server worker) within
    ``CACHE_TTL``. The use is written only when the recorded one is older than
    ``LAST_USED_PRECISION``: a write on every request would take SQLite's write lock on every
    GET and queue PostgreSQL's requests on the token row.
    """
    key = (db.url, _digest(token))
    now = utcnow()
    known = _known.get(key)
    if known is None or not known.checked_at <= now < known.checked_at + CACHE_TTL:
        known = _look_up(db, key, now)
        if known is None:
            return False
    if known.last_used_at is None or known.last_used_at < now - LAST_USED_PRECISION:
        known.last_used_at = now
        _record_use(db, known.token_id, now)
    return True


def _look_up(db: Database, key: tuple[str, str], now: datetime) -> _Known | None:
    with db.read() as session:
        found = session.execute(
            select(ApiToken.id, ApiToken.last_used_at).where(ApiToken.token_hash == key[1])
        ).first()
    with _known_lock:
        if found is None:
            _known.pop(key, None)
            return None
        known = _known[key] = _Known(found.id, now, found.last_used_at)
    return known


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
    """Delete the token; None when there is no such id. This process refuses it at once,
    others within ``CACHE_TTL`` (``authenticate``)."""
    found = session.get(ApiToken, token_id)
    if found is not None:
        session.delete(found)
        with _known_lock:
            for key in [key for key, known in _known.items() if known.token_id == token_id]:
                del _known[key]
    return found
