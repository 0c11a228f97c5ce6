"""How long the traffic history is kept, and the fold that bounds it (issue 18).

- **Hours** (``traffic_hourly``) are kept ``HOURLY_DAYS`` (90) days: every hour before the local
  midnight that starts the day 90 days ago folds into its day's row (``traffic_daily``), which is
  the sum of its hours, so no total changes.
- **Days** are kept at least ``DAILY_DAYS`` (400) days, then deleted. A container's history is
  thus at most 91 days of hours and 310 days, whatever its age (the README gives the bytes).
- **Which day**: the host's local date at the UTC offset of the moment of the fold, as the
  reports count days (a daylight-saving change can put one hour into the neighbouring day).
- **When**: ``fold`` runs in the scheduler every ``FOLD_SECONDS`` (the first time a few minutes
  after the start); each container folds in a write transaction of its own and nothing else is
  locked: the sampler only ever adds to the current hour, never to one 90 days old, and a report
  reads hours and days in one statement.

The period totals (``traffic_plans``), which the quotas act on, are not read from the history:
folding never changes what a container is billed.
"""
import logging
from datetime import datetime, time, timedelta

from ...store import traffic_history as table
from ...traffic import periods

log = logging.getLogger(__name__)

HOURLY_DAYS = 90  # hours older than this many days fold into days
DAILY_DAYS = 400  # a day's totals are kept at least this many days
FOLD_SECONDS = 3600  # how often the scheduler folds
FIRST_FOLD_SECONDS = 300  # the first fold after a start


def boundaries(now):
    """``(first hour kept, first day kept, UTC offset as an SQLite modifier)`` at ``now`` (an aware
    datetime): hours before the local midnight that starts the day ``HOURLY_DAYS`` days ago fold;
    days before the date ``DAILY_DAYS`` days ago are deleted."""
    first_hourly_day = datetime.combine(now.date() - timedelta(days=HOURLY_DAYS), time(), tzinfo=now.tzinfo)
    minutes = int(now.utcoffset().total_seconds() // 60)
    return (periods.hour_of(first_hourly_day), (now.date() - timedelta(days=DAILY_DAYS)).isoformat(),
            f"{minutes:+d} minutes")


def fold(db, now):
    """Fold every container's old hours into days and delete its days past ``DAILY_DAYS``:
    ``{"containers", "folded_hours", "deleted_days"}`` (containers: those that had something)."""
    first_hour, first_day, offset = boundaries(now)
    changed = folded = deleted = 0
    for name in table.names(db):
        if not (table.has_hours_before(db, name, first_hour) or table.has_days_before(db, name, first_day)):
            continue
        with db.transaction() as conn:
            folded += table.fold(conn, name, first_hour, offset)
            deleted += table.delete_days_before(conn, name, first_day)
        changed += 1
    if changed:
        log.info("traffic history: %d hour(s) of %d container(s) folded into days, %d day(s) past %d days deleted",
                 folded, changed, deleted, DAILY_DAYS)
    return {"containers": changed, "folded_hours": folded, "deleted_days": deleted}
