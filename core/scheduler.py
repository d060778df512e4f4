"""APScheduler: the nightly expiry job, plus a catch-up run at start-up."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from pointbridge.loyalty.expiry import Expiry
from pointbridge.services import Services

log = logging.getLogger(__name__)


def local_today(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def expiry_job(services: Services) -> None:
    """Run every day not yet run, up to today in the shop's timezone."""
    # Each day's run logs its own summary.
    Expiry(services.db, services.loyalty).catch_up(local_today(services.settings.expiry_timezone))


def start_scheduler(services: Services) -> BackgroundScheduler:
    settings = services.settings
    scheduler = BackgroundScheduler(timezone=ZoneInfo(settings.expiry_timezone))
    scheduler.add_job(
        expiry_job,
        CronTrigger(hour=settings.expiry_hour, timezone=ZoneInfo(settings.expiry_timezone)),
        args=[services],
        id="expiry",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
    )
    # The server may have been down at the scheduled hour: catch up now, in the background.
    scheduler.add_job(expiry_job, args=[services], id="expiry-catch-up", max_instances=1)
    scheduler.start()
    # One line per scheduler: with several web processes there must still be only one.
    log.info(
        "nightly expiry scheduled at %02d:00 %s", settings.expiry_hour, settings.expiry_timezone
    )
    return scheduler
