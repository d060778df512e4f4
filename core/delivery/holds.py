"""What holds an integration's deliveries back: a pause the platform asked for (429), or a
failing state until an admin fixes its settings. Rows wait meanwhile; nothing is dropped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from pointbridge.contract.platform import Integration
from pointbridge.storage.db import Database
from pointbridge.storage.models import IntegrationRow, IntegrationStatus

log = logging.getLogger(__name__)


def pause(db: Database, integration: Integration, seconds: float) -> None:
    """The platform said to slow down: no worker sends for the integration for ``seconds``."""
    log.info("%s rate limited; pausing %.1f s", integration.name, seconds)
    _hold(db, integration, resume_at=datetime.now(UTC) + timedelta(seconds=seconds))


def paused_for(db: Database, integration_id: int) -> float:
    """Seconds until the integration's rate-limit pause ends (0 when it is not paused)."""
    with db.read() as session:
        resume_at = session.scalar(
            select(IntegrationRow.resume_at).where(IntegrationRow.id == integration_id)
        )
    return 0.0 if resume_at is None else max(0.0, (resume_at - datetime.now(UTC)).total_seconds())


def mark_failing(db: Database, integration: Integration | IntegrationRow, message: str) -> None:
    """Configuration the platform refused: nothing is sent until an admin fixes it."""
    log.warning("%s needs an admin; its deliveries wait: %s", integration.name, message)
    _hold(db, integration, status=IntegrationStatus.FAILING, last_error=message)


def _hold(db: Database, integration: Integration | IntegrationRow, **values: object) -> None:
    with db.transaction() as session:
        session.execute(
            update(IntegrationRow)
            .where(IntegrationRow.id == integration.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
