"""Bearer tokens for the REST API, stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.models import ApiToken

PREFIX = "pb_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """Create a token; the plain value is returned once and never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_digest(token), hint=token[:7]))
    session.flush()
    return token


def verify_token(session: Session, token: str) -> ApiToken | None:
    found = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if found is not None:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == found.id)
            .values(last_used_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
    return found
